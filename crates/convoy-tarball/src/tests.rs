use insta::assert_snapshot;

use super::*;

fn check(bytes: &[u8]) -> Result<CrateManifest, TarballError> {
    inspect("foo", "1.0.0", bytes, TarballLimits::default())
}

fn err(bytes: &[u8]) -> String {
    check(bytes).expect_err("must be refused").to_string()
}

const MANIFEST: &[u8] = b"[package]\nname = \"foo\"\nversion = \"1.0.0\"\n";

#[test]
fn accepts_a_minimal_crate() {
    let manifest = check(&TarballBuilder::minimal("foo", "1.0.0").build()).expect("valid");
    assert_eq!(manifest.name, "foo");
    assert_eq!(manifest.version, "1.0.0");
    assert_eq!(manifest.files, ["Cargo.toml", "src/lib.rs"]);
}

#[test]
fn refuses_paths_outside_the_prefix() {
    let tb = TarballBuilder::minimal("foo", "1.0.0").file("bar-1.0.0/x", b"");
    assert_snapshot!(err(&tb.build()), @"invalid path `bar-1.0.0/x` in crate file, every path must be inside `foo-1.0.0/`");
    let tb = TarballBuilder::minimal("foo", "1.0.0").file("foo-1.0.0/../../etc/passwd", b"");
    assert_snapshot!(err(&tb.build()), @"invalid path `foo-1.0.0/../../etc/passwd` in crate file, every path must be inside `foo-1.0.0/`");
    let tb = TarballBuilder::minimal("foo", "1.0.0").file("/foo-1.0.0/x", b"");
    assert_snapshot!(err(&tb.build()), @"invalid path `/foo-1.0.0/x` in crate file, every path must be inside `foo-1.0.0/`");
}

#[test]
fn refuses_links() {
    let tb = TarballBuilder::minimal("foo", "1.0.0").symlink("foo-1.0.0/link", "/etc/passwd");
    assert_snapshot!(err(&tb.build()), @"unexpected symlink entry `foo-1.0.0/link` in crate file, only regular files and directories are allowed");
    let tb =
        TarballBuilder::minimal("foo", "1.0.0").hardlink("foo-1.0.0/hard", "foo-1.0.0/Cargo.toml");
    assert_snapshot!(err(&tb.build()), @"unexpected hard link entry `foo-1.0.0/hard` in crate file, only regular files and directories are allowed");
}

#[test]
fn refuses_disagreeing_pax_size() {
    let tb = TarballBuilder::minimal("foo", "1.0.0").file_with_pax_size("foo-1.0.0/x", b"abc", 0);
    assert_snapshot!(err(&tb.build()), @"entry `foo-1.0.0/x` has a PAX size of 0 bytes but a header size of 3 bytes");
    let tb = TarballBuilder::minimal("foo", "1.0.0").file_with_pax_size("foo-1.0.0/x", b"abc", 3);
    assert!(check(&tb.build()).is_ok());
}

#[test]
fn needs_exactly_one_well_spelled_manifest() {
    let tb = TarballBuilder::new().file("foo-1.0.0/src/lib.rs", b"");
    assert_snapshot!(err(&tb.build()), @"crate file has no `Cargo.toml` at its root");
    let tb = TarballBuilder::minimal("foo", "1.0.0").file("foo-1.0.0/cargo.toml", MANIFEST);
    assert_snapshot!(err(&tb.build()), @"crate file has more than one `Cargo.toml`: foo-1.0.0/Cargo.toml, foo-1.0.0/cargo.toml");
    let tb = TarballBuilder::new().file("foo-1.0.0/CARGO.TOML", MANIFEST);
    assert_snapshot!(err(&tb.build()), @"manifest `foo-1.0.0/CARGO.TOML` must be spelled `Cargo.toml`");
    let tb = TarballBuilder::new().file("foo-1.0.0/Cargo.toml", b"not toml [");
    assert!(err(&tb.build()).starts_with("`Cargo.toml` in crate file is invalid"));
    // A nested Cargo.toml (a vendored example, say) is just a file.
    let tb =
        TarballBuilder::minimal("foo", "1.0.0").file("foo-1.0.0/examples/Cargo.toml", MANIFEST);
    assert!(check(&tb.build()).is_ok());
}

#[test]
fn enforces_size_limits() {
    let bytes = TarballBuilder::minimal("foo", "1.0.0").build();
    let tight = TarballLimits {
        max_compressed: bytes.len() as u64 - 1,
        max_unpacked: u64::MAX,
    };
    let e = inspect("foo", "1.0.0", &bytes, tight).expect_err("too large");
    assert!(matches!(e, TarballError::TooLarge { .. }), "{e}");

    let bomb = TarballBuilder::minimal("foo", "1.0.0")
        .file("foo-1.0.0/zeros", &vec![0u8; 1 << 20])
        .build();
    let small = TarballLimits {
        max_compressed: u64::MAX,
        max_unpacked: 64 * 1024,
    };
    let e = inspect("foo", "1.0.0", &bomb, small).expect_err("too large unpacked");
    assert_snapshot!(e, @"crate file unpacks to more than 65536 bytes");
}

#[test]
fn refuses_garbage() {
    assert!(matches!(
        check(b"not gzip"),
        Err(TarballError::Malformed(_))
    ));
    let bytes = TarballBuilder::minimal("foo", "1.0.0").build();
    assert!(check(&bytes[..bytes.len() / 2]).is_err());
}
