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
        ..TarballLimits::default()
    };
    let e = inspect("foo", "1.0.0", &bytes, tight).expect_err("too large");
    assert!(matches!(e, TarballError::TooLarge { .. }), "{e}");

    let bomb = TarballBuilder::minimal("foo", "1.0.0")
        .file("foo-1.0.0/zeros", &vec![0u8; 1 << 20])
        .build();
    let small = TarballLimits {
        max_compressed: u64::MAX,
        max_unpacked: 64 * 1024,
        ..TarballLimits::default()
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

fn gz(raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(raw).expect("write");
    enc.finish().expect("finish")
}

#[test]
fn refuses_a_second_gzip_member() {
    let mut bytes = TarballBuilder::minimal("foo", "1.0.0").build();
    let hidden = TarballBuilder::minimal("foo", "1.0.0")
        .file("foo-1.0.0/src/evil.rs", b"fn evil() {}")
        .build();
    bytes.extend_from_slice(&hidden);
    let e = check(&bytes).expect_err("two members");
    assert!(matches!(e, TarballError::SecondGzipMember { .. }), "{e}");
    // Even a single stray byte after the first member.
    let mut bytes = TarballBuilder::minimal("foo", "1.0.0").build();
    bytes.push(0);
    assert!(matches!(
        check(&bytes),
        Err(TarballError::SecondGzipMember { extra: 1 })
    ));
}

#[test]
fn refuses_data_after_the_tar_end_marker_but_not_padding() {
    let padded = TarballBuilder::minimal("foo", "1.0.0").after_end(&[0; 10240]);
    assert!(check(&padded.build()).is_ok());
    let hidden = TarballBuilder::new()
        .file("foo-1.0.0/src/evil.rs", b"x")
        .build();
    // A whole second tar archive after the end marker.
    let inner = {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(hidden.as_slice())
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    };
    let tb = TarballBuilder::minimal("foo", "1.0.0").after_end(&inner);
    assert_snapshot!(err(&tb.build()), @"crate file has data after the end of its tar archive");
}

#[test]
fn bounds_long_names_and_pax_headers_before_reading_them() {
    // 64 MiB of name compresses to about 64 KiB; it must be refused from
    // its header, and the error must not quote it.
    let huge = vec![b'a'; 64 << 20];
    let bytes = TarballBuilder::minimal("foo", "1.0.0")
        .long_name_file(&huge, b"")
        .build();
    let e = check(&bytes).expect_err("too long");
    assert_snapshot!(e, @"an entry's path is 67108865 bytes long, the maximum is 4096");

    let pax_value = vec![b'b'; 1 << 20];
    let bytes = TarballBuilder::minimal("foo", "1.0.0")
        .pax(&[("comment", &pax_value)])
        .file("foo-1.0.0/x", b"")
        .build();
    let e = check(&bytes).expect_err("too large");
    assert!(matches!(e, TarballError::PaxTooLarge { .. }), "{e}");

    // A long name within the limit is an ordinary path.
    let name = format!("foo-1.0.0/{}/lib.rs", "d".repeat(150));
    let ok = TarballBuilder::minimal("foo", "1.0.0")
        .long_name_file(name.as_bytes(), b"")
        .build();
    let manifest = check(&ok).expect("long but fine");
    assert!(
        manifest
            .files
            .iter()
            .any(|f| f.ends_with("/lib.rs") && f.len() > 150)
    );

    // A long name that escapes the prefix is still caught, and quoted short.
    let evil = format!("foo-1.0.0/{}/../../../etc/passwd", "d".repeat(300));
    let e = err(&TarballBuilder::minimal("foo", "1.0.0")
        .long_name_file(evil.as_bytes(), b"")
        .build());
    assert!(e.starts_with("invalid path"), "{e}");
    assert!(e.len() < 200, "{e}");
}

#[test]
fn pax_paths_are_checked_and_may_not_be_ambiguous() {
    let tb = TarballBuilder::minimal("foo", "1.0.0")
        .pax(&[("path", b"../evil")])
        .file("foo-1.0.0/innocent", b"");
    assert!(err(&tb.build()).starts_with("invalid path `../evil`"));
    let tb = TarballBuilder::minimal("foo", "1.0.0")
        .pax(&[("path", b"foo-1.0.0/a")])
        .long_name_file(b"foo-1.0.0/b", b"");
    assert_snapshot!(err(&tb.build()), @"crate file has ambiguous extension headers: both a GNU long name and a PAX path for one entry");
    let tb = TarballBuilder::minimal("foo", "1.0.0")
        .pax(&[("linkpath", b"/etc/passwd")])
        .file("foo-1.0.0/x", b"");
    assert_snapshot!(err(&tb.build()), @"entry `foo-1.0.0/x` has a PAX `linkpath` record, which is not allowed in crate files");
    let tb = TarballBuilder::minimal("foo", "1.0.0").pax(&[("comment", b"dangling")]);
    assert_snapshot!(err(&tb.build()), @"crate file has ambiguous extension headers: an extension header describes no entry");
}

#[test]
fn refuses_names_that_collide_or_alias() {
    let tb = TarballBuilder::minimal("foo", "1.0.0").file("foo-1.0.0/src/lib.rs", b"again");
    assert_snapshot!(err(&tb.build()), @"entry `foo-1.0.0/src/lib.rs` appears more than once in the crate file");
    let tb = TarballBuilder::minimal("foo", "1.0.0").file("foo-1.0.0/./src//lib.rs", b"again");
    assert!(err(&tb.build()).contains("more than once"));
    let tb = TarballBuilder::minimal("foo", "1.0.0").file("foo-1.0.0/src/LIB.rs", b"");
    assert_snapshot!(err(&tb.build()), @"entries `foo-1.0.0/src/lib.rs` and `foo-1.0.0/src/LIB.rs` differ only by case and would overwrite each other on case-insensitive file systems");
    let tb = TarballBuilder::minimal("foo", "1.0.0").file("foo-1.0.0/Cargo.toml.", MANIFEST);
    assert_snapshot!(err(&tb.build()), @"entry `foo-1.0.0/Cargo.toml.` has a trailing dot or space, which Windows strips");
    for (path, problem) in [
        ("foo-1.0.0/CARGO~1.TOM", "8.3 short name"),
        ("foo-1.0.0/src/CON", "device name"),
        ("foo-1.0.0/src/com1.rs", "device name"),
        ("foo-1.0.0/Cargo.toml::$DATA", "character `:`"),
        ("foo-1.0.0/a|b", "character `|`"),
        ("foo-1.0.0/a\\b", "backslash"),
        ("foo-1.0.0/a\nb", "character `\\n`"),
        ("foo-1.0.0/src ", "trailing dot or space"),
    ] {
        let e = err(&TarballBuilder::minimal("foo", "1.0.0")
            .file(path, b"")
            .build());
        assert!(e.contains(problem), "{path}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
    let tb = TarballBuilder::minimal("foo", "1.0.0").file_raw_name(b"foo-1.0.0/\xff\xfe", b"");
    assert_snapshot!(err(&tb.build()), @"entry `foo-1.0.0/\u{fffd}\u{fffd}` has a name that is not UTF-8");
}

#[test]
fn malformed_archive_messages_are_bounded() {
    let bytes = gz(&[0x41; 4096]);
    let e = err(&bytes);
    assert!(e.len() < 400, "{e}");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("foo-1.0.0".to_owned()),
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just(String::new()),
            Just("Cargo.toml".to_owned()),
            Just("CARGO.TOML".to_owned()),
            Just("src".to_owned()),
            Just("bar-1.0.0".to_owned()),
            "[a-zA-Z0-9._~ :\\\\-]{1,8}",
            ".{1,6}",
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        (any::<bool>(), prop::collection::vec(segment(), 1..5))
            .prop_map(|(abs, segs)| format!("{}{}", if abs { "/" } else { "" }, segs.join("/")))
    }

    #[derive(Debug, Clone)]
    enum Op {
        File(String, Vec<u8>),
        Dir(String),
        Symlink(String),
        Long(String),
        Pax(String),
        PaxSize(String, u64),
        Manifest,
        AfterEnd(Vec<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (path(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(p, c)| Op::File(p, c)),
            path().prop_map(Op::Dir),
            path().prop_map(Op::Symlink),
            path().prop_map(Op::Long),
            path().prop_map(Op::Pax),
            (path(), 0u64..80).prop_map(|(p, n)| Op::PaxSize(p, n)),
            Just(Op::Manifest),
            prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..600)
                .prop_map(Op::AfterEnd),
        ]
    }

    fn build(ops: &[Op]) -> Vec<u8> {
        let mut tb = TarballBuilder::new();
        for op in ops {
            tb = match op {
                Op::File(p, c) => tb.file(p, c),
                Op::Dir(p) => tb.dir(p),
                Op::Symlink(p) => tb.symlink(p, "/etc/passwd"),
                Op::Long(p) => tb.long_name_file(p.as_bytes(), b"x"),
                Op::Pax(p) => tb.pax(&[("path", p.as_bytes())]).file("foo-1.0.0/pax", b""),
                Op::PaxSize(p, n) => tb.file_with_pax_size(p, b"abc", *n),
                Op::Manifest => tb.file("foo-1.0.0/Cargo.toml", MANIFEST),
                Op::AfterEnd(b) => tb.after_end(b),
            };
        }
        tb.build()
    }

    /// What cargo's unpacker (the `tar` crate, not raw) sees in `bytes`,
    /// and what a multi-member reader like `tar xzf` sees.
    fn unpacked_paths(bytes: &[u8], multi: bool) -> Vec<Vec<u8>> {
        use std::io::Read;
        let mut raw = Vec::new();
        let read = if multi {
            flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut raw)
        } else {
            flate2::read::GzDecoder::new(bytes).read_to_end(&mut raw)
        };
        read.expect("an accepted crate decompresses");
        let mut archive = tar::Archive::new(raw.as_slice());
        archive.set_ignore_zeros(multi);
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("an accepted crate parses")
                    .path_bytes()
                    .into_owned()
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_archives_never_escape_the_prefix(
            ops in prop::collection::vec(op(), 0..8),
            mutate in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
            append_member in any::<bool>(),
        ) {
            let mut bytes = build(&ops);
            if let Some((at, byte)) = mutate
                && !bytes.is_empty()
            {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if append_member {
                let extra = TarballBuilder::new().file("../evil", b"x").build();
                bytes.extend_from_slice(&extra);
            }
            let result = inspect("foo", "1.0.0", &bytes, TarballLimits::default());
            if let Ok(manifest) = result {
                for f in &manifest.files {
                    prop_assert!(!f.split('/').any(|s| s == ".." || s.is_empty()), "{f}");
                    prop_assert!(!f.contains('\\'), "{f}");
                }
                // Whatever reads the archive afterwards, with one member or
                // all of them, sees only paths inside `foo-1.0.0/`.
                for multi in [false, true] {
                    for p in unpacked_paths(&bytes, multi) {
                        let p = String::from_utf8(p).expect("utf-8");
                        let mut segs = p.split('/').filter(|s| !s.is_empty() && *s != ".");
                        prop_assert_eq!(segs.next(), Some("foo-1.0.0"), "{}", p);
                        prop_assert!(!segs.any(|s| s == ".."), "{}", p);
                    }
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = inspect("foo", "1.0.0", &bytes, TarballLimits::default());
            let _ = inspect("foo", "1.0.0", &gz(&bytes), TarballLimits::default());
        }
    }
}
