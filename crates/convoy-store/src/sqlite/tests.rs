use std::time::{Duration, SystemTime};

use convoy_protocol::index::{DependencyKind, IndexDependency, IndexPackage};
use convoy_protocol::scope::{CrateGlob, EndpointScope};

use super::SqliteStore;
use crate::{NewToken, NewVersion, PublishOutcome, Store, StoreError};

pub(super) fn line(name: &str, vers: &str, deps: &[&str]) -> IndexPackage {
    IndexPackage {
        name: name.into(),
        vers: vers.into(),
        deps: deps
            .iter()
            .map(|d| IndexDependency {
                name: (*d).into(),
                req: "*".into(),
                features: vec![],
                optional: false,
                default_features: true,
                target: None,
                kind: Some(DependencyKind::Normal),
                registry: None,
                package: None,
            })
            .collect(),
        cksum: "0".repeat(64),
        features: Default::default(),
        features2: None,
        yanked: false,
        links: None,
        rust_version: None,
        v: None,
        pubtime: None,
    }
}

pub(super) fn new_version(line: IndexPackage, publisher: i64) -> NewVersion {
    NewVersion {
        line,
        description: Some("a crate".into()),
        publisher,
        may_create: true,
        may_update: true,
        meta: Default::default(),
        sublibrary_of: None,
    }
}

pub(super) async fn user(store: &SqliteStore, login: &str) -> i64 {
    let token = store
        .create_token(NewToken {
            login: login.into(),
            name: "t".into(),
            scopes: vec![],
            crates: vec![],
            expires_at: None,
        })
        .await
        .expect("token");
    store
        .authenticate(token.expose())
        .await
        .expect("auth")
        .expect("valid token")
        .user_id
}

pub(super) fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("db.sqlite")).expect("open");
    (dir, store)
}

#[tokio::test]
async fn publish_renders_index_and_enforces_uniqueness() {
    let (_dir, store) = open();
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let out = store
        .publish(new_version(line("foo", "1.0.0", &[]), alice))
        .await;
    assert_eq!(out.expect("publish"), PublishOutcome::NewCrate);
    let out = store
        .publish(new_version(line("foo", "1.1.0", &["foo"]), alice))
        .await;
    assert_eq!(out.expect("publish"), PublishOutcome::NewVersion);

    let file = store
        .index_file("FOO")
        .await
        .expect("read")
        .expect("exists");
    let text = std::str::from_utf8(&file.content).expect("utf8");
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with('\n'));

    let dup = store
        .publish(new_version(line("foo", "1.0.0+build", &[]), alice))
        .await;
    assert!(
        matches!(dup, Err(StoreError::VersionExists { .. })),
        "{dup:?}"
    );
    let other = store
        .publish(new_version(line("foo", "2.0.0", &[]), bob))
        .await;
    assert!(
        matches!(other, Err(StoreError::NotOwner { .. })),
        "{other:?}"
    );
    let spelled = store
        .publish(new_version(line("Foo", "2.0.0", &[]), alice))
        .await;
    assert!(
        matches!(spelled, Err(StoreError::NameConflict { .. })),
        "{spelled:?}"
    );
    let unknown = store
        .publish(new_version(line("bar", "1.0.0", &["nope"]), bob))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownDependencies { .. })),
        "{unknown:?}"
    );
    assert!(store.index_file("bar").await.expect("read").is_none());
}

#[tokio::test]
async fn scopes_gate_new_crates_and_updates() {
    let (_dir, store) = open();
    let alice = user(&store, "alice").await;
    let mut v = new_version(line("foo", "1.0.0", &[]), alice);
    v.may_create = false;
    let err = store.publish(v).await.expect_err("needs publish-new");
    assert!(matches!(
        err,
        StoreError::MissingScope {
            scope: EndpointScope::PublishNew,
            ..
        }
    ));
    store
        .publish(new_version(line("foo", "1.0.0", &[]), alice))
        .await
        .expect("publish");
    let mut v = new_version(line("foo", "1.0.1", &[]), alice);
    v.may_update = false;
    let err = store.publish(v).await.expect_err("needs publish-update");
    assert!(matches!(
        err,
        StoreError::MissingScope {
            scope: EndpointScope::PublishUpdate,
            ..
        }
    ));
}

#[tokio::test]
async fn yank_rewrites_the_line_and_the_etag() {
    let (_dir, store) = open();
    let alice = user(&store, "alice").await;
    store
        .publish(new_version(line("foo", "1.0.0", &[]), alice))
        .await
        .expect("publish");
    let before = store
        .index_file("foo")
        .await
        .expect("read")
        .expect("exists");
    store
        .set_yanked("foo", "1.0.0", true, alice)
        .await
        .expect("yank");
    let after = store
        .index_file("foo")
        .await
        .expect("read")
        .expect("exists");
    assert_ne!(before.etag, after.etag);
    assert!(
        std::str::from_utf8(&after.content)
            .expect("utf8")
            .contains("\"yanked\":true")
    );
    let missing = store.set_yanked("foo", "9.9.9", true, alice).await;
    assert!(matches!(missing, Err(StoreError::VersionNotFound { .. })));
}

#[tokio::test]
async fn owners_can_be_added_but_never_all_removed() {
    let (_dir, store) = open();
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    store
        .publish(new_version(line("foo", "1.0.0", &[]), alice))
        .await
        .expect("publish");
    let not_owner = store.add_owners("foo", &["bob".into()], bob).await;
    assert!(matches!(not_owner, Err(StoreError::NotOwner { .. })));
    store
        .add_owners("foo", &["bob".into()], alice)
        .await
        .expect("add");
    let logins: Vec<_> = store
        .owners("foo")
        .await
        .expect("owners")
        .into_iter()
        .map(|o| o.login)
        .collect();
    assert_eq!(logins, ["alice", "bob"]);
    let ghost = store.add_owners("foo", &["carol".into()], alice).await;
    assert!(matches!(ghost, Err(StoreError::UserNotFound { .. })));
    let all = store
        .remove_owners("foo", &["alice".into(), "bob".into()], alice)
        .await;
    assert!(matches!(all, Err(StoreError::LastOwner { .. })));
    store
        .remove_owners("foo", &["alice".into()], bob)
        .await
        .expect("remove");
}

#[tokio::test]
async fn tokens_check_hash_expiry_and_globs() {
    let (_dir, store) = open();
    let scoped = store
        .create_token(NewToken {
            login: "ci".into(),
            name: "ci".into(),
            scopes: vec![EndpointScope::PublishUpdate],
            crates: vec![CrateGlob::new("tokio-*").expect("glob")],
            expires_at: None,
        })
        .await
        .expect("token");
    let auth = store
        .authenticate(scoped.expose())
        .await
        .expect("auth")
        .expect("valid");
    assert!(auth.allows(EndpointScope::PublishUpdate, "tokio_util"));
    assert!(!auth.allows(EndpointScope::PublishUpdate, "serde"));
    assert!(!auth.allows(EndpointScope::Yank, "tokio-util"));

    let mut forged = scoped.expose().to_owned();
    forged.pop();
    forged.push('x');
    assert!(store.authenticate(&forged).await.expect("auth").is_none());
    assert!(store.authenticate("garbage").await.expect("auth").is_none());

    let expired = store
        .create_token(NewToken {
            login: "ci".into(),
            name: "old".into(),
            scopes: vec![],
            crates: vec![],
            expires_at: Some(SystemTime::now() - Duration::from_secs(5)),
        })
        .await
        .expect("token");
    assert!(
        store
            .authenticate(expired.expose())
            .await
            .expect("auth")
            .is_none()
    );
}

#[tokio::test]
async fn state_survives_reopen_and_counts_downloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    {
        let store = SqliteStore::open(&path).expect("open");
        let alice = user(&store, "alice").await;
        store
            .publish(new_version(line("foo", "1.0.0", &[]), alice))
            .await
            .expect("publish");
        assert!(store.download("foo", "1.0.0").await.expect("dl").is_some());
        assert!(store.download("foo", "2.0.0").await.expect("dl").is_none());
        assert_eq!(
            store.download_count("foo", "1.0.0").await.expect("count"),
            Some(1)
        );
        store.flush().expect("flush");
    }
    let store = SqliteStore::open(&path).expect("reopen");
    assert!(store.index_file("foo").await.expect("read").is_some());
    assert_eq!(
        store.download_count("foo", "1.0.0").await.expect("count"),
        Some(1)
    );
    let (hits, total) = store.search("fo", 1, 10).await.expect("search");
    assert_eq!(total, 1);
    assert_eq!(hits[0].max_version, "1.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_keep_every_line_once() {
    let (_dir, store) = open();
    let alice = user(&store, "alice").await;
    store
        .publish(new_version(line("foo", "0.0.0", &[]), alice))
        .await
        .expect("publish");
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .publish(new_version(
                    line("foo", &format!("1.0.{}", i % 16), &[]),
                    alice,
                ))
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => ok += 1,
            Err(StoreError::VersionExists { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 16);
    let file = store
        .index_file("foo")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        std::str::from_utf8(&file.content)
            .expect("utf8")
            .lines()
            .count(),
        17
    );
}
