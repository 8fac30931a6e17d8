//! The default workspace of `bench publish`: 30 crates. Ten have the shape
//! of a real library family (a core, a proc-macro crate, utilities, a model
//! with derives, a codec with a build script, a binary on top); twenty more
//! libraries sit on them in chains of five, the wide middle of a large
//! workspace. Enough generated code that each takes a second or more to
//! compile, and no crates.io dependency, so the benchmark runs offline and
//! measures the pipeline, not downloads.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

/// Name prefix: unlikely to exist on any registry.
const PREFIX: &str = "cvbench";

/// A crate of the generated workspace.
struct Spec {
    name: &'static str,
    deps: &'static [&'static str],
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lib,
    ProcMacro,
    /// A library with a build script.
    LibBuildRs,
    /// A library and a binary.
    LibBin,
}

/// Depth 5; a diamond (`store` and `net` over `io`), one proc-macro, one
/// build script, one binary.
const BASE: [Spec; 10] = [
    Spec {
        name: "core",
        deps: &[],
        kind: Kind::Lib,
    },
    Spec {
        name: "macros",
        deps: &[],
        kind: Kind::ProcMacro,
    },
    Spec {
        name: "util",
        deps: &["core"],
        kind: Kind::Lib,
    },
    Spec {
        name: "text",
        deps: &["core", "util"],
        kind: Kind::Lib,
    },
    Spec {
        name: "model",
        deps: &["core", "macros"],
        kind: Kind::Lib,
    },
    Spec {
        name: "codec",
        deps: &["core", "model", "text"],
        kind: Kind::LibBuildRs,
    },
    Spec {
        name: "io",
        deps: &["core", "util"],
        kind: Kind::Lib,
    },
    Spec {
        name: "store",
        deps: &["model", "io"],
        kind: Kind::Lib,
    },
    Spec {
        name: "net",
        deps: &["codec", "io"],
        kind: Kind::Lib,
    },
    Spec {
        name: "app",
        deps: &["net", "store", "util"],
        kind: Kind::LibBin,
    },
];

/// Libraries added on top of [`BASE`].
const EXTRAS: usize = 20;

/// How many crates the generated workspace has.
pub const CRATES: usize = BASE.len() + EXTRAS;

/// [`BASE`], then `x00`…`x19`: `x{i}` uses `core`, one of `util`, `text`,
/// `model`, `io`, and `x{i-4}`, so there are four chains of five; the last
/// one also has a binary.
fn specs() -> Vec<Spec> {
    const MIDDLE: [&str; 4] = ["util", "text", "model", "io"];
    let mut out: Vec<Spec> = BASE.into_iter().collect();
    let names: Vec<&'static str> = (0..EXTRAS).map(|i| &*format!("x{i:02}").leak()).collect();
    for (i, name) in names.iter().enumerate() {
        let mut deps = vec!["core", MIDDLE[i % MIDDLE.len()]];
        if i >= MIDDLE.len() {
            deps.push(names[i - MIDDLE.len()]);
        }
        out.push(Spec {
            name,
            deps: deps.leak(),
            kind: if i + 1 == EXTRAS {
                Kind::LibBin
            } else {
                Kind::Lib
            },
        });
    }
    out
}

fn crate_name(short: &str) -> String {
    format!("{PREFIX}-{short}")
}

fn ident(short: &str) -> String {
    format!("{PREFIX}_{short}")
}

/// Writes the workspace into `root`, with `modules` generated modules per
/// library crate.
pub fn write(root: &Path, modules: usize) -> anyhow::Result<()> {
    let specs = specs();
    let members: Vec<String> = specs.iter().map(|s| format!("\"{}\"", s.name)).collect();
    write_file(
        &root.join("Cargo.toml"),
        &format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n\n\
             [workspace.package]\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             license = \"MIT\"\nrepository = \"https://example.invalid/cvbench\"\n",
            members.join(", ")
        ),
    )?;
    for spec in &specs {
        write_crate(&root.join(spec.name), spec, modules)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

fn write_crate(dir: &Path, spec: &Spec, modules: usize) -> anyhow::Result<()> {
    let mut manifest = format!(
        "[package]\nname = \"{}\"\nversion.workspace = true\nedition.workspace = true\n\
         license.workspace = true\nrepository.workspace = true\n\
         description = \"Generated crate of Convoy's publish benchmark\"\n",
        crate_name(spec.name)
    );
    if spec.kind == Kind::LibBuildRs {
        manifest += "build = \"build.rs\"\n";
    }
    if spec.kind == Kind::ProcMacro {
        manifest += "\n[lib]\nproc-macro = true\n";
    }
    if spec.kind == Kind::LibBin {
        manifest += &format!(
            "\n[[bin]]\nname = \"{}\"\npath = \"src/main.rs\"\n",
            crate_name(spec.name)
        );
    }
    manifest += "\n[dependencies]\n";
    for dep in spec.deps {
        manifest += &format!(
            "{} = {{ version = \"0.1.0\", path = \"../{dep}\" }}\n",
            crate_name(dep)
        );
    }
    write_file(&dir.join("Cargo.toml"), &manifest)?;
    write_file(
        &dir.join("README.md"),
        &format!(
            "# {}\n\nGenerated by `cargo xtask bench publish`.\n",
            crate_name(spec.name)
        ),
    )?;

    if spec.kind == Kind::ProcMacro {
        return write_file(&dir.join("src/lib.rs"), PROC_MACRO);
    }
    let mut lib = String::from("//! Generated.\n#![allow(dead_code, clippy::all)]\n\n");
    for dep in spec.deps {
        if *dep == "macros" {
            let _ = writeln!(lib, "pub use {}::Describe;", ident(dep));
        }
    }
    for m in 0..modules {
        let _ = writeln!(lib, "pub mod m{m};");
        write_file(&dir.join(format!("src/m{m}.rs")), &module(spec, m))?;
    }
    if spec.kind == Kind::LibBuildRs {
        lib += "\npub const TABLE: &[u32] = include!(concat!(env!(\"OUT_DIR\"), \"/table.rs\"));\n";
        write_file(
            &dir.join("build.rs"),
            "use std::io::Write;\n\nfn main() {\n    \
             let out = std::path::PathBuf::from(std::env::var(\"OUT_DIR\").unwrap());\n    \
             let mut f = std::fs::File::create(out.join(\"table.rs\")).unwrap();\n    \
             let table: Vec<String> = (0..256u32).map(|i| (i.wrapping_mul(2654435761) >> 7).to_string()).collect();\n    \
             write!(f, \"&[{}]\", table.join(\", \")).unwrap();\n    \
             println!(\"cargo:rerun-if-changed=build.rs\");\n}\n",
        )?;
    }
    // `run` ties the crate to its dependencies, so each build really uses them.
    lib += "\n/// Exercises every module and every dependency.\npub fn run(seed: u64) -> u64 {\n    let mut acc = seed;\n";
    for dep in spec.deps {
        if *dep != "macros" {
            let _ = writeln!(lib, "    acc = acc.wrapping_add({}::run(acc));", ident(dep));
        }
    }
    for m in 0..modules {
        let _ = writeln!(lib, "    acc = acc.wrapping_add(m{m}::exercise(acc));");
    }
    if spec.kind == Kind::LibBuildRs {
        lib += "    acc = acc.wrapping_add(TABLE[(acc % 256) as usize] as u64);\n";
    }
    lib += "    acc\n}\n";
    write_file(&dir.join("src/lib.rs"), &lib)?;
    if spec.kind == Kind::LibBin {
        write_file(
            &dir.join("src/main.rs"),
            &format!(
                "fn main() {{\n    let seed = std::env::args().count() as u64;\n    \
                 println!(\"{{}}\", {}::run(seed));\n}}\n",
                ident(spec.name)
            ),
        )?;
    }
    Ok(())
}

/// One module: generic containers with trait impls, iterator chains,
/// formatting, a `macro_rules!` that stamps out functions, and concrete
/// uses of all of it so that a build has monomorphized code to generate.
fn module(spec: &Spec, m: usize) -> String {
    let derive_describe = spec.deps.contains(&"macros");
    let mut s = String::from("use std::collections::{BTreeMap, HashMap};\nuse std::fmt;\n\n");
    for i in 0..4 {
        let t = format!("Item{m}x{i}");
        let _ = write!(
            s,
            "#[derive(Debug, Clone, PartialEq, Default)]\n\
pub struct {t}<T> {{\n    pub values: Vec<T>,\n    pub name: String,\n    pub weight: f64,\n    pub tags: BTreeMap<String, u32>,\n}}\n\n\
impl<T: Copy + Into<f64> + fmt::Debug> {t}<T> {{\n\
    pub fn new(name: &str, values: Vec<T>) -> Self {{\n        \
        let tags = values.iter().enumerate().map(|(i, v)| (format!(\"{{name}}-{{i}}-{{v:?}}\"), i as u32)).collect();\n        \
        Self {{ values, name: name.to_owned(), weight: {w}.5, tags }}\n    }}\n\
    pub fn total(&self) -> f64 {{\n        self.values.iter().map(|v| (*v).into()).sum::<f64>() * self.weight\n    }}\n\
    pub fn sorted(&self) -> Vec<f64> {{\n        let mut v: Vec<f64> = self.values.iter().map(|x| (*x).into()).collect();\n        \
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));\n        v\n    }}\n\
    pub fn histogram(&self) -> HashMap<i64, usize> {{\n        let mut h = HashMap::new();\n        \
        for v in &self.values {{\n            *h.entry(((*v).into() / 10.0) as i64).or_insert(0) += 1;\n        }}\n        h\n    }}\n\
    pub fn describe(&self) -> String {{\n        \
        let parts: Vec<String> = self.sorted().iter().take(8).map(|v| format!(\"{{v:.2}}\")).collect();\n        \
        format!(\"{{}}[{{}}] = {{}} ({{}} tags)\", self.name, parts.join(\", \"), self.total(), self.tags.len())\n    }}\n}}\n\n\
impl<T: Copy + Into<f64> + fmt::Debug> fmt::Display for {t}<T> {{\n    \
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n        write!(f, \"{{}}\", self.describe())\n    }}\n}}\n\n",
            w = i + 1
        );
    }
    if derive_describe {
        let _ = write!(
            s,
            "#[derive(Debug, Clone, crate::Describe)]\npub struct Record{m} {{\n    pub id: u64,\n    pub label: String,\n}}\n\n"
        );
    }
    let _ = write!(
        s,
        "macro_rules! stamp {{\n    ($($f:ident => $k:expr),* $(,)?) => {{\n        $(\n        \
pub fn $f(input: &[u32]) -> BTreeMap<u32, Vec<String>> {{\n            let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();\n            \
for (i, x) in input.iter().enumerate() {{\n                let key = x.wrapping_mul($k) % 17;\n                \
out.entry(key).or_default().push(format!(\"{{}}:{{}}:{{:x}}\", i, x, x ^ $k));\n            }}\n            \
out.retain(|_, v| v.len() % 3 != 1 || v.iter().any(|s| s.ends_with('f')));\n            out\n        }}\n        )*\n    }};\n}}\n\n\
stamp! {{\n"
    );
    for f in 0..12 {
        let _ = writeln!(s, "    f{f} => {},", 7 + f * 13 + m);
    }
    s += "}\n\n";
    s += "/// Uses every type and function above with concrete types.\npub fn exercise(seed: u64) -> u64 {\n    let base: Vec<u32> = (0..64u32).map(|i| i.wrapping_mul(seed as u32 | 1)).collect();\n    let mut acc = 0u64;\n";
    for (i, ty) in ["u32", "f32", "u16", "i32"].iter().enumerate() {
        let _ = writeln!(
            s,
            "    let item = Item{m}x{i}::<{ty}>::new(\"x\", base.iter().map(|v| (*v % 1000) as {ty}).collect());\n    \
             acc = acc.wrapping_add(item.total() as u64 + item.histogram().len() as u64 + item.to_string().len() as u64);"
        );
    }
    for f in 0..12 {
        let _ = writeln!(s, "    acc = acc.wrapping_add(f{f}(&base).len() as u64);");
    }
    if derive_describe {
        let _ = writeln!(
            s,
            "    acc = acc.wrapping_add(Record{m}::describe_type().len() as u64);"
        );
    }
    s += "    acc\n}\n";
    s
}

/// A derive without `syn`: finds the type's name and implements
/// `describe_type`.
const PROC_MACRO: &str = r#"//! Generated: `#[derive(Describe)]`.
use proc_macro::{TokenStream, TokenTree};

#[proc_macro_derive(Describe)]
pub fn describe(input: TokenStream) -> TokenStream {
    let mut tokens = input.into_iter();
    let mut name = None;
    while let Some(token) = tokens.next() {
        if let TokenTree::Ident(ident) = &token {
            let word = ident.to_string();
            if word == "struct" || word == "enum" {
                name = tokens.next().map(|t| t.to_string());
                break;
            }
        }
    }
    let name = name.expect("a struct or an enum");
    format!(
        "impl {name} {{ pub fn describe_type() -> &'static str {{ \"{name}\" }} }}"
    )
    .parse()
    .expect("valid tokens")
}
"#;
