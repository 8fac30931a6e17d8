//! Tests of `convoy-index-client`: registry resolution from cargo config in
//! `resolve`, HTTP reads against a local fixture in `sparse`.
#![allow(clippy::unwrap_used)]

mod resolve {
    use convoy_index_client::{RegistryRequest, resolve_registry_with};
    use convoy_protocol::crates_io::INDEX as CRATES_IO_INDEX;

    fn env(home: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = vec![("CARGO_HOME".to_owned(), home.display().to_string())];
        v.extend(
            extra
                .iter()
                .map(|(k, val)| ((*k).to_owned(), (*val).to_owned())),
        );
        v
    }

    #[test]
    fn default_is_crates_io() {
        let home = tempfile::tempdir().unwrap();
        let t = resolve_registry_with(
            &RegistryRequest::default(),
            home.path(),
            Some(env(home.path(), &[])),
            Some(home.path().into()),
        )
        .unwrap();
        assert_eq!(t.index, CRATES_IO_INDEX);
        assert_eq!(t.name.as_deref(), Some("crates-io"));
        assert!(t.is_crates_io());
        assert_eq!(t.token, None);
    }

    #[test]
    fn registry_from_env_with_token() {
        let home = tempfile::tempdir().unwrap();
        let e = env(
            home.path(),
            &[
                (
                    "CARGO_REGISTRIES_MY_REG_INDEX",
                    "sparse+http://127.0.0.1:1/index",
                ),
                ("CARGO_REGISTRIES_MY_REG_TOKEN", "s3cret"),
            ],
        );
        let req = RegistryRequest {
            registry: Some("my-reg".into()),
            ..Default::default()
        };
        let t =
            resolve_registry_with(&req, home.path(), Some(e), Some(home.path().into())).unwrap();
        assert_eq!(t.index, "sparse+http://127.0.0.1:1/index/");
        assert_eq!(t.token.as_deref(), Some("s3cret"));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn registry_from_config_and_credentials_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            "[registries.mine]\nindex = \"sparse+https://reg.invalid/\"\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join("credentials.toml"),
            "[registries.mine]\ntoken = \"from-file\"\n",
        )
        .unwrap();
        let req = RegistryRequest {
            registry: Some("mine".into()),
            ..Default::default()
        };
        let t = resolve_registry_with(
            &req,
            home.path(),
            Some(env(home.path(), &[])),
            Some(home.path().into()),
        )
        .unwrap();
        assert_eq!(t.index, "sparse+https://reg.invalid/");
        assert_eq!(t.token.as_deref(), Some("from-file"));
        // `--index` finds the name (and so the token) by URL.
        let req = RegistryRequest {
            index: Some("sparse+https://reg.invalid/".into()),
            ..Default::default()
        };
        let t = resolve_registry_with(
            &req,
            home.path(),
            Some(env(home.path(), &[])),
            Some(home.path().into()),
        )
        .unwrap();
        assert_eq!(t.name.as_deref(), Some("mine"));
        assert_eq!(t.token.as_deref(), Some("from-file"));
        // `--token` wins.
        let req = RegistryRequest {
            registry: Some("mine".into()),
            token: Some("cli".into()),
            ..Default::default()
        };
        let t = resolve_registry_with(
            &req,
            home.path(),
            Some(env(home.path(), &[])),
            Some(home.path().into()),
        )
        .unwrap();
        assert_eq!(t.token.as_deref(), Some("cli"));
    }

    #[test]
    fn errors() {
        let home = tempfile::tempdir().unwrap();
        let req = RegistryRequest {
            registry: Some("nope".into()),
            ..Default::default()
        };
        let err = resolve_registry_with(
            &req,
            home.path(),
            Some(env(home.path(), &[])),
            Some(home.path().into()),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "registry `nope` is not defined in cargo configuration, set `registries.nope.index` or `CARGO_REGISTRIES_NOPE_INDEX`"
        );
        let req = RegistryRequest {
            index: Some("https://git.invalid/index".into()),
            ..Default::default()
        };
        let err = resolve_registry_with(
            &req,
            home.path(),
            Some(env(home.path(), &[])),
            Some(home.path().into()),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "index `https://git.invalid/index` is not a sparse index, expected `sparse+http(s)://…/`"
        );
    }
}

mod credentials {
    use std::path::{Path, PathBuf};

    use convoy_index_client::{RegistryRequest, resolve_registry_with};

    /// A script under `dir` with `body`, executable.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
        path
    }

    fn resolve(home: &Path, extra: &[(&str, &str)]) -> Result<Option<String>, String> {
        let mut env = vec![
            ("CARGO_HOME".to_owned(), home.display().to_string()),
            (
                "CARGO_REGISTRIES_MINE_INDEX".to_owned(),
                "sparse+http://127.0.0.1:1/index/".to_owned(),
            ),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let req = RegistryRequest {
            registry: Some("mine".into()),
            ..Default::default()
        };
        resolve_registry_with(&req, home, Some(env), Some(home.into()))
            .map(|t| t.token)
            .map_err(|e| convoy_index_client::describe(&e))
    }

    /// A cargo-credential provider: hello, then one answer to one request,
    /// after checking the request names the registry and asks for `get`.
    fn plugin(dir: &Path, name: &str, answer: &str) -> PathBuf {
        script(
            dir,
            name,
            &format!(
                "[ \"$1\" = --cargo-plugin ] || exit 3\necho '{{\"v\":[1]}}'\nread request\ncase \"$request\" in *'\"kind\":\"get\"'*'\"operation\":\"read\"'*) ;; *) exit 4 ;; esac\ncase \"$request\" in *'\"name\":\"mine\"'*) ;; *) exit 5 ;; esac\necho '{answer}'\n"
            ),
        )
    }

    #[test]
    fn token_from_stdout_and_plugins() {
        let home = tempfile::tempdir().unwrap();
        let stdout = script(
            home.path(),
            "stdout.sh",
            "[ \"$CARGO_REGISTRY_NAME_OPT\" = mine ] || exit 2\necho from-stdout\n",
        );
        let token = resolve(
            home.path(),
            &[(
                "CARGO_REGISTRIES_MINE_CREDENTIAL_PROVIDER",
                &format!("cargo:token-from-stdout {}", stdout.display()),
            )],
        );
        assert_eq!(token, Ok(Some("from-stdout".into())));

        let ok = plugin(
            home.path(),
            "ok.sh",
            r#"{"Ok":{"kind":"get","token":"from-plugin","cache":"session","operation_independent":true}}"#,
        );
        let token = resolve(
            home.path(),
            &[(
                "CARGO_REGISTRIES_MINE_CREDENTIAL_PROVIDER",
                &ok.display().to_string(),
            )],
        );
        assert_eq!(token, Ok(Some("from-plugin".into())));
    }

    #[test]
    fn global_providers_fall_through_from_last_to_first() {
        let home = tempfile::tempdir().unwrap();
        let missing = plugin(home.path(), "missing.sh", r#"{"Err":{"kind":"not-found"}}"#);
        // The last entry answers first; `not-found` passes to `cargo:token`.
        let chain = format!("cargo:token {}", missing.display());
        let token = resolve(
            home.path(),
            &[
                ("CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS", &chain),
                ("CARGO_REGISTRIES_MINE_TOKEN", "from-env"),
            ],
        );
        assert_eq!(token, Ok(Some("from-env".into())));

        // Without `cargo:token` in the chain, the variable is not read.
        let token = resolve(
            home.path(),
            &[
                (
                    "CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS",
                    &missing.display().to_string(),
                ),
                ("CARGO_REGISTRIES_MINE_TOKEN", "from-env"),
            ],
        );
        assert_eq!(token, Ok(None));
    }

    #[test]
    fn provider_failures_name_the_provider_not_the_token() {
        let home = tempfile::tempdir().unwrap();
        let broken = script(home.path(), "broken.sh", "echo secret-ish\necho two\n");
        let err = resolve(
            home.path(),
            &[(
                "CARGO_REGISTRIES_MINE_CREDENTIAL_PROVIDER",
                &format!("cargo:token-from-stdout {}", broken.display()),
            )],
        )
        .unwrap_err();
        assert!(err.contains("more than one line"), "{err}");
        assert!(!err.contains("secret-ish"), "{err}");
        let failing = plugin(
            home.path(),
            "fails.sh",
            r#"{"Err":{"kind":"other","message":"locked keyring"}}"#,
        );
        let err = resolve(
            home.path(),
            &[(
                "CARGO_REGISTRIES_MINE_CREDENTIAL_PROVIDER",
                &failing.display().to_string(),
            )],
        )
        .unwrap_err();
        assert!(err.contains("locked keyring"), "{err}");
        assert!(err.contains("fails.sh"), "{err}");
    }
}

mod sparse {
    use convoy_index_client::SparseIndex;
    use convoy_index_client::testing::StaticIndex;

    /// The client runtime the reader blocks on, as the CLI's: multi-thread.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn reads_config_versions_and_downloads() {
        let fixture = StaticIndex::start().unwrap();
        fixture.add_version("Serde_Core", "1.0.0", "abc", Some(b"crate bytes".to_vec()));
        fixture.add_version("Serde_Core", "1.0.1", "def", None);
        // A line cargo could not parse is skipped, not fatal.
        fixture.set_file(
            "se/rd/serde_core",
            200,
            b"{\"name\":\"Serde_Core\",\"vers\":\"1.0.0\",\"deps\":[],\"cksum\":\"abc\"}\nnot json\n".to_vec(),
        );
        let rt = runtime();
        let index = SparseIndex::new(rt.handle(), &fixture.index_url(), None).unwrap();
        assert!(index.config().unwrap().dl.ends_with("/dl"));
        let versions = index.versions("Serde_Core").unwrap().unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].vers, "1.0.0");
        assert_eq!(index.download(&versions[0]).unwrap(), b"crate bytes");
        assert_eq!(index.versions("missing").unwrap(), None);
    }

    #[test]
    fn unreachable_registry_is_a_network_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let rt = runtime();
        let index = SparseIndex::new(
            rt.handle(),
            &format!("sparse+http://127.0.0.1:{port}/"),
            None,
        )
        .unwrap();
        let err = index.versions("a").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("failed to fetch `http://127.0.0.1:{port}/config.json`")
        );
    }

    #[test]
    fn auth_required_without_token() {
        let fixture = StaticIndex::start().unwrap();
        fixture.set_file("config.json", 401, Vec::new());
        let rt = runtime();
        let index = SparseIndex::new(rt.handle(), &fixture.index_url(), None).unwrap();
        assert!(matches!(
            index.versions("a"),
            Err(convoy_index_client::IndexError::Unauthorized { .. })
        ));
    }

    #[test]
    fn not_sparse() {
        assert!(SparseIndex::new(runtime().handle(), "https://x.invalid/", None).is_err());
    }
}

mod async_sparse {
    use convoy_index_client::testing::StaticIndex;
    use convoy_index_client::{AsyncSparseIndex, AsyncSparseOptions, Fetch, IndexError};
    use sha2::{Digest, Sha256};

    fn reader(fixture: &StaticIndex) -> AsyncSparseIndex {
        AsyncSparseIndex::new(&fixture.index_url(), None, AsyncSparseOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn reads_raw_files_versions_and_checked_downloads() {
        let fixture = StaticIndex::start().unwrap();
        let bytes = b"crate bytes".to_vec();
        let cksum = hex::encode(Sha256::digest(&bytes));
        fixture.add_version("Serde_Core", "1.0.0", &cksum, Some(bytes.clone()));
        fixture.add_version("Serde_Core", "1.0.1", "00", Some(bytes.clone()));
        let index = reader(&fixture);
        assert!(index.config().await.unwrap().dl.ends_with("/dl"));
        let raw = index.index_file("serde_core", Fetch::Once).await.unwrap();
        assert_eq!(raw.unwrap().split(|b| *b == b'\n').count(), 3);
        let versions = index.versions("Serde_Core", Fetch::Retrying).await;
        assert_eq!(versions.unwrap().unwrap().len(), 2);
        let got = index.download("Serde_Core", "1.0.0", &cksum).await.unwrap();
        assert_eq!(&got[..], &bytes[..]);
        // Bytes that do not match the index are refused.
        assert!(matches!(
            index.download("Serde_Core", "1.0.1", "00").await,
            Err(IndexError::Checksum(_))
        ));
        for status in [404, 410, 451] {
            fixture.set_file("3/g/gon", status, Vec::new());
            assert_eq!(index.index_file("gon", Fetch::Once).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn auth_and_unexpected_statuses_are_errors() {
        let fixture = StaticIndex::start().unwrap();
        fixture.set_file("1/a", 403, Vec::new());
        fixture.set_file("1/b", 418, Vec::new());
        let index = reader(&fixture);
        assert!(matches!(
            index.index_file("a", Fetch::Once).await,
            Err(IndexError::Unauthorized { .. })
        ));
        assert!(matches!(
            index.index_file("b", Fetch::Once).await,
            Err(IndexError::Status { status: 418, .. })
        ));

        let locked = StaticIndex::start().unwrap();
        locked.set_file("config.json", 401, Vec::new());
        assert!(matches!(
            reader(&locked).config().await,
            Err(IndexError::Unauthorized { .. })
        ));
    }

    #[test]
    fn only_sparse_urls_are_accepted() {
        let opts = AsyncSparseOptions::default();
        assert!(matches!(
            AsyncSparseIndex::new("https://x.invalid/", None, opts),
            Err(IndexError::NotSparse { .. })
        ));
    }
}
