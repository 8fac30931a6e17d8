//! The staging client against the real Convoy registry, served in-process
//! on 127.0.0.1: discovery, create, upload into a stage, a commit refused
//! with its details, commit, release yank and restore, abort.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use convoy_index_client::RegistryTarget;
use convoy_index_client::testing::StaticIndex;
use convoy_package::PackagedCrate;
use convoy_protocol::publish::NewCrate;
use convoy_protocol::staging::StageState;
use convoy_tarball::TarballBuilder;
use convoy_upload::staging::{StagingClient, StagingError, discover};
use convoy_upload::{CrateOutcome, Pacing, UploadOptions, upload_on};
use sha2::{Digest, Sha256};

/// A registry on its own runtime thread; it stops with the test process.
struct Registry {
    base: String,
    token: String,
    _inner: convoy_test_support::InProcessRegistry,
}

impl Registry {
    fn start() -> Self {
        let inner = convoy_test_support::InProcessRegistry::start();
        Self {
            base: inner.url.clone(),
            token: inner.token.clone(),
            _inner: inner,
        }
    }

    fn target(&self) -> RegistryTarget {
        RegistryTarget {
            name: Some("local".into()),
            index: format!("sparse+{}/index/", self.base),
            token: Some(self.token.clone()),
            http: Default::default(),
        }
    }

    fn versions(&self, name: &str) -> Vec<String> {
        let url = format!(
            "{}/index/{}",
            self.base,
            convoy_protocol::index::index_path(name)
        );
        let resp = reqwest::blocking::get(url).unwrap();
        if resp.status() == 404 {
            return Vec::new();
        }
        resp.text()
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["vers"].to_string())
            .collect()
    }

    fn yank(&self, name: &str, version: &str, undo: bool) {
        let (method, verb) = if undo {
            (reqwest::Method::PUT, "unyank")
        } else {
            (reqwest::Method::DELETE, "yank")
        };
        let resp = reqwest::blocking::Client::new()
            .request(
                method,
                format!("{}/api/v1/crates/{name}/{version}/{verb}", self.base),
            )
            .header("Authorization", &self.token)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    }
}

fn krate(dir: &Path, name: &str, version: &str, deps: &[&str]) -> PackagedCrate {
    let bytes = TarballBuilder::minimal(name, version).build();
    let cksum = hex::encode(Sha256::digest(&bytes));
    let path = dir.join(format!("{name}-{version}.crate"));
    std::fs::write(&path, &bytes).unwrap();
    let metadata: NewCrate = serde_json::from_value(serde_json::json!({
        "name": name,
        "vers": version,
        "description": format!("test crate {name}"),
        "license": "MIT",
        "deps": deps.iter().map(|d| serde_json::json!({
            "name": d, "version_req": "^1", "features": [], "optional": false,
            "default_features": true, "target": null, "kind": "normal",
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    PackagedCrate {
        name: name.into(),
        version: version.into(),
        path,
        index_line: metadata.to_index_package(cksum.clone(), None),
        cksum,
        metadata,
        local_deps: Vec::new(),
        changes: Vec::new(),
    }
}

fn opts() -> UploadOptions {
    UploadOptions {
        visibility_timeout: Duration::from_secs(5),
        retry_backoff: Duration::from_millis(10),
        pacing: Pacing::Off,
        ..UploadOptions::default()
    }
}

/// The runtime a staging client runs on, as the CLI's would be.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn stage_upload_refused_commit_commit_and_release_yank() {
    let registry = Registry::start();
    let files = tempfile::tempdir().unwrap();
    let target = registry.target();
    let runtime = client_runtime();
    let client = StagingClient::connect(&target, runtime.handle()).unwrap();
    assert_eq!(client.advert().v, 1);
    assert!(!format!("{client:?}").contains(&registry.token));

    let a = krate(files.path(), "sc-a", "1.0.0", &[]);
    let uploads = convoy_test_support::runtime();
    assert!(upload_on(&uploads, &target, &[a], &opts(), |_| {}).is_success());

    let new = client.create_stage(Some(Duration::from_secs(600))).unwrap();
    assert_eq!(new.stage.state, StageState::Open);
    assert!(new.stage.token.is_none(), "the token is kept apart");
    assert!(!format!("{new:?}").contains(new.token.expose()));
    let b = krate(files.path(), "sc-b", "1.0.0", &["sc-a"]);
    let report = upload_on(&uploads, &new.upload_target(&target), &[b], &opts(), |_| {});
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.crates[0].outcome, CrateOutcome::Published);
    assert!(registry.versions("sc-b").is_empty(), "staged is invisible");
    let id = new.stage.id.clone();
    assert_eq!(client.stage(&id).unwrap().crates.len(), 1);
    let listed = client.stages().unwrap();
    assert!(listed.iter().any(|s| s.id == id));

    // The only version sc-b can resolve to is yanked: the commit is refused
    // with the reason, and changes nothing.
    registry.yank("sc-a", "1.0.0", false);
    let err = client.commit(&id).unwrap_err();
    assert!(matches!(err, StagingError::Refused { .. }), "{err:?}");
    assert!(!err.details().is_empty(), "{err}");
    assert!(
        err.details()
            .iter()
            .any(|d| d.contains("sc-a") || d.contains("sc-b")),
        "{err}"
    );
    assert!(registry.versions("sc-b").is_empty());

    registry.yank("sc-a", "1.0.0", true);
    let release = client
        .extend(&id, Duration::from_secs(600))
        .and_then(|_| client.commit(&id))
        .unwrap();
    assert_eq!(release.id, id);
    assert_eq!(release.crates.len(), 1);
    assert_eq!(registry.versions("sc-b").len(), 1);
    assert_eq!(client.stage(&id).unwrap().state, StageState::Committed);

    client.yank_release(&id, false).unwrap();
    assert!(client.release(&id).unwrap().crates.iter().all(|c| c.yanked));
    client.yank_release(&id, true).unwrap();
    assert!(
        client
            .release(&id)
            .unwrap()
            .crates
            .iter()
            .all(|c| !c.yanked)
    );

    // Abort discards; a second abort is refused with a status.
    let other = client.create_stage(None).unwrap();
    let aborted = client.abort(&other.stage.id).unwrap();
    assert_eq!(aborted.state, StageState::Aborted);
    let again = client.abort(&other.stage.id).unwrap_err();
    assert!(again.status().is_some(), "{again:?}");

    assert!(matches!(
        client.stage("../x"),
        Err(StagingError::InvalidId { .. })
    ));
}

#[test]
fn registries_without_the_advert_do_not_stage() {
    let index = StaticIndex::start().unwrap();
    let target = RegistryTarget {
        name: Some("plain".into()),
        index: index.index_url(),
        token: Some("secret".into()),
        http: Default::default(),
    };
    let runtime = client_runtime();
    assert!(discover(&target, runtime.handle()).unwrap().is_none());
    let err = StagingClient::connect(&target, runtime.handle()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "registry `plain` does not offer staged releases (no `convoy-staging` in its config.json)"
    );
}
