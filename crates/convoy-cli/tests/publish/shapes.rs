//! Every workspace shape from the plan issue publishes completely, and a
//! fresh consumer builds and runs against what was published.

use convoy_test_support::REGISTRY;
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};

use crate::{Fixture, consume, index_lines, lib_rs, member};

#[test]
fn every_shape_publishes_and_a_consumer_builds() {
    let fx = Fixture::new(&[]);

    // A chain.
    let chain = WorkspaceBuilder::new()
        .package(member("ch-a", &[]))
        .package(member("ch-b", &["ch-a"]))
        .package(member("ch-c", &["ch-b"]));
    fx.publish(&fx.workspace("chain", &chain), &[]);

    // A diamond.
    let diamond = WorkspaceBuilder::new()
        .package(member("dm-base", &[]))
        .package(member("dm-left", &["dm-base"]))
        .package(member("dm-right", &["dm-base"]))
        .package(member("dm-top", &["dm-left", "dm-right"]));
    fx.publish(&fx.workspace("diamond", &diamond), &[]);

    // A wide fan-out.
    let mut fan = WorkspaceBuilder::new().package(member("fo-root", &[]));
    for i in 0..8 {
        fan = fan.package(member(&format!("fo-leaf{i}"), &["fo-root"]));
    }
    let doc = fx.publish(&fx.workspace("fan", &fan), &["-j", "4"]);
    assert_eq!(doc["registries"][0]["crates"].as_array().unwrap().len(), 9);

    // serde's shape: dev-dependency cycles in both directions, published
    // without touching a manifest.
    let serde = WorkspaceBuilder::new()
        .package(
            Pkg::new("sd-core")
                .file("src/lib.rs", lib_rs(&[]))
                .dev_dep("sd-serde", r#"{ path = "../sd-serde", version = "0.1.0" }"#)
                .dev_dep("sd-derive", r#"{ path = "../sd-derive", version = "0.1.0" }"#),
        )
        .package(
            member("sd-derive", &["sd-core"])
                .dev_dep("sd-serde", r#"{ path = "../sd-serde", version = "0.1.0" }"#),
        )
        .package(
            Pkg::new("sd-serde")
                .file(
                    "src/lib.rs",
                    "pub fn value() -> u32 { 1 + sd_core::value() }\n#[cfg(feature = \"derive\")]\npub use sd_derive;\n",
                )
                .local("sd-core", "0.1.0")
                .dep("sd-derive", r#"{ path = "../sd-derive", version = "0.1.0", optional = true }"#)
                .entry_raw("[features]\nderive = [\"dep:sd-derive\"]\n"),
        );
    let serde_root = fx.workspace("serde", &serde);
    let before = std::fs::read_to_string(serde_root.join("crates/sd-core/Cargo.toml")).unwrap();
    fx.publish(&serde_root, &[]);
    let after = std::fs::read_to_string(serde_root.join("crates/sd-core/Cargo.toml")).unwrap();
    assert_eq!(before, after, "the user's manifests are never edited");
    let core_line = &index_lines(&fx.server, "sd-core").unwrap()[0];
    assert!(
        core_line["deps"].as_array().unwrap().is_empty(),
        "dev-dependencies on members are not published: {core_line}"
    );

    // Renamed, optional, build and target-specific dependencies.
    let kinds = WorkspaceBuilder::new()
        .package(member("kd-base", &[]))
        .package(member("kd-gen", &[]))
        .package(member("kd-plat", &[]))
        .package(member("kd-opt", &[]))
        .package(
            Pkg::new("kd-top")
                .dep("b", r#"{ path = "../kd-base", version = "0.1.0", package = "kd-base" }"#)
                .dep("kd-opt", r#"{ path = "../kd-opt", version = "0.1.0", optional = true }"#)
                .build_dep("kd-gen", r#"{ path = "../kd-gen", version = "0.1.0" }"#)
                .entry("target.'cfg(unix)'.dependencies", "kd-plat", r#"{ path = "../kd-plat", version = "0.1.0" }"#)
                .entry_raw("[features]\nextra = [\"dep:kd-opt\"]\n")
                .file(
                    "build.rs",
                    "fn main() {\n    let out = std::env::var(\"OUT_DIR\").unwrap();\n    std::fs::write(format!(\"{out}/gen.txt\"), kd_gen::value().to_string()).unwrap();\n}\n",
                )
                .file(
                    "src/lib.rs",
                    "pub const GEN: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/gen.txt\"));\n\
                     pub fn value() -> u32 {\n    let mut v = 1 + b::value();\n    #[cfg(unix)]\n    { v += kd_plat::value(); }\n    #[cfg(feature = \"extra\")]\n    { v += kd_opt::value(); }\n    v\n}\n",
                ),
        );
    fx.publish(&fx.workspace("kinds", &kinds), &[]);

    // Inherited versions and dependencies, and a `publish = false` member.
    let inherited = WorkspaceBuilder::new()
        .workspace_toml(
            "[workspace.package]\nversion = \"0.3.0\"\n\n[workspace.dependencies]\nih-base = { path = \"crates/ih-base\", version = \"0.3.0\" }\nih-top = { path = \"crates/ih-top\", version = \"0.3.0\" }\n",
        )
        .package(Pkg::new("ih-base").version_inherited().file("src/lib.rs", lib_rs(&[])))
        .package(
            Pkg::new("ih-top")
                .version_inherited()
                .dep("ih-base", "{ workspace = true }")
                .file("src/lib.rs", lib_rs(&["ih_base"])),
        )
        .package(
            Pkg::new("ih-private")
                .field("publish", "false")
                .dep("ih-top", "{ workspace = true }")
                .file("src/lib.rs", lib_rs(&["ih_top"])),
        );
    fx.publish(&fx.workspace("inherited", &inherited), &[]);
    assert!(index_lines(&fx.server, "ih-private").is_none());

    // A fresh consumer resolves every top crate from the registry.
    let dep = |name: &str, version: &str, extra: &str| {
        format!("{name} = {{ version = \"{version}\", registry = \"{REGISTRY}\"{extra} }}\n")
    };
    let deps = [
        dep("ch-c", "0.1.0", ""),
        dep("dm-top", "0.1.0", ""),
        dep("fo-leaf3", "0.1.0", ""),
        dep("sd-serde", "0.1.0", ", features = [\"derive\"]"),
        dep("kd-top", "0.1.0", ", features = [\"extra\"]"),
        dep("ih-top", "0.3.0", ""),
    ]
    .concat();
    let printed = consume(
        &fx.cargo,
        "consumer",
        &deps,
        "fn main() {\n    println!(\"{} {} {} {} {} {} {}\", ch_c::value(), dm_top::value(), fo_leaf3::value(), sd_serde::value(), kd_top::value(), kd_top::GEN, ih_top::value());\n    let _ = sd_serde::sd_derive::value();\n}\n",
    );
    assert_eq!(printed, "3 5 2 2 4 1 2");
}
