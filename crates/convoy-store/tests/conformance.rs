//! One conformance suite for every [`Store`]: each test below runs against
//! the embedded SQLite backend and against PostgreSQL (a real cluster,
//! started once for this binary, a fresh database per test), through the
//! `conformance!` macro at the bottom. Tests about several nodes sharing
//! one backend run on the backends that can be shared.
//!
//! The blob stores get the same treatment: the filesystem and a real
//! S3-protocol server (`s3s-fs`).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use convoy_protocol::index::{DependencyKind, IndexDependency, IndexPackage};
use convoy_protocol::scope::{CrateGlob, EndpointScope};
use convoy_store::VersionMeta;
use convoy_store::fs::FsBlobStore;
use convoy_store::object::{DownloadMode, ObjectBlobStore};
use convoy_store::postgres::PgStore;
use convoy_store::sqlite::SqliteStore;
use convoy_store::{
    AuthenticatedToken, Blob, BlobStore, NewToken, NewVersion, PublishOutcome, RateLimit, Store,
    StoreError,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// The state behind a store, which can be opened again (a restart, or a
/// second node).
struct Harness {
    kind: Kind,
    dir: tempfile::TempDir,
    url: Option<String>,
}

impl Harness {
    fn new(kind: Kind) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let url = match kind {
            Kind::Sqlite => None,
            Kind::Postgres => Some(convoy_test_support::postgres::cluster()?.fresh_database()),
        };
        Some(Self { kind, dir, url })
    }

    async fn open(&self) -> Arc<dyn Store> {
        match self.kind {
            Kind::Sqlite => Arc::new(SqliteStore::open(self.dir.path().join("db.sqlite")).unwrap()),
            Kind::Postgres => Arc::new(
                PgStore::connect(self.url.as_deref().unwrap())
                    .await
                    .unwrap(),
            ),
        }
    }
}

fn line(name: &str, vers: &str, deps: &[&str]) -> IndexPackage {
    IndexPackage {
        name: name.into(),
        vers: vers.into(),
        deps: deps
            .iter()
            .map(|d| IndexDependency {
                name: (*d).into(),
                req: "^1".into(),
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

fn new_version(line: IndexPackage, publisher: i64) -> NewVersion {
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

async fn token(store: &dyn Store, login: &str) -> AuthenticatedToken {
    let secret = store
        .create_token(NewToken {
            login: login.into(),
            name: "t".into(),
            scopes: vec![],
            crates: vec![],
            expires_at: None,
        })
        .await
        .unwrap();
    store.authenticate(secret.expose()).await.unwrap().unwrap()
}

async fn user(store: &dyn Store, login: &str) -> i64 {
    token(store, login).await.user_id
}

async fn lines(store: &dyn Store, name: &str) -> Vec<String> {
    match store.index_file(name).await.unwrap() {
        Some(file) => std::str::from_utf8(&file.content)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    }
}

async fn publish_renders_index_and_enforces_uniqueness(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = user(&*store, "alice").await;
    let bob = user(&*store, "bob").await;
    let out = store
        .publish(new_version(line("foo", "1.0.0", &[]), alice))
        .await;
    assert_eq!(out.unwrap(), PublishOutcome::NewCrate);
    let out = store
        .publish(new_version(line("foo", "1.1.0", &["foo"]), alice))
        .await;
    assert_eq!(out.unwrap(), PublishOutcome::NewVersion);
    let file = store.index_file("FOO").await.unwrap().unwrap();
    let text = std::str::from_utf8(&file.content).unwrap();
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
        matches!(&unknown, Err(StoreError::UnknownDependencies { names }) if names == &["nope"]),
        "{unknown:?}"
    );
    assert!(store.index_file("bar").await.unwrap().is_none());
    // check_publish says the same as publish, without writing.
    let checked = store
        .check_publish(&new_version(line("foo", "1.1.0", &[]), alice), None)
        .await;
    assert!(matches!(checked, Err(StoreError::VersionExists { .. })));
    assert_eq!(
        store
            .check_publish(&new_version(line("baz", "1.0.0", &[]), alice), None)
            .await
            .unwrap(),
        PublishOutcome::NewCrate
    );
    assert!(store.index_file("baz").await.unwrap().is_none());
}

async fn scopes_gate_new_crates_and_updates(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = user(&*store, "alice").await;
    let mut v = new_version(line("foo", "1.0.0", &[]), alice);
    v.may_create = false;
    let err = store.publish(v).await.unwrap_err();
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
        .unwrap();
    let mut v = new_version(line("foo", "1.0.1", &[]), alice);
    v.may_update = false;
    let err = store.publish(v).await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::MissingScope {
            scope: EndpointScope::PublishUpdate,
            ..
        }
    ));
}

async fn yank_rewrites_the_line_and_the_etag(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = user(&*store, "alice").await;
    store
        .publish(new_version(line("foo", "1.0.0", &[]), alice))
        .await
        .unwrap();
    let before = store.index_file("foo").await.unwrap().unwrap();
    store.set_yanked("foo", "1.0.0", true, alice).await.unwrap();
    let after = store.index_file("foo").await.unwrap().unwrap();
    assert_ne!(before.etag, after.etag);
    assert!(
        std::str::from_utf8(&after.content)
            .unwrap()
            .contains("\"yanked\":true")
    );
    let missing = store.set_yanked("foo", "9.9.9", true, alice).await;
    assert!(matches!(missing, Err(StoreError::VersionNotFound { .. })));
}

async fn owners_can_be_added_but_never_all_removed(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = user(&*store, "alice").await;
    let bob = user(&*store, "bob").await;
    store
        .publish(new_version(line("foo", "1.0.0", &[]), alice))
        .await
        .unwrap();
    let not_owner = store.add_owners("foo", &["bob".into()], bob).await;
    assert!(matches!(not_owner, Err(StoreError::NotOwner { .. })));
    store
        .add_owners("foo", &["bob".into()], alice)
        .await
        .unwrap();
    let logins: Vec<_> = store
        .owners("foo")
        .await
        .unwrap()
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
    assert_eq!(
        store.owners("foo").await.unwrap().len(),
        2,
        "nothing changed"
    );
    store
        .remove_owners("foo", &["alice".into()], bob)
        .await
        .unwrap();
}

async fn tokens_check_hash_expiry_and_globs(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let scoped = store
        .create_token(NewToken {
            login: "ci".into(),
            name: "ci".into(),
            scopes: vec![EndpointScope::PublishUpdate],
            crates: vec![CrateGlob::new("tokio-*").unwrap()],
            expires_at: None,
        })
        .await
        .unwrap();
    let auth = store.authenticate(scoped.expose()).await.unwrap().unwrap();
    assert!(auth.allows(EndpointScope::PublishUpdate, "tokio_util"));
    assert!(!auth.allows(EndpointScope::PublishUpdate, "serde"));
    assert!(!auth.allows(EndpointScope::Yank, "tokio-util"));
    let mut forged = scoped.expose().to_owned();
    forged.pop();
    forged.push('x');
    assert!(store.authenticate(&forged).await.unwrap().is_none());
    assert!(store.authenticate("garbage").await.unwrap().is_none());
    let expired = store
        .create_token(NewToken {
            login: "ci".into(),
            name: "old".into(),
            scopes: vec![],
            crates: vec![],
            expires_at: Some(SystemTime::now() - Duration::from_secs(5)),
        })
        .await
        .unwrap();
    assert!(
        store
            .authenticate(expired.expose())
            .await
            .unwrap()
            .is_none()
    );
}

async fn state_survives_reopen_and_counts_downloads(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    {
        let store = h.open().await;
        let alice = user(&*store, "alice").await;
        store
            .publish(new_version(line("foo", "1.0.0", &[]), alice))
            .await
            .unwrap();
        assert!(store.download("foo", "1.0.0").await.unwrap().is_some());
        assert!(store.download("Foo", "1.0.0").await.unwrap().is_some());
        assert!(store.download("foo", "2.0.0").await.unwrap().is_none());
        assert_eq!(store.download_count("foo", "1.0.0").await.unwrap(), Some(2));
        store.flush().await.unwrap();
    }
    let store = h.open().await;
    assert!(store.index_file("foo").await.unwrap().is_some());
    assert_eq!(store.download_count("foo", "1.0.0").await.unwrap(), Some(2));
    let (hits, total) = store.search("fo", 1, 10).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(hits[0].max_version, "1.0.0");
}

async fn search_treats_dashes_and_wildcards_literally(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = user(&*store, "alice").await;
    for name in ["ab-cd", "abxcd", "ab_cd_extra"] {
        store
            .publish(new_version(line(name, "1.0.0", &[]), alice))
            .await
            .unwrap();
    }
    let names = |hits: Vec<convoy_protocol::api::SearchHit>| {
        hits.into_iter().map(|h| h.name).collect::<Vec<_>>()
    };
    let (hits, total) = store.search("ab-cd", 1, 10).await.unwrap();
    assert_eq!(total, 2, "`-` matches `-` and `_`, never any character");
    assert_eq!(
        names(hits),
        ["ab-cd", "ab_cd_extra"],
        "the exact match first"
    );
    let (hits, _) = store.search("%", 1, 10).await.unwrap();
    assert!(hits.is_empty());
    let (hits, total) = store.search("ab", 2, 2).await.unwrap();
    assert_eq!((hits.len(), total), (1, 3), "pages");
}

async fn concurrent_publishes_keep_every_line_once(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = user(&*store, "alice").await;
    store
        .publish(new_version(line("foo", "0.0.0", &[]), alice))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = Arc::clone(&store);
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
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::VersionExists { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 16);
    assert_eq!(lines(&*store, "foo").await.len(), 17);
}

async fn rate_buckets_allow_a_burst_then_say_how_long(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = user(&*store, "alice").await;
    let bob = user(&*store, "bob").await;
    let limit = RateLimit {
        burst: 2,
        refill: Duration::from_secs(60),
    };
    assert!(
        store
            .take_publish_token(alice, limit)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        store
            .take_publish_token(alice, limit)
            .await
            .unwrap()
            .is_ok()
    );
    let wait = store
        .take_publish_token(alice, limit)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    assert!(
        store.take_publish_token(bob, limit).await.unwrap().is_ok(),
        "per user"
    );
}

/// A stage from upload to commit: invisible while staged, slot reserved,
/// all of it visible at once after the commit, and a release to yank.
async fn stage_reserve_view_commit_and_yank(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = token(&*store, "alice").await;
    let (stage, _secret) = store
        .create_stage(&alice, Duration::from_secs(600))
        .await
        .unwrap();
    let mut base = line("base", "1.0.0", &[]);
    base.cksum = "1".repeat(64);
    let mut app = line("app", "1.0.0", &["base"]);
    app.cksum = "2".repeat(64);
    // A dependency on a crate that exists only in the stage is fine at
    // upload time for a stage: the commit checks resolution.
    store
        .stage_version(new_version(base.clone(), alice.user_id), &stage.id)
        .await
        .unwrap();
    store
        .stage_version(new_version(app, alice.user_id), &stage.id)
        .await
        .unwrap();
    assert!(
        store.index_file("base").await.unwrap().is_none(),
        "staged is invisible"
    );
    assert!(store.download("base", "1.0.0").await.unwrap().is_none());
    let view = store
        .stage_index_file(&stage.id, "base")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(std::str::from_utf8(&view).unwrap().lines().count(), 1);
    assert_eq!(
        store
            .stage_download(&stage.id, "base", "1.0.0")
            .await
            .unwrap(),
        Some("1".repeat(64))
    );
    let taken = store
        .publish(new_version(base.clone(), alice.user_id))
        .await;
    assert!(
        matches!(taken, Err(StoreError::VersionStaged { .. })),
        "{taken:?}"
    );
    let listed = store.open_stages(alice.user_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].crates.len(), 2);

    let release = store.commit_stage(&stage.id, alice.user_id).await.unwrap();
    assert_eq!(release.crates.len(), 2);
    assert_eq!(lines(&*store, "base").await.len(), 1);
    assert!(lines(&*store, "app").await[0].contains("\"pubtime\""));
    let again = store.commit_stage(&stage.id, alice.user_id).await;
    assert!(
        matches!(again, Err(StoreError::StageNotOpen { .. })),
        "{again:?}"
    );
    assert!(store.release(&stage.id).await.unwrap().is_some());

    let yanked = store
        .yank_release(&stage.id, true, alice.user_id)
        .await
        .unwrap();
    assert!(yanked.crates.iter().all(|c| c.yanked));
    assert!(lines(&*store, "base").await[0].contains("\"yanked\":true"));
    assert!(lines(&*store, "app").await[0].contains("\"yanked\":true"));
}

/// A failing commit changes nothing and says why; an aborted stage's
/// versions come back only with the same bytes.
async fn failing_commit_and_aborted_slots(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = token(&*store, "alice").await;
    let (stage, _) = store
        .create_stage(&alice, Duration::from_secs(600))
        .await
        .unwrap();
    let empty = store.commit_stage(&stage.id, alice.user_id).await;
    assert!(
        matches!(empty, Err(StoreError::CommitRejected { .. })),
        "{empty:?}"
    );
    let mut lonely = line("lonely", "1.0.0", &["nowhere"]);
    lonely.cksum = "3".repeat(64);
    let refused = store
        .stage_version(new_version(lonely.clone(), alice.user_id), &stage.id)
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::UnknownDependencies { .. })
    ));
    store
        .stage_version(
            new_version(line("lonely", "1.0.0", &[]), alice.user_id),
            &stage.id,
        )
        .await
        .unwrap();
    store.abort_stage(&stage.id).await.unwrap();
    assert!(store.index_file("lonely").await.unwrap().is_none());
    let other_bytes = store
        .publish(new_version(lonely_with("4"), alice.user_id))
        .await;
    assert!(
        matches!(other_bytes, Err(StoreError::VersionBurnt { .. })),
        "{other_bytes:?}"
    );
    store
        .publish(new_version(line("lonely", "1.0.0", &[]), alice.user_id))
        .await
        .unwrap();
    assert_eq!(lines(&*store, "lonely").await.len(), 1);
    let aborted = store.stage(&stage.id).await.unwrap().unwrap();
    assert_eq!(aborted.state, convoy_store::StageState::Aborted);

    fn lonely_with(digit: &str) -> IndexPackage {
        let mut l = line("lonely", "1.0.0", &[]);
        l.cksum = digit.repeat(64);
        l
    }
}

async fn expired_stages_release_their_slots(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = token(&*store, "alice").await;
    let (stage, secret) = store
        .create_stage(&alice, Duration::from_secs(0))
        .await
        .unwrap();
    assert!(
        store.authenticate(secret.expose()).await.unwrap().is_none(),
        "expired token"
    );
    let late = store
        .stage_version(
            new_version(line("late", "1.0.0", &[]), alice.user_id),
            &stage.id,
        )
        .await;
    assert!(
        matches!(late, Err(StoreError::StageNotOpen { .. })),
        "{late:?}"
    );
    assert!(store.expire_stages().await.unwrap() <= 1);
    let record = store.stage(&stage.id).await.unwrap().unwrap();
    assert_eq!(record.state, convoy_store::StageState::Expired);
}

/// Tokens can be listed without secrets and revoked; revoking a token also
/// revokes the stage tokens it opened and discards their stages; the blobs
/// that a sweep must keep are those of published and staged versions.
async fn tokens_list_revoke_and_referenced_blobs(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = token(&*store, "alice").await;
    assert_eq!(store.user_id("alice").await.unwrap(), Some(alice.user_id));
    assert_eq!(store.user_id("nobody").await.unwrap(), None);
    store
        .publish(new_version(line("kept", "1.0.0", &[]), alice.user_id))
        .await
        .unwrap();
    let (stage, stage_secret) = store
        .create_stage(&alice, Duration::from_secs(600))
        .await
        .unwrap();
    let mut staged = line("staged", "1.0.0", &[]);
    staged.cksum = "5".repeat(64);
    store
        .stage_version(new_version(staged, alice.user_id), &stage.id)
        .await
        .unwrap();
    let referenced = store.referenced_blobs().await.unwrap();
    assert!(referenced.contains(&"0".repeat(64)) && referenced.contains(&"5".repeat(64)));

    let listed = store.tokens(alice.user_id).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().any(|t| t.id == alice.id && t.stage.is_none()));
    assert!(
        listed
            .iter()
            .any(|t| t.stage.as_deref() == Some(stage.id.as_str()))
    );
    assert!(
        store
            .authenticate(stage_secret.expose())
            .await
            .unwrap()
            .is_some()
    );

    let bob = user(&*store, "bob").await;
    assert!(
        !store.revoke_token(bob, &alice.id).await.unwrap(),
        "not bob's"
    );
    assert!(store.revoke_token(alice.user_id, &alice.id).await.unwrap());
    assert!(
        store
            .authenticate(stage_secret.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.tokens(alice.user_id).await.unwrap().is_empty());
    let discarded = store.stage(&stage.id).await.unwrap().unwrap();
    assert_eq!(discarded.state, convoy_store::StageState::Aborted);
    assert!(
        !store
            .referenced_blobs()
            .await
            .unwrap()
            .contains(&"5".repeat(64))
    );
    assert!(
        !store.revoke_token(alice.user_id, &alice.id).await.unwrap(),
        "already gone"
    );
}

/// Two nodes on one backend: a publish acknowledged by one is in the
/// other's very next index read, racing publishes of one version on
/// different nodes give exactly one success, and a commit on one node is
/// seen whole by the other.
async fn nodes_sharing_a_backend_agree(kind: Kind) {
    if kind == Kind::Sqlite {
        // One process per data directory: the backend holds a lock.
        return;
    }
    let Some(h) = Harness::new(kind) else { return };
    let a = h.open().await;
    let b = h.open().await;
    let alice = user(&*a, "alice").await;
    assert!(b.index_file("foo").await.unwrap().is_none());
    a.publish(new_version(line("foo", "1.0.0", &[]), alice))
        .await
        .unwrap();
    assert_eq!(
        lines(&*b, "foo").await.len(),
        1,
        "read-your-writes across nodes"
    );
    b.set_yanked("foo", "1.0.0", true, alice).await.unwrap();
    assert!(lines(&*a, "foo").await[0].contains("\"yanked\":true"));

    let mut tasks = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.push(tokio::spawn(async move {
            let mut l = line("foo", "2.0.0", &[]);
            l.cksum = format!("{:064x}", i);
            node.publish(new_version(l, alice)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::VersionExists { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one racing publish wins");
    assert_eq!(lines(&*a, "foo").await.len(), 2);
    assert_eq!(lines(&*b, "foo").await.len(), 2);

    // Racing commits of two stages holding the same version: one wins.
    let alice_token = token(&*a, "alice").await;
    let (s1, _) = a
        .create_stage(&alice_token, Duration::from_secs(600))
        .await
        .unwrap();
    let (s2, _) = b
        .create_stage(&alice_token, Duration::from_secs(600))
        .await
        .unwrap();
    a.stage_version(new_version(line("foo", "3.0.0", &[]), alice), &s1.id)
        .await
        .unwrap();
    let second = b
        .stage_version(new_version(line("foo", "3.0.0", &[]), alice), &s2.id)
        .await;
    assert!(
        matches!(second, Err(StoreError::VersionStaged { .. })),
        "{second:?}"
    );
    let (c1, c2) = tokio::join!(a.commit_stage(&s1.id, alice), b.commit_stage(&s1.id, alice));
    assert_eq!(
        [c1.is_ok(), c2.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{c1:?} {c2:?}"
    );
    assert_eq!(lines(&*b, "foo").await.len(), 3);

    // Download counts from both nodes add up in the database.
    a.download("foo", "1.0.0").await.unwrap();
    b.download("foo", "1.0.0").await.unwrap();
    b.download("foo", "1.0.0").await.unwrap();
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    let c = h.open().await;
    assert_eq!(c.download_count("foo", "1.0.0").await.unwrap(), Some(3));

    // Rate buckets are shared too.
    let limit = RateLimit {
        burst: 1,
        refill: Duration::from_secs(600),
    };
    assert!(a.take_publish_token(alice, limit).await.unwrap().is_ok());
    assert!(b.take_publish_token(alice, limit).await.unwrap().is_err());
}

/// Companions (`docs/SUBLIBRARIES.md`): private to their parent, owned
/// with it, hidden from search, no outside dependents, yanked with it.
fn companion(name: &str, vers: &str, parent: &str, publisher: i64) -> NewVersion {
    NewVersion {
        sublibrary_of: Some(parent.into()),
        ..new_version(line(name, vers, &[]), publisher)
    }
}

fn yanked(file: &[u8], vers: &str) -> bool {
    String::from_utf8_lossy(file)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|l| l["vers"] == vers && l["yanked"] == true)
}

async fn companions_are_private_to_their_parent(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = user(&*store, "alice").await;
    let bob = user(&*store, "bob").await;
    // First release: the companion goes up before its parent exists.
    store
        .publish(companion("app-helper", "1.0.0", "app", alice))
        .await
        .expect("companion");
    // Bob cannot take the parent's name over the waiting companion.
    let err = store
        .publish(new_version(line("app", "1.0.0", &["app-helper"]), bob))
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::NotOwner { .. }), "{err}");
    store
        .publish(new_version(line("app", "1.0.0", &["app-helper"]), alice))
        .await
        .expect("parent");

    // Hidden from search, listed for the parent.
    let (hits, total) = store.search("app", 1, 10).await.expect("search");
    assert_eq!((hits.len(), total), (1, 1));
    assert_eq!(hits[0].name, "app");
    assert_eq!(store.companions("app").await.expect("list"), ["app-helper"]);

    // Owned with the parent.
    let owners = store.owners("app-helper").await.expect("owners");
    assert_eq!(owners[0].login, "alice");
    let err = store
        .publish(companion("app-helper", "1.1.0", "app", bob))
        .await
        .expect_err("refused");
    assert_eq!(err.to_string(), "you are not an owner of crate `app`");
    let err = store
        .add_owners("app-helper", &["bob".into()], alice)
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::OwnedWithParent { .. }), "{err}");
    // Its kind is fixed.
    let err = store
        .publish(new_version(line("app-helper", "1.2.0", &[]), alice))
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::CompanionMismatch { .. }), "{err}");

    // No outside dependents; the family may depend on it.
    let err = store
        .publish(new_version(line("outsider", "0.1.0", &["app-helper"]), bob))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, StoreError::CompanionDependency { parent, .. } if parent == "app"),
        "{err}"
    );
    store
        .publish(new_version(
            line("app-cli", "0.1.0", &["app-helper"]),
            alice,
        ))
        .await
        .expect("same owners");

    // The parent's yank cascades to its companions of that version.
    store
        .set_yanked("app", "1.0.0", true, alice)
        .await
        .expect("yank");
    let file = store
        .index_file("app-helper")
        .await
        .expect("read")
        .expect("file");
    assert!(yanked(&file.content, "1.0.0"));
    store
        .set_yanked("app", "1.0.0", false, alice)
        .await
        .expect("unyank");
    let file = store
        .index_file("app-helper")
        .await
        .expect("read")
        .expect("file");
    assert!(!yanked(&file.content, "1.0.0"));
}

/// The web UI's read views see published data only, count downloads per
/// day, and keep one session key.
fn browse_version(
    name: &str,
    vers: &str,
    dep: Option<&str>,
    by: &AuthenticatedToken,
) -> NewVersion {
    NewVersion {
        line: IndexPackage {
            name: name.into(),
            vers: vers.into(),
            deps: dep
                .map(|d| IndexDependency {
                    name: d.into(),
                    req: "^1".into(),
                    features: vec![],
                    optional: false,
                    default_features: true,
                    target: None,
                    kind: None,
                    registry: None,
                    package: None,
                })
                .into_iter()
                .collect(),
            cksum: "0".repeat(64),
            features: Default::default(),
            features2: None,
            yanked: false,
            links: None,
            rust_version: None,
            v: None,
            pubtime: None,
        },
        description: Some(format!("{name} does things")),
        publisher: by.user_id,
        may_create: true,
        may_update: true,
        meta: VersionMeta {
            readme: Some(format!("# {name} {vers}")),
            license: Some("MIT".into()),
            keywords: vec!["k".into()],
            ..Default::default()
        },
        sublibrary_of: None,
    }
}

async fn browsing_sees_published_data_only(kind: Kind) {
    let Some(h) = Harness::new(kind) else { return };
    let store = h.open().await;
    let alice = token(&*store, "alice").await;
    store
        .publish(browse_version("core", "1.0.0", None, &alice))
        .await
        .expect("core");
    store
        .publish(browse_version("core", "1.1.0", None, &alice))
        .await
        .expect("core 1.1");
    store
        .publish(browse_version("app", "1.0.0", Some("core"), &alice))
        .await
        .expect("app");
    let (stage, _) = store
        .create_stage(&alice, Duration::from_secs(600))
        .await
        .expect("stage");
    store
        .stage_version(
            browse_version("hidden", "1.0.0", Some("core"), &alice),
            &stage.id,
        )
        .await
        .expect("staged");

    let details = store
        .crate_details("core")
        .await
        .expect("details")
        .expect("core");
    assert_eq!(details.versions.len(), 2);
    assert_eq!(details.owners, ["alice"]);
    let meta = store
        .version_meta("core", "1.1.0")
        .await
        .expect("meta")
        .expect("some");
    assert_eq!(meta.readme.as_deref(), Some("# core 1.1.0"));
    assert_eq!(meta.keywords, ["k"]);
    let dependents = store.reverse_dependencies("core").await.expect("rdeps");
    assert_eq!(dependents.len(), 1, "{dependents:?}");
    assert_eq!(dependents[0].name, "app");

    // The staged crate is nowhere.
    assert!(
        store
            .crate_details("hidden")
            .await
            .expect("details")
            .is_none()
    );
    assert!(
        store
            .version_meta("hidden", "1.0.0")
            .await
            .expect("meta")
            .is_none()
    );
    let names = |list: Vec<convoy_store::CrateSummary>| {
        list.into_iter().map(|c| c.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.recent_crates(10).await.expect("recent")),
        ["app", "core"]
    );
    assert_eq!(
        names(
            store
                .user_crates("alice")
                .await
                .expect("user")
                .expect("alice")
        ),
        ["app", "core"]
    );
    assert_eq!(
        names(store.search_summaries("", 1, 10).await.expect("search").0),
        ["app", "core"]
    );
    let totals = store.totals().await.expect("totals");
    assert_eq!((totals.crates, totals.versions), (2, 3));
    assert!(store.user_crates("nobody").await.expect("user").is_none());

    // Downloads are counted per day once flushed.
    store.download("core", "1.0.0").await.expect("download");
    store.download("core", "1.1.0").await.expect("download");
    store.flush().await.expect("flush");
    let daily = store.daily_downloads("core", 90).await.expect("daily");
    assert_eq!(daily.len(), 1);
    assert_eq!(daily[0].1, 2);
    let popular = store.most_downloaded(1).await.expect("popular");
    assert_eq!(popular[0].name, "core");
    assert_eq!(popular[0].downloads, 2);
    assert_eq!(popular[0].max_version, "1.1.0");

    // One session key, kept.
    let key = store.session_key().await.expect("key");
    assert_eq!(key.len(), 32);
    drop(store);
    // Kept across restarts, and the same on every node.
    let reopened = h.open().await;
    assert_eq!(reopened.session_key().await.expect("key"), key);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Kind::Postgres).await
                }
            )*
        }
    };
}

conformance!(
    publish_renders_index_and_enforces_uniqueness,
    scopes_gate_new_crates_and_updates,
    yank_rewrites_the_line_and_the_etag,
    owners_can_be_added_but_never_all_removed,
    tokens_check_hash_expiry_and_globs,
    state_survives_reopen_and_counts_downloads,
    search_treats_dashes_and_wildcards_literally,
    concurrent_publishes_keep_every_line_once,
    rate_buckets_allow_a_burst_then_say_how_long,
    stage_reserve_view_commit_and_yank,
    failing_commit_and_aborted_slots,
    expired_stages_release_their_slots,
    tokens_list_revoke_and_referenced_blobs,
    companions_are_private_to_their_parent,
    browsing_sees_published_data_only,
    nodes_sharing_a_backend_agree,
);

/// Both blob stores: write once, read back, idempotent puts, bad keys
/// refused, and the download answer each gives.
async fn blob_store_contract(blobs: &dyn BlobStore, streams: bool) {
    let bytes = Bytes::from_static(b"crate bytes");
    let key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert!(blobs.get(&key).await.unwrap().is_none());
    assert!(blobs.fetch(&key).await.unwrap().is_none());
    blobs.put(&key, bytes.clone()).await.unwrap();
    blobs.put(&key, bytes.clone()).await.unwrap();
    assert_eq!(blobs.get(&key).await.unwrap().unwrap(), bytes);
    match blobs.fetch(&key).await.unwrap().unwrap() {
        Blob::Bytes(b) => assert!(!streams && b == bytes),
        Blob::Stream { body, len } => {
            use futures_util::TryStreamExt;
            assert!(streams);
            assert_eq!(len, Some(bytes.len() as u64));
            let got: Vec<Bytes> = body.try_collect().await.unwrap();
            assert_eq!(got.concat(), bytes.to_vec());
        }
        Blob::Redirect(url) => panic!("unexpected redirect to {url}"),
    }
    assert!(blobs.put("../../etc/passwd", bytes.clone()).await.is_err());
    assert!(blobs.get(&key.to_uppercase()).await.is_err());
}

#[tokio::test]
async fn filesystem_blobs() {
    let dir = tempfile::tempdir().unwrap();
    blob_store_contract(&FsBlobStore::open(dir.path()).unwrap(), false).await;
}

fn s3_blobs(mode: DownloadMode) -> Option<(ObjectBlobStore, String)> {
    let server = convoy_test_support::s3::server()?;
    let bucket = server.fresh_bucket();
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_access_key_id(convoy_test_support::s3::ACCESS_KEY)
        .with_secret_access_key(convoy_test_support::s3::SECRET_KEY)
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .build()
        .unwrap();
    Some((ObjectBlobStore::with_s3(store, "crates", mode), bucket))
}

#[tokio::test]
async fn s3_blobs_are_written_once_and_streamed() {
    let Some((blobs, bucket)) = s3_blobs(DownloadMode::Stream) else {
        return;
    };
    blob_store_contract(&blobs, true).await;
    let on_disk = convoy_test_support::s3::server()
        .unwrap()
        .bucket_dir(&bucket)
        .join("crates");
    assert!(on_disk.exists(), "objects live under the prefix");
}

#[tokio::test]
async fn s3_downloads_can_redirect_to_a_presigned_url() {
    let Some((blobs, _)) = s3_blobs(DownloadMode::Redirect(Duration::from_secs(60))) else {
        return;
    };
    let bytes = Bytes::from_static(b"redirected crate");
    let key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    blobs.put(&key, bytes.clone()).await.unwrap();
    let Some(Blob::Redirect(url)) = blobs.fetch(&key).await.unwrap() else {
        panic!("expected a redirect");
    };
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let got = tokio::task::spawn_blocking(move || {
        let resp = convoy_test_support::http().get(url).send().unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(got, bytes);
}
