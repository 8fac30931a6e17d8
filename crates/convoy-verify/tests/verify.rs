//! Verification with real cargo against a real Convoy registry on
//! 127.0.0.1, started in-process.
//!
//! Modules by topic: `chain` (successful runs and identity), `features`
//! (no unification across packages), `failures` (what must fail and how it
//! is reported), `modes` (`--verify=none`). Fixtures are in `support`.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support {
    use std::collections::BTreeMap;
    use std::ffi::OsString;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use convoy_package::PackagedCrate;
    use convoy_protocol::publish::NewCrate;

    use convoy_verify::{Overlay, Upstream, VerifyEvent, VerifyMode, VerifyOptions};
    use sha2::{Digest, Sha256};

    /// A Convoy registry served from this process on 127.0.0.1:0.
    pub struct Registry {
        pub url: String,
        pub token: String,
        _inner: convoy_test_support::InProcessRegistry,
    }

    impl Registry {
        pub fn start() -> Self {
            let inner = convoy_test_support::InProcessRegistry::start();
            Self {
                url: inner.url.clone(),
                token: inner.token.clone(),
                _inner: inner,
            }
        }

        pub fn index_url(&self) -> String {
            format!("sparse+{}/index/", self.url)
        }

        pub fn upstream(&self) -> Upstream {
            Upstream::new(self.index_url(), Some(self.token.clone()))
        }
    }

    /// One dependency of a generated crate.
    pub struct Dep {
        pub name: &'static str,
        pub req: &'static str,
        /// A sibling in the same workspace (path + registry).
        pub local: bool,
        pub features: &'static [&'static str],
    }

    pub fn dep(name: &'static str, req: &'static str) -> Dep {
        Dep {
            name,
            req,
            local: false,
            features: &[],
        }
    }

    pub fn sibling(name: &'static str) -> Dep {
        Dep {
            name,
            req: "0.1.0",
            local: true,
            features: &[],
        }
    }

    /// A generated crate.
    pub struct Krate {
        pub name: &'static str,
        pub version: &'static str,
        pub deps: Vec<Dep>,
        pub features: &'static [(&'static str, &'static [&'static str])],
        /// Extra `[package]` keys.
        pub package_extra: &'static str,
        /// Keys of a `[lib]` section, if any (`proc-macro = true`).
        pub lib_extra: &'static str,
        /// Files relative to the crate root, `src/lib.rs` included.
        pub files: Vec<(&'static str, String)>,
    }

    impl Krate {
        pub fn lib(name: &'static str, deps: Vec<Dep>, lib_rs: &str) -> Self {
            Self {
                name,
                version: "0.1.0",
                deps,
                features: &[],
                package_extra: "",
                lib_extra: "",
                files: vec![("src/lib.rs", lib_rs.to_owned())],
            }
        }

        fn manifest(&self) -> String {
            let mut m = format!(
                "[package]\nname = \"{}\"\nversion = \"{}\"\nedition = \"2021\"\ndescription = \"test crate\"\nlicense = \"MIT\"\n{}\n",
                self.name, self.version, self.package_extra
            );
            if !self.lib_extra.is_empty() {
                m.push_str(&format!("\n[lib]\n{}\n", self.lib_extra));
            }
            m.push_str("\n[dependencies]\n");
            for d in &self.deps {
                let features = d
                    .features
                    .iter()
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if d.local {
                    m.push_str(&format!(
                        "{} = {{ path = \"../{}\", version = \"{}\", registry = \"convoy\", features = [{features}] }}\n",
                        d.name, d.name, d.req
                    ));
                } else {
                    m.push_str(&format!(
                        "{} = {{ version = \"{}\", registry = \"convoy\", features = [{features}] }}\n",
                        d.name, d.req
                    ));
                }
            }
            m.push_str("\n[features]\n");
            for (f, values) in self.features {
                let values = values
                    .iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                m.push_str(&format!("{f} = [{values}]\n"));
            }
            m
        }

        /// The publish JSON cargo would send, for the same target registry.
        fn metadata(&self) -> NewCrate {
            let deps: Vec<serde_json::Value> = self
                .deps
                .iter()
                .map(|d| {
                    let req = if d.req.starts_with(['^', '=', '~', '<', '>']) {
                        d.req.to_owned()
                    } else {
                        format!("^{}", d.req)
                    };
                    serde_json::json!({
                        "name": d.name, "version_req": req, "features": d.features,
                        "optional": false, "default_features": true, "target": null,
                        "kind": "normal", "registry": null, "explicit_name_in_toml": null
                    })
                })
                .collect();
            let features: BTreeMap<&str, &[&str]> = self.features.iter().copied().collect();
            serde_json::from_value(serde_json::json!({
                "name": self.name, "vers": self.version, "deps": deps, "features": features,
                "authors": [], "description": "test crate", "license": "MIT",
            }))
            .unwrap()
        }
    }

    /// An isolated cargo home and scratch space, knowing the registry as
    /// `convoy` through environment variables only.
    pub struct Sandbox {
        pub dir: tempfile::TempDir,
        env: BTreeMap<String, String>,
    }

    impl Sandbox {
        pub fn new(registry: &Registry) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let mut env = BTreeMap::new();
            env.insert(
                "CARGO_HOME".into(),
                dir.path().join("cargo-home").display().to_string(),
            );
            env.insert("CARGO_REGISTRIES_CONVOY_INDEX".into(), registry.index_url());
            env.insert(
                "CARGO_REGISTRIES_CONVOY_TOKEN".into(),
                registry.token.clone(),
            );
            env.insert("CARGO_TERM_COLOR".into(), "never".into());
            env.insert(
                "CARGO_TARGET_DIR".into(),
                dir.path().join("package-target").display().to_string(),
            );
            Self { dir, env }
        }

        pub fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        pub fn cargo(&self, cwd: &Path, args: &[&str]) -> Output {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(args).current_dir(cwd);
            for (key, _) in std::env::vars() {
                if key.starts_with("CARGO_") || key.starts_with("RUSTC") || key == "RUSTFLAGS" {
                    cmd.env_remove(&key);
                }
            }
            cmd.envs(&self.env);
            cmd.output().unwrap()
        }

        pub fn cargo_ok(&self, cwd: &Path, args: &[&str]) -> Output {
            let out = self.cargo(cwd, args);
            assert!(
                out.status.success(),
                "cargo {} failed\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            out
        }

        /// Publishes a third-party crate to the registry with `cargo publish`.
        pub fn publish(&self, krate: &Krate) {
            let root = self.write_crate(&format!("published/{}", krate.name), krate);
            self.cargo_ok(&root, &["publish", "--registry", "convoy", "--no-verify"]);
        }

        fn write_crate(&self, rel: &str, krate: &Krate) -> PathBuf {
            let root = self.path(rel);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("Cargo.toml"), krate.manifest()).unwrap();
            for (path, contents) in &krate.files {
                let path = root.join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, contents).unwrap();
            }
            root
        }

        /// Writes a workspace of `crates` under `name/`, packages it with
        /// `cargo package --no-verify --workspace --registry convoy`, and
        /// describes the `.crate` files as Convoy's packaging would, in the
        /// given order.
        pub fn package(&self, name: &str, crates: &[Krate]) -> (PathBuf, Vec<PackagedCrate>) {
            let root = self.path(name);
            let members = crates
                .iter()
                .map(|k| format!("{:?}", k.name))
                .collect::<Vec<_>>()
                .join(", ");
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(
                root.join("Cargo.toml"),
                format!("[workspace]\nmembers = [{members}]\nresolver = \"2\"\n"),
            )
            .unwrap();
            for k in crates {
                self.write_crate(&format!("{name}/{}", k.name), k);
            }
            self.cargo_ok(
                &root,
                &[
                    "package",
                    "--no-verify",
                    "--workspace",
                    "--registry",
                    "convoy",
                ],
            );
            let out = self.path("package-target").join("package");
            let packaged = crates
                .iter()
                .map(|k| {
                    let path = out.join(format!("{}-{}.crate", k.name, k.version));
                    let cksum = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
                    let metadata = k.metadata();
                    let index_line = metadata.to_index_package(cksum.clone(), None);
                    PackagedCrate {
                        name: k.name.to_owned(),
                        version: k.version.to_owned(),
                        path,
                        cksum,
                        metadata,
                        index_line,
                        local_deps: k
                            .deps
                            .iter()
                            .filter(|d| d.local)
                            .map(|d| d.name.to_owned())
                            .collect(),
                        changes: Vec::new(),
                    }
                })
                .collect();
            (root, packaged)
        }

        /// Options for a verification run inside the sandbox.
        pub fn options(&self, mode: VerifyMode, run: &str) -> VerifyOptions {
            let mut opts = VerifyOptions::new(
                self.path(&format!("{run}/target")),
                self.path(&format!("{run}/work")),
            );
            opts.mode = mode;
            opts.env = vec![(
                OsString::from("CARGO_HOME"),
                OsString::from(&self.env["CARGO_HOME"]),
            )];
            opts
        }
    }

    /// Runs a verification and records its events.
    pub fn run(
        packages: &[PackagedCrate],
        upstream: Upstream,
        opts: &VerifyOptions,
    ) -> (Result<(), convoy_verify::VerifyError>, Vec<VerifyEvent>) {
        let overlay = Overlay::start(&convoy_test_support::runtime(), upstream, packages).unwrap();
        let mut events = Vec::new();
        let result = convoy_verify::verify(packages, &overlay, opts, &mut |e| events.push(e));
        (result, events)
    }

    /// `dep 1.0.0`, with an `extra` feature gating `dep::extra()`.
    /// Library `a`, which calls `dep::base()` from [`dep_with_feature`].
    pub fn a_on_dep() -> Krate {
        Krate::lib(
            "a",
            vec![dep("dep", "1")],
            "pub fn a() -> u32 { dep::base() }\n",
        )
    }

    pub fn dep_with_feature() -> Krate {
        Krate {
            features: &[("extra", &[])],
            ..Krate::lib(
                "dep",
                vec![],
                "pub fn base() -> u32 { 1 }\n#[cfg(feature = \"extra\")]\npub fn extra() -> u32 { 2 }\n",
            )
        }
        .version("1.0.0")
    }

    impl Krate {
        pub fn version(mut self, version: &'static str) -> Self {
            self.version = version;
            self
        }
    }

    /// How many packages each `Finished` package was built with.
    pub fn together(events: &[VerifyEvent]) -> Vec<(String, usize)> {
        events
            .iter()
            .filter_map(|e| match e {
                VerifyEvent::Finished { name, together, .. } => Some((name.clone(), *together)),
                _ => None,
            })
            .collect()
    }

    /// Names of the `Finished` events, in order.
    pub fn finished(events: &[VerifyEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                VerifyEvent::Finished { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// The `[[package]]` entry for `name` in a lock file, as (source, checksum).
    pub fn lock_entry(lock: &str, name: &str) -> (Option<String>, Option<String>) {
        let value: toml::Value = toml::from_str(lock).unwrap();
        let pkg = value["package"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` in lock file:\n{lock}"));
        let get = |k: &str| pkg.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        (get("source"), get("checksum"))
    }
}

mod chain {
    use convoy_verify::{Strategy, VerifyEvent, VerifyMode};

    use crate::support::*;

    /// a → b → c, with `a` using a third-party crate from the target
    /// registry: local crates come from the overlay, `dep` from upstream,
    /// and everything keeps the target registry's identity.
    #[test]
    fn three_crate_chain_verifies_in_check_and_build_modes() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&dep_with_feature());
        let (_, packages) = sandbox.package(
            "ws",
            &[
                a_on_dep(),
                Krate::lib(
                    "b",
                    vec![sibling("a")],
                    "pub fn b() -> u32 { a::a() + 1 }\n",
                ),
                Krate {
                    files: vec![
                        ("src/lib.rs", "pub fn c() -> u32 { b::b() + 1 }\n".into()),
                        (
                            "src/main.rs",
                            "fn main() { assert_eq!(c::c(), 3); }\n".into(),
                        ),
                    ],
                    ..Krate::lib("c", vec![sibling("b")], "")
                },
            ],
        );

        for (mode, run_name) in [(VerifyMode::Check, "check"), (VerifyMode::Build, "build")] {
            let opts = sandbox.options(mode, run_name);
            let (result, events) = run(&packages, registry.upstream(), &opts);
            result.unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            assert_eq!(finished(&events), ["a", "b", "c"]);
            assert!(matches!(
                &events[0],
                VerifyEvent::Started { name, version, index: 0, total: 3 }
                    if name == "a" && version == "0.1.0"
            ));

            // Plain libraries are built as a dependency of a generated
            // consumer; `c` has a binary, so it is built unpacked.
            let strategies: Vec<(String, Strategy)> = events
                .iter()
                .filter_map(|e| match e {
                    VerifyEvent::Finished { name, strategy, .. } => Some((name.clone(), *strategy)),
                    _ => None,
                })
                .collect();
            assert_eq!(
                strategies,
                [
                    ("a".to_owned(), Strategy::AsDependency),
                    ("b".to_owned(), Strategy::AsDependency),
                    ("c".to_owned(), Strategy::Unpacked),
                ]
            );
            let lockfile = match events.last().unwrap() {
                VerifyEvent::Finished { lockfile, .. } => lockfile.clone(),
                other => panic!("{other:?}"),
            };
            assert_eq!(lockfile, opts.work_dir.join("c-0.1.0/Cargo.lock"));
            let lock = std::fs::read_to_string(lockfile).unwrap();
            let target = registry.index_url();
            for local in &packages[..2] {
                let (source, checksum) = lock_entry(&lock, &local.name);
                assert_eq!(source.as_deref(), Some(target.as_str()), "{lock}");
                assert_eq!(checksum.as_deref(), Some(local.cksum.as_str()), "{lock}");
            }
            let (source, _) = lock_entry(&lock, "dep");
            assert_eq!(source.as_deref(), Some(target.as_str()), "{lock}");
            if mode == VerifyMode::Build {
                let rlibs = std::fs::read_dir(opts.target_dir.join("debug/deps"))
                    .unwrap()
                    .filter(|e| {
                        let name = e.as_ref().unwrap().file_name();
                        let name = name.to_string_lossy();
                        name.starts_with("libc-") && name.ends_with(".rlib")
                    })
                    .count();
                assert_eq!(rlibs, 1, "build mode produces rlibs");
                assert!(opts.target_dir.join("debug/c").exists(), "and binaries");
            }
        }
        // The `.crate` files are the bytes to upload: verification must not
        // have touched them.
        for p in &packages {
            let bytes = std::fs::read(&p.path).unwrap();
            assert_eq!(
                convoy_verify_test_sha(&bytes),
                p.cksum,
                "{} was modified",
                p.name
            );
        }
    }

    fn convoy_verify_test_sha(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }
}

mod features {
    use convoy_verify::{Step, VerifyError, VerifyMode};

    use crate::support::*;

    /// `a` calls `dep::extra()` without enabling `extra`; its sibling `b`
    /// enables it. The workspace builds (features unify across members),
    /// but `a` alone does not, and that is how its users will build it.
    #[test]
    fn feature_enabled_only_by_a_sibling_fails() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&dep_with_feature());
        let b_dep = Dep {
            features: &["extra"],
            ..dep("dep", "1")
        };
        let (root, packages) = sandbox.package(
            "ws",
            &[
                Krate::lib(
                    "a",
                    vec![dep("dep", "1")],
                    "pub fn a() -> u32 { dep::extra() }\n",
                ),
                Krate::lib("b", vec![b_dep], "pub fn b() -> u32 { dep::extra() }\n"),
            ],
        );
        // The premise: in the source workspace, `a` compiles.
        sandbox.cargo_ok(&root, &["check", "--workspace"]);

        let opts = sandbox.options(VerifyMode::Check, "run");
        let (result, events) = run(&packages, registry.upstream(), &opts);
        assert!(finished(&events).is_empty());
        match result {
            Err(VerifyError::Cargo(f)) => {
                assert_eq!((f.name.as_str(), f.version.as_str()), ("a", "0.1.0"));
                assert_eq!(f.step, Step::Check);
                assert!(
                    f.stderr
                        .contains("cannot find function `extra` in crate `dep`"),
                    "{}",
                    f.stderr
                );
            }
            other => panic!("expected a cargo failure for `a`, got {other:?}"),
        }
    }
}

mod batching {
    use convoy_verify::{Overlay, Step, VerifyError, VerifyEvent, VerifyMode};

    use crate::support::*;

    /// `x`, `y` and `u` each ask `dep` for other features, so any two of
    /// them change each other's graphs; `p` shares nothing. Resolving all
    /// four jointly changes the first three, so only a group picked by
    /// agreeing graphs finds that `x` and `p` can share an invocation.
    #[test]
    fn libraries_that_each_conflict_with_someone_still_pair_up() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(
            &Krate {
                features: &[("extra", &[]), ("other", &[])],
                ..Krate::lib("dep", vec![], "pub fn base() -> u32 { 1 }\n")
            }
            .version("1.0.0"),
        );
        let with = |features: &'static [&'static str]| Dep {
            features,
            ..dep("dep", "1")
        };
        let (_, packages) = sandbox.package(
            "ws",
            &[
                Krate::lib("x", vec![with(&[])], "pub fn x() -> u32 { dep::base() }\n"),
                Krate::lib(
                    "y",
                    vec![with(&["extra"])],
                    "pub fn y() -> u32 { dep::base() }\n",
                ),
                Krate::lib(
                    "u",
                    vec![with(&["other"])],
                    "pub fn u() -> u32 { dep::base() }\n",
                ),
                Krate::lib("p", vec![], "pub fn p() -> u32 { 4 }\n"),
            ],
        );
        let opts = sandbox.options(VerifyMode::Check, "run");
        let (result, events) = run(&packages, registry.upstream(), &opts);
        result.unwrap();
        let mut got = together(&events);
        // `y` shares no unit with the batch, so it is built next to it in
        // the second lane and reported after the main lane.
        assert_eq!(got[..2], [("x".to_owned(), 2), ("p".to_owned(), 2)]);
        got.sort();
        assert_eq!(
            got,
            [
                ("p".to_owned(), 2),
                ("u".to_owned(), 1),
                ("x".to_owned(), 2),
                ("y".to_owned(), 1),
            ]
        );
    }

    /// `a` would only compile next to `b`, which turns on `dep/extra`:
    /// cargo's resolution of `a` alone lacks the feature, so `a` is never
    /// grouped with `b`. It is grouped with `c`, which changes nothing of
    /// its graph; that batch fails, and `a` rebuilt alone fails naming
    /// itself, before anything is reported verified.
    #[test]
    fn a_library_whose_features_would_unify_is_built_alone_and_fails() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&dep_with_feature());
        let b_dep = Dep {
            features: &["extra"],
            ..dep("dep", "1")
        };
        let (root, packages) = sandbox.package(
            "ws",
            &[
                Krate::lib(
                    "a",
                    vec![dep("dep", "1")],
                    "pub fn a() -> u32 { dep::extra() }\n",
                ),
                Krate::lib("b", vec![b_dep], "pub fn b() -> u32 { dep::extra() }\n"),
                Krate::lib("c", vec![], "pub fn c() -> u32 { 3 }\n"),
            ],
        );
        // The premise: building them together works.
        sandbox.cargo_ok(&root, &["check", "--workspace"]);

        let opts = sandbox.options(VerifyMode::Check, "run");
        let (result, events) = run(&packages, registry.upstream(), &opts);
        assert_eq!(together(&events), [], "{events:?}");
        let started: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                VerifyEvent::Started { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(started, ["a", "c"], "a batch of `a` and `c`, never `b`");
        match result {
            Err(VerifyError::Cargo(f)) => {
                assert_eq!((f.name.as_str(), f.version.as_str()), ("a", "0.1.0"));
                assert_eq!(f.step, Step::Check);
                assert!(
                    f.stderr
                        .contains("cannot find function `extra` in crate `dep`"),
                    "{}",
                    f.stderr
                );
            }
            other => panic!("expected a cargo failure for `a`, got {other:?}"),
        }
    }

    /// A second run over the same packages in the same target directory
    /// (a resume after a failed upload) gets the same overlay URL, so
    /// cargo finds its extracted sources and reports every build of the
    /// first run `Fresh`.
    #[test]
    fn a_rerun_keeps_the_overlay_url_and_reuses_every_build() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&dep_with_feature());
        let (_, packages) = sandbox.package(
            "ws",
            &[
                a_on_dep(),
                Krate::lib(
                    "b",
                    vec![sibling("a")],
                    "pub fn b() -> u32 { a::a() + 1 }\n",
                ),
            ],
        );
        let opts = sandbox.options(VerifyMode::Check, "run");
        let first = Overlay::start(
            &convoy_test_support::runtime(),
            registry.upstream(),
            &packages,
        )
        .unwrap();
        let url = first.index_url();
        let mut events = Vec::new();
        convoy_verify::verify(&packages, &first, &opts, &mut |e| events.push(e)).unwrap();
        assert_eq!(
            together(&events),
            [("a".to_owned(), 2), ("b".to_owned(), 2)]
        );
        drop(first);

        let second = Overlay::start(
            &convoy_test_support::runtime(),
            registry.upstream(),
            &packages,
        )
        .unwrap();
        assert_eq!(second.index_url(), url, "same packages, same URL");
        // What verification runs, with cargo asked to say what it reuses.
        let consumer = opts.work_dir.join("batch-0.consumer");
        std::fs::remove_file(consumer.join("Cargo.lock")).unwrap();
        let out = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
            .args(["check", "-v", "--color", "never", "--target-dir"])
            .arg(&opts.target_dir)
            .args(second.cargo_config_args())
            .current_dir(&consumer)
            .envs(opts.env.iter().cloned())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        for name in ["a v0.1.0", "b v0.1.0", "dep v1.0.0"] {
            assert!(
                stderr.contains(&format!("Fresh {name}")),
                "{name}:\n{stderr}"
            );
        }
        assert!(!stderr.contains("Checking"), "{stderr}");
        assert!(!stderr.contains("Downloaded"), "{stderr}");
        // And the rerun itself passes.
        convoy_verify::verify(&packages, &second, &opts, &mut |_| {}).unwrap();
    }
}

mod failures {
    use convoy_verify::{VerifyError, VerifyMode};

    use crate::support::*;

    /// The error names the crate that failed, after the ones before it
    /// verified, and carries the compiler's message.
    #[test]
    fn compile_error_names_the_crate() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        let (_, packages) = sandbox.package(
            "ws",
            &[
                Krate::lib("good", vec![], "pub fn good() -> u32 { 1 }\n"),
                Krate::lib(
                    "bad",
                    vec![sibling("good")],
                    "pub fn bad() -> u32 { good::good() + \"one\" }\n",
                ),
            ],
        );
        let opts = sandbox.options(VerifyMode::Check, "run");
        let (result, events) = run(&packages, registry.upstream(), &opts);
        assert_eq!(finished(&events), ["good"]);
        let err = result.unwrap_err();
        assert_eq!(err.package(), Some(("bad", "0.1.0")));
        let message = err.to_string();
        assert!(
            message.starts_with("failed to verify `bad v0.1.0`, `cargo check` failed"),
            "{message}"
        );
        assert!(message.contains("error[E0277]"), "{message}");
    }

    /// A file the crate needs but the package excludes.
    #[test]
    fn file_missing_from_the_package_fails() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        let krate = Krate {
            package_extra: "exclude = [\"fixtures/\"]",
            files: vec![
                (
                    "src/lib.rs",
                    "pub const DATA: &str = include_str!(\"../fixtures/data.txt\");\n".into(),
                ),
                ("fixtures/data.txt", "hello".into()),
            ],
            ..Krate::lib("inc", vec![], "")
        };
        let (root, packages) = sandbox.package("ws", &[krate]);
        sandbox.cargo_ok(&root, &["check", "--workspace"]);
        let opts = sandbox.options(VerifyMode::Check, "run");
        let (result, _) = run(&packages, registry.upstream(), &opts);
        match result {
            Err(VerifyError::Cargo(f)) => {
                assert_eq!(f.name, "inc");
                assert!(f.stderr.contains("fixtures/data.txt"), "{}", f.stderr);
            }
            other => panic!("expected a cargo failure, got {other:?}"),
        }
    }

    /// A build script writing into its package is refused, as by cargo.
    #[test]
    fn build_script_modifying_sources_fails() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        let krate = Krate {
            files: vec![
                ("src/lib.rs", "pub fn f() {}\n".into()),
                (
                    "build.rs",
                    "fn main() { std::fs::write(\"src/generated.rs\", \"\").unwrap(); }\n".into(),
                ),
            ],
            ..Krate::lib("scribble", vec![], "")
        };
        let (_, packages) = sandbox.package("ws", &[krate]);
        let opts = sandbox.options(VerifyMode::Check, "run");
        let (result, _) = run(&packages, registry.upstream(), &opts);
        match result {
            Err(VerifyError::SourcesModified { name, files, .. }) => {
                assert_eq!(name, "scribble");
                assert_eq!(files, ["src/generated.rs"]);
            }
            other => panic!("expected SourcesModified, got {other:?}"),
        }
    }
}

mod modes {
    use convoy_verify::VerifyMode;

    use crate::support::*;

    /// `--verify=none` runs nothing, so even a broken crate passes.
    #[test]
    fn none_does_nothing() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        let (_, packages) = sandbox.package(
            "ws",
            &[Krate::lib(
                "broken",
                vec![],
                "pub fn f() -> u32 { \"x\" }\n",
            )],
        );
        let opts = sandbox.options(VerifyMode::None, "run");
        let (result, events) = run(&packages, registry.upstream(), &opts);
        result.unwrap();
        assert!(events.is_empty());
        assert!(!opts.work_dir.exists());
        assert!(!opts.target_dir.exists());
    }

    /// `run_tests` runs the packaged tests, catching fixtures that tests
    /// read but the package excludes.
    #[test]
    fn tests_run_from_packaged_sources() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        let krate = Krate {
            package_extra: "exclude = [\"tests/fixtures/\"]",
            files: vec![
                ("src/lib.rs", "pub fn f() -> u32 { 1 }\n".into()),
                (
                    "tests/it.rs",
                    "#[test]\nfn reads_fixture() { assert_eq!(std::fs::read_to_string(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/tests/fixtures/x.txt\")).unwrap(), \"x\"); }\n".into(),
                ),
                ("tests/fixtures/x.txt", "x".into()),
            ],
            ..Krate::lib("fixt", vec![], "")
        };
        let (root, packages) = sandbox.package("ws", &[krate]);
        sandbox.cargo_ok(&root, &["test", "--workspace"]);
        // Check alone passes…
        let opts = sandbox.options(VerifyMode::Check, "check");
        run(&packages, registry.upstream(), &opts).0.unwrap();
        // …tests from the package do not.
        let mut opts = sandbox.options(VerifyMode::Check, "test");
        opts.run_tests = true;
        let (result, events) = run(&packages, registry.upstream(), &opts);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, convoy_verify::VerifyEvent::Testing { .. }))
        );
        match result {
            Err(convoy_verify::VerifyError::Cargo(f)) => {
                assert_eq!(f.step, convoy_verify::Step::Test);
                assert!(f.stdout.contains("reads_fixture"), "{}", f.stdout);
            }
            other => panic!("expected a test failure, got {other:?}"),
        }
    }
}

mod overlay {
    use convoy_verify::{Overlay, Upstream};

    use crate::support::*;

    /// A version that exists both upstream and locally is served once, as
    /// the local line; other crates pass through; unknown ones are 404.
    #[test]
    fn local_versions_shadow_upstream_ones() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&dep_with_feature());
        sandbox.publish(&Krate::lib("other", vec![], "").version("2.0.0"));
        let (_, packages) = sandbox.package(
            "ws",
            &[Krate::lib("dep", vec![], "pub fn local() {}\n").version("1.0.0")],
        );
        let overlay = Overlay::start(
            &convoy_test_support::runtime(),
            registry.upstream(),
            &packages,
        )
        .unwrap();
        let base = overlay
            .index_url()
            .strip_prefix("sparse+")
            .unwrap()
            .to_owned();
        let client = reqwest::blocking::Client::new();
        let get = |path: &str| client.get(format!("{base}{path}")).send().unwrap();

        let config: serde_json::Value = get("config.json").json().unwrap();
        let dl = config["dl"].as_str().unwrap().to_owned();
        assert!(dl.starts_with("http://127.0.0.1:"), "{config}");
        assert!(config.get("api").is_none());

        let lines = get("3/d/dep").text().unwrap();
        let lines: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["cksum"], packages[0].cksum.as_str());

        let other = get("ot/he/other");
        assert_eq!(other.status(), 200);
        assert!(other.text().unwrap().contains("\"vers\":\"2.0.0\""));
        assert_eq!(get("3/n/nope").status(), 404);

        let bytes = client
            .get(format!("{dl}/dep/1.0.0/download"))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(bytes.as_ref(), std::fs::read(&packages[0].path).unwrap());
        let upstream = client
            .get(format!("{dl}/other/2.0.0/download"))
            .send()
            .unwrap();
        assert_eq!(upstream.status(), 200);
        assert!(overlay.upstream_errors().is_empty());
    }

    /// Upstream downloads land in the cache under their checksum; an entry
    /// whose bytes do not match is never served.
    #[test]
    fn downloads_are_cached_by_checksum() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&Krate::lib("other", vec![], "").version("2.0.0"));
        let cache = sandbox.path("downloads");
        let client = reqwest::blocking::Client::new();
        let fetch = |overlay: &Overlay| {
            let base = overlay
                .index_url()
                .strip_prefix("sparse+")
                .unwrap()
                .to_owned();
            let line = client
                .get(format!("{base}ot/he/other"))
                .send()
                .unwrap()
                .text()
                .unwrap();
            let line: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
            let config: serde_json::Value = client
                .get(format!("{base}config.json"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let bytes = client
                .get(format!(
                    "{}/other/2.0.0/download",
                    config["dl"].as_str().unwrap()
                ))
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            (line["cksum"].as_str().unwrap().to_owned(), bytes)
        };

        let overlay =
            Overlay::start(&convoy_test_support::runtime(), registry.upstream(), &[]).unwrap();
        overlay.cache_downloads_in(&cache);
        let (cksum, bytes) = fetch(&overlay);
        drop(overlay);
        assert_eq!(std::fs::read(cache.join(&cksum)).unwrap(), bytes.as_ref());

        std::fs::write(cache.join(&cksum), b"not the crate").unwrap();
        let overlay =
            Overlay::start(&convoy_test_support::runtime(), registry.upstream(), &[]).unwrap();
        overlay.cache_downloads_in(&cache);
        let (_, again) = fetch(&overlay);
        assert_eq!(again, bytes, "a bad entry is refused and replaced");
        assert_eq!(std::fs::read(cache.join(&cksum)).unwrap(), bytes.as_ref());
    }

    /// The `--config` arguments for both kinds of target. Starting an
    /// overlay reads nothing upstream, so crates.io is not contacted.
    #[test]
    fn config_args_replace_the_target_source() {
        let crates_io = Overlay::start(
            &convoy_test_support::runtime(),
            Upstream::new("sparse+https://index.crates.io/", None),
            &[],
        )
        .unwrap();
        let url = crates_io.index_url();
        assert_eq!(
            crates_io.cargo_config_args(),
            [
                "--config".to_owned(),
                "source.crates-io.replace-with=\"convoy-overlay\"".to_owned(),
                "--config".to_owned(),
                format!("source.convoy-overlay.registry=\"{url}\""),
            ]
        );
        let alt = Overlay::start(
            &convoy_test_support::runtime(),
            Upstream::new("sparse+http://127.0.0.1:9/index/", None),
            &[],
        )
        .unwrap();
        let args = alt.cargo_config_args();
        assert_eq!(
            args[1],
            "source.convoy-target.registry=\"sparse+http://127.0.0.1:9/index/\""
        );
        assert_eq!(
            args[3],
            "source.convoy-target.replace-with=\"convoy-overlay\""
        );
    }
}

/// Proc-macros: compiled to a loadable library only when a sibling uses
/// one; otherwise type-checked like any crate `cargo check` roots.
mod proc_macros {
    use convoy_verify::{Strategy, VerifyEvent, VerifyMode};

    use crate::support::*;

    fn proc_macro(name: &'static str, body: &str) -> Krate {
        Krate {
            lib_extra: "proc-macro = true",
            ..Krate::lib(
                name,
                vec![],
                &format!(
                    "extern crate proc_macro;\nuse proc_macro::TokenStream;\n\
                     #[proc_macro]\npub fn answer(_: TokenStream) -> TokenStream {{ {body} }}\n"
                ),
            )
        }
    }

    fn strategies(events: &[VerifyEvent]) -> Vec<(String, Strategy)> {
        events
            .iter()
            .filter_map(|e| match e {
                VerifyEvent::Finished { name, strategy, .. } => Some((name.clone(), *strategy)),
                _ => None,
            })
            .collect()
    }

    /// `lonely` is used by nobody: checked as a root. `shared` is expanded
    /// by `user`, so it is built as a dependency and `user` reuses that
    /// build. In build mode both are dependencies.
    #[test]
    fn an_unused_proc_macro_is_checked_as_a_root_and_a_used_one_is_built_once() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        let (_, packages) = sandbox.package(
            "ws",
            &[
                proc_macro("lonely", "\"1\".parse().unwrap()"),
                proc_macro("shared", "\"42\".parse().unwrap()"),
                Krate::lib(
                    "user",
                    vec![sibling("shared")],
                    "pub fn x() -> u32 { shared::answer!() }\n",
                ),
            ],
        );
        let opts = sandbox.options(VerifyMode::Check, "check");
        let (result, events) = run(&packages, registry.upstream(), &opts);
        result.unwrap();
        let mut got = strategies(&events);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("lonely".to_owned(), Strategy::Unpacked),
                ("shared".to_owned(), Strategy::AsDependency),
                ("user".to_owned(), Strategy::AsDependency),
            ]
        );
        // It shares nothing with the others, so it was checked next to them,
        // in a target directory of its own.
        assert!(
            opts.work_dir
                .join("second-lane-target")
                .join("debug")
                .is_dir(),
            "the second lane was not used"
        );

        let opts = sandbox.options(VerifyMode::Build, "build");
        let (result, events) = run(&packages, registry.upstream(), &opts);
        result.unwrap();
        assert!(
            strategies(&events)
                .iter()
                .all(|(_, s)| *s == Strategy::AsDependency),
            "{events:?}"
        );
    }

    /// Checked as a root or not, a proc-macro that does not compile fails
    /// and is named.
    #[test]
    fn an_unused_proc_macro_that_does_not_compile_fails() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        let (_, packages) = sandbox.package(
            "ws",
            &[
                Krate::lib("plain", vec![], "pub fn f() -> u32 { 1 }\n"),
                proc_macro("broken", "1u32 + \"x\""),
            ],
        );
        let opts = sandbox.options(VerifyMode::Check, "run");
        let (result, _) = run(&packages, registry.upstream(), &opts);
        let err = result.unwrap_err();
        assert_eq!(err.package(), Some(("broken", "0.1.0")));
        assert!(err.to_string().contains("error[E0277]"), "{err}");
    }
}

/// A rerun with the same packages takes its lock files and resolutions
/// from the first run instead of asking cargo again.
mod reruns {
    use convoy_verify::{Overlay, VerifyMode};

    use crate::support::*;

    #[test]
    fn a_lock_file_is_reused_for_the_same_package_and_overlay_only() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&dep_with_feature());
        let (_, packages) = sandbox.package("ws", &[a_on_dep()]);
        let opts = sandbox.options(VerifyMode::Check, "run");
        let overlay =
            Overlay::start(&convoy_test_support::runtime(), registry.upstream(), &[]).unwrap();
        let first = convoy_verify::generate_lockfile(&packages[0], &overlay, &opts, None).unwrap();
        assert!(lock_entry(&first, "dep").1.is_some(), "{first}");
        // Cargo's working copy is gone; the second answer cannot come
        // from cargo without unpacking the package again.
        let unpacked = opts.work_dir.join("lock").join("a-0.1.0");
        std::fs::remove_dir_all(&unpacked).unwrap();
        let second = convoy_verify::generate_lockfile(&packages[0], &overlay, &opts, None).unwrap();
        assert_eq!(second, first);
        assert!(!unpacked.exists(), "cargo ran again");

        // Other bytes, another lock run.
        let mut changed = packages[0].clone();
        changed.cksum = "0".repeat(64);
        convoy_verify::generate_lockfile(&changed, &overlay, &opts, None).unwrap();
        assert!(unpacked.exists(), "a changed package must be locked afresh");
    }

    /// With the workspace's lock as the previous resolution, a package's
    /// lock keeps the versions the workspace locked, as `cargo package`
    /// does; without one, it takes the newest.
    #[test]
    fn a_previous_lock_keeps_its_versions() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&dep_with_feature());
        let (_, packages) = sandbox.package("ws", &[a_on_dep()]);
        let runtime = convoy_test_support::runtime();
        let overlay = Overlay::start(&runtime, registry.upstream(), &[]).unwrap();
        let version = |lock: &str| {
            let value: toml::Value = toml::from_str(lock).unwrap();
            value["package"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"].as_str() == Some("dep"))
                .map(|p| p["version"].as_str().unwrap().to_owned())
        };
        let old = sandbox.options(VerifyMode::Check, "old");
        let workspace_lock =
            convoy_verify::generate_lockfile(&packages[0], &overlay, &old, None).unwrap();
        assert_eq!(version(&workspace_lock).as_deref(), Some("1.0.0"));

        sandbox.publish(&dep_with_feature().version("1.1.0"));
        let kept = sandbox.options(VerifyMode::Check, "kept");
        let lock =
            convoy_verify::generate_lockfile(&packages[0], &overlay, &kept, Some(&workspace_lock))
                .unwrap();
        assert_eq!(version(&lock).as_deref(), Some("1.0.0"), "{lock}");
        assert!(lock_entry(&lock, "dep").1.is_some(), "{lock}");
        // A new overlay: each one keeps the index files it read.
        let overlay = Overlay::start(&runtime, registry.upstream(), &[]).unwrap();
        let fresh = sandbox.options(VerifyMode::Check, "fresh");
        let lock = convoy_verify::generate_lockfile(&packages[0], &overlay, &fresh, None).unwrap();
        assert_eq!(version(&lock).as_deref(), Some("1.1.0"), "{lock}");
    }

    /// The batching decision of a rerun comes from the first run's
    /// resolutions: made to say the two libraries conflict, the rerun
    /// builds them apart.
    #[test]
    fn a_rerun_decides_batches_from_the_first_runs_resolutions() {
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        let (_, packages) = sandbox.package(
            "ws",
            &[
                Krate::lib("a", vec![], "pub fn a() -> u32 { 1 }\n"),
                Krate::lib("b", vec![], "pub fn b() -> u32 { 2 }\n"),
            ],
        );
        let opts = sandbox.options(VerifyMode::Check, "run");
        let (result, events) = run(&packages, registry.upstream(), &opts);
        result.unwrap();
        assert_eq!(together(&events), [("a".into(), 2), ("b".into(), 2)]);

        let trees = opts.work_dir.join("cache").join("trees");
        let mut edited = 0;
        for entry in std::fs::read_dir(&trees).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // The joint resolution names both libraries; give `a` a
            // feature there that it does not have alone.
            if text.contains("1a v0.1.0") && text.contains("1b v0.1.0") {
                let text: String = text
                    .lines()
                    .map(|line| match line.strip_prefix("1a v0.1.0") {
                        Some(rest) => format!("1a v0.1.0{}\n", rest.replacen('|', "|made-up", 1)),
                        None => format!("{line}\n"),
                    })
                    .collect();
                std::fs::write(&path, text).unwrap();
                edited += 1;
            }
        }
        assert_eq!(edited, 1, "one joint resolution in {}", trees.display());
        let (result, events) = run(&packages, registry.upstream(), &opts);
        result.unwrap();
        assert_eq!(together(&events), [("a".into(), 1), ("b".into(), 1)]);
    }
}

/// Timings on a generated workspace, compared with `cargo package
/// --workspace` in the same run. Not part of the normal suite:
/// `cargo test -p convoy-verify --test verify -- --ignored --nocapture bench`.
mod bench {
    use std::time::Instant;

    use convoy_verify::VerifyMode;

    use crate::support::*;

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    /// A crate body with some weight: structs, derives, generics, closures.
    fn body(name: &str, deps: &[&str], n: usize) -> String {
        let mut s = String::new();
        for d in deps {
            s.push_str(&format!("pub use {d};\n"));
        }
        for i in 0..n {
            s.push_str(&format!(
                "#[derive(Debug, Clone, PartialEq, Default)]\npub struct S{i} {{ pub a: u64, pub b: Vec<String>, pub c: Option<Box<S{i}>> }}\n\
                 impl S{i} {{ pub fn f<T: std::fmt::Debug + Clone>(&self, t: T) -> String {{ let v: Vec<T> = (0..{i} % 7 + 1).map(|_| t.clone()).collect(); format!(\"{{:?}}{{:?}}{{}}\", self, v, self.a.wrapping_mul({i})) }} }}\n\
                 pub fn g{i}(x: u64) -> u64 {{ let s = S{i} {{ a: x, ..Default::default() }}; s.f(x).len() as u64 + x.rotate_left({i} % 63) }}\n"
            ));
        }
        s.push_str(&format!("pub fn {name}_all() -> u64 {{ 0"));
        for i in 0..n {
            s.push_str(&format!(" + g{i}({i})"));
        }
        for d in deps {
            s.push_str(&format!(" + {d}::{d}_all()"));
        }
        s.push_str(" }\n");
        s
    }

    #[test]
    #[ignore = "benchmark, minutes of compilation"]
    fn bench_generated_workspace() {
        let n: usize = std::env::var("BENCH_ITEMS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(150);
        let registry = Registry::start();
        let sandbox = Sandbox::new(&registry);
        sandbox.publish(&Krate::lib("thirdp", vec![], &body("thirdp", &[], n)).version("1.0.0"));
        // c0 ← c1, c2 ← c3 ← c4; c0 ← c5; c4, c5 ← c6 ← c7
        let shape: [&[usize]; 8] = [&[], &[0], &[0], &[1, 2], &[3], &[0], &[4, 5], &[6]];
        let crates: Vec<Krate> = shape
            .iter()
            .enumerate()
            .map(|(i, deps)| {
                let name = leak(format!("c{i}"));
                let mut dep_names: Vec<&str> = deps.iter().map(|d| leak(format!("c{d}"))).collect();
                let mut kdeps: Vec<Dep> = dep_names.iter().map(|d| sibling(d)).collect();
                if i == 0 {
                    kdeps.push(dep("thirdp", "1"));
                    dep_names.push("thirdp");
                }
                Krate::lib(name, kdeps, &body(name, &dep_names, n))
            })
            .collect();

        let t = Instant::now();
        let (root, packages) = sandbox.package("ws", &crates);
        let package_no_verify = t.elapsed();

        let time_cargo = |args: &[&str], target: &str| {
            let t = Instant::now();
            let mut full = args.to_vec();
            let target = sandbox.path(target).display().to_string();
            full.extend(["--target-dir", &target]);
            sandbox.cargo_ok(&root, &full);
            t.elapsed()
        };
        let cargo_package = time_cargo(
            &["package", "--workspace", "--registry", "convoy"],
            "t-cargo-package",
        );
        let cargo_build = time_cargo(&["build", "--workspace"], "t-cargo-build");

        let mut results = Vec::new();
        for (label, mode) in [("check", VerifyMode::Check), ("build", VerifyMode::Build)] {
            let opts = sandbox.options(mode, &format!("v-{label}"));
            let t = Instant::now();
            let (result, _) = run(&packages, registry.upstream(), &opts);
            result.unwrap();
            let verify = t.elapsed();
            results.push((label, verify));
        }
        eprintln!("items per crate: {n}, crates: 8 + 1 third-party");
        eprintln!("cargo package --no-verify --workspace: {package_no_verify:.2?}");
        eprintln!("cargo package --workspace (cargo's verify): {cargo_package:.2?}");
        eprintln!("cargo build --workspace (clean): {cargo_build:.2?}");
        for (label, verify) in results {
            let total = package_no_verify + verify;
            eprintln!(
                "convoy {label}: verify {verify:.2?}, package+verify {total:.2?} = {:.2}x cargo package, {:.2}x cargo build",
                total.as_secs_f64() / cargo_package.as_secs_f64(),
                total.as_secs_f64() / cargo_build.as_secs_f64()
            );
        }
    }
}
