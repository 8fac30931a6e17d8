//! The upload stage against the real Convoy registry, served in-process on
//! 127.0.0.1, with real `.crate` files. Faults are injected in front of it:
//! an axum layer for latency and 503s, and a tiny reverse proxy that drops
//! connections before or after the registry saw the upload.
//!
//! Every test is bounded by [`LIMIT`].

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use convoy_index_client::RegistryTarget;
use convoy_package::PackagedCrate;
use convoy_protocol::index::{IndexPackage, index_path};
use convoy_protocol::publish::NewCrate;
use convoy_registry::{Limits, RateLimit, Settings};
use convoy_tarball::TarballBuilder;
use convoy_upload::{CrateOutcome, Pacing, UploadEvent, UploadOptions, UploadReport, upload};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The most any test may take.
const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- fixture

/// What to put in front of the registry.
#[derive(Default)]
struct Setup {
    publish_rate: Option<RateLimit>,
    /// Added to every request, index reads included.
    delay: Duration,
    /// The first this-many `PUT`s get 503 without reaching the registry.
    fail_puts: usize,
    /// Faults for successive `PUT`s, applied by a proxy in front.
    drops: Vec<Cut>,
}

/// How the proxy drops a `PUT`'s connection.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Before the registry sees it: nothing landed.
    BeforeForward,
    /// After the registry answered: it landed, the client never hears.
    AfterForward,
}

struct Registry {
    /// What clients use: the registry, or the proxy in front of it.
    base: String,
    token: String,
    /// `PUT`s that reached the layer in front of the handler.
    puts: Arc<AtomicUsize>,
    /// The most `PUT`s that were in flight at once.
    peak: Arc<AtomicUsize>,
    http: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
    _dir: TempDir,
}

impl Registry {
    async fn start(setup: Setup) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let proxy = if setup.drops.is_empty() {
            None
        } else {
            Some(TcpListener::bind("127.0.0.1:0").await.unwrap())
        };
        let front = proxy.as_ref().map_or(upstream, |p| p.local_addr().unwrap());
        let settings = Settings {
            public_url: format!("http://{front}"),
            auth_required: false,
            limits: Limits::default(),
            publish_rate: setup.publish_rate,
            companions: true,
        };
        let (app, token) = convoy_test_support::registry_app(dir.path(), settings);

        let puts = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let inflight = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(AtomicUsize::new(setup.fail_puts));
        let (counter, delay) = (Arc::clone(&puts), setup.delay);
        let (peak_seen, inflight_now) = (Arc::clone(&peak), Arc::clone(&inflight));
        let faults = axum::middleware::from_fn(move |req: Request, next: Next| {
            let (counter, failing) = (Arc::clone(&counter), Arc::clone(&failing));
            let (peak_seen, inflight_now) = (Arc::clone(&peak_seen), Arc::clone(&inflight_now));
            async move {
                let is_put = req.method() == Method::PUT;
                if is_put {
                    let now = inflight_now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak_seen.fetch_max(now, Ordering::SeqCst);
                }
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let response = if is_put && {
                    counter.fetch_add(1, Ordering::SeqCst);
                    take_one(&failing)
                } {
                    (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response()
                } else {
                    next.run(req).await
                };
                if is_put {
                    inflight_now.fetch_sub(1, Ordering::SeqCst);
                }
                response
            }
        });
        let router = convoy_registry::router(app).layer(faults);
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(convoy_registry::serve(listener, router, async {
            let _ = stop.await;
        }));
        if let Some(proxy) = proxy {
            tokio::spawn(run_proxy(proxy, upstream, setup.drops));
        }
        Self {
            base: format!("http://{front}"),
            token,
            puts,
            peak,
            http: reqwest::Client::new(),
            _shutdown: shutdown,
            _dir: dir,
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

    fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    /// The index lines of `name`, straight from the registry.
    async fn index(&self, name: &str) -> Vec<IndexPackage> {
        let url = format!("{}/index/{}", self.base, index_path(name));
        let resp = self.http.get(url).send().await.unwrap();
        if resp.status() == StatusCode::NOT_FOUND {
            return Vec::new();
        }
        let text = resp.error_for_status().unwrap().text().await.unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Asserts `krate` is in the index exactly once, with its cksum.
    async fn assert_published_once(&self, krate: &PackagedCrate) {
        let lines = self.index(&krate.name).await;
        let matching: Vec<_> = lines.iter().filter(|l| l.vers == krate.version).collect();
        assert_eq!(matching.len(), 1, "{}: {lines:?}", krate.name);
        assert_eq!(matching[0].cksum, krate.cksum, "{}", krate.name);
    }
}

fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// One request per connection (`connection: close` both ways), so each
/// `PUT` can be seen whole and its connection dropped at will.
async fn run_proxy(listener: TcpListener, upstream: SocketAddr, drops: Vec<Cut>) {
    let drops = Arc::new(Mutex::new(VecDeque::from(drops)));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let drops = Arc::clone(&drops);
        tokio::spawn(async move {
            let _ = proxy_one(client, upstream, drops).await;
        });
    }
}

async fn proxy_one(
    mut client: TcpStream,
    upstream: SocketAddr,
    drops: Arc<Mutex<VecDeque<Cut>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let fault = if head.starts_with("PUT ") {
        drops.lock().unwrap().pop_front()
    } else {
        None
    };
    if let Some(Cut::BeforeForward) = fault {
        return Ok(());
    }
    let mut rewritten: String = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    rewritten.push_str("connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(rewritten.as_bytes()).await?;
    up.write_all(&buf[head_end..head_end + length]).await?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await?;
    if let Some(Cut::AfterForward) = fault {
        return Ok(());
    }
    client.write_all(&response).await?;
    client.shutdown().await
}

/// Builds a real `.crate` for `name@version` depending on `deps` (normal
/// dependencies on siblings in the same registry, `^version`).
fn krate(dir: &Path, name: &str, version: &str, deps: &[&str]) -> PackagedCrate {
    krate_with(dir, name, version, deps, b"")
}

/// [`krate`] with `extra` as a README, to make different bytes for the
/// same version.
fn krate_with(dir: &Path, name: &str, version: &str, deps: &[&str], extra: &[u8]) -> PackagedCrate {
    let mut builder = TarballBuilder::minimal(name, version);
    if !extra.is_empty() {
        builder = builder.file(&format!("{name}-{version}/README.md"), extra);
    }
    let bytes = builder.build();
    let cksum = hex::encode(Sha256::digest(&bytes));
    let path = dir.join(format!("{name}-{version}-{}.crate", &cksum[..8]));
    std::fs::write(&path, &bytes).unwrap();
    let metadata: NewCrate = serde_json::from_value(serde_json::json!({
        "name": name,
        "vers": version,
        "description": format!("test crate {name}"),
        "license": "MIT",
        "deps": deps.iter().map(|d| serde_json::json!({
            "name": d,
            "version_req": format!("^{version}"),
            "features": [],
            "optional": false,
            "default_features": true,
            "target": null,
            "kind": "normal",
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
        local_deps: deps.iter().map(|d| (*d).to_owned()).collect(),
        changes: Vec::new(),
    }
}

fn fast_opts(jobs: usize) -> UploadOptions {
    UploadOptions {
        jobs,
        retry_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        visibility_timeout: Duration::from_secs(5),
        pacing: Pacing::Off,
        ..UploadOptions::default()
    }
}

/// Runs an upload, recording every event, within [`LIMIT`].
async fn run(
    registry: &Registry,
    crates: &[PackagedCrate],
    opts: &UploadOptions,
) -> (UploadReport, Vec<UploadEvent>) {
    run_against(&registry.target(), crates, opts).await
}

async fn run_against(
    target: &RegistryTarget,
    crates: &[PackagedCrate],
    opts: &UploadOptions,
) -> (UploadReport, Vec<UploadEvent>) {
    let events = Mutex::new(Vec::new());
    let observer = |e: UploadEvent| events.lock().unwrap().push(e);
    let report = tokio::time::timeout(LIMIT, upload(target, crates, opts, &observer))
        .await
        .expect("upload finished within the test limit");
    (report, events.into_inner().unwrap())
}

fn outcome<'a>(report: &'a UploadReport, name: &str) -> &'a CrateOutcome {
    &report.get(name).unwrap().outcome
}

/// The position of the first event matching `f`.
fn position(events: &[UploadEvent], f: impl Fn(&UploadEvent) -> bool) -> usize {
    events.iter().position(f).unwrap()
}

fn uploading(name: &str) -> impl Fn(&UploadEvent) -> bool + '_ {
    move |e| matches!(e, UploadEvent::Uploading { name: n, .. } if n == name)
}

fn published(name: &str) -> impl Fn(&UploadEvent) -> bool + '_ {
    move |e| matches!(e, UploadEvent::Published { name: n, .. } if n == name)
}

// ---------------------------------------------------------------- ordering

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_and_chain_publish_in_dependency_order() {
    let registry = Registry::start(Setup::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Dependents first, so the input order is of no help.
    let crates = vec![
        krate(d, "top", "0.1.0", &["left", "right"]),
        krate(d, "left", "0.1.0", &["base"]),
        krate(d, "right", "0.1.0", &["base"]),
        krate(d, "base", "0.1.0", &[]),
        krate(d, "chain-d", "1.0.0", &["chain-c"]),
        krate(d, "chain-c", "1.0.0", &["chain-b"]),
        krate(d, "chain-b", "1.0.0", &["chain-a"]),
        krate(d, "chain-a", "1.0.0", &[]),
    ];
    let (report, events) = run(&registry, &crates, &fast_opts(4)).await;

    assert!(report.is_success(), "{report:#?}");
    for krate in &crates {
        assert_eq!(outcome(&report, &krate.name), &CrateOutcome::Published);
        assert_eq!(report.get(&krate.name).unwrap().attempts, 1);
        registry.assert_published_once(krate).await;
        // Each crate went up only after its dependencies were visible.
        for dep in &krate.local_deps {
            assert!(
                position(&events, published(dep)) < position(&events, uploading(&krate.name)),
                "{} uploaded before {dep} was visible",
                krate.name
            );
        }
    }
    assert_eq!(registry.puts(), crates.len());
    // The token never reaches events or the report.
    let text = format!("{report:?}{events:?}{:?}", serde_json::to_string(&report));
    assert!(!text.contains(&registry.token));
}

// ---------------------------------------------------------------- resume

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_skips_and_changed_content_is_refused() {
    let registry = Registry::start(Setup::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let crates = vec![
        krate(d, "core-lib", "0.3.0", &[]),
        krate(d, "mid-lib", "0.3.0", &["core-lib"]),
        krate(d, "app-lib", "0.3.0", &["mid-lib"]),
    ];
    let (first, _) = run(&registry, &crates, &fast_opts(2)).await;
    assert!(first.is_success(), "{first:#?}");
    assert_eq!(registry.puts(), 3);

    let (again, events) = run(&registry, &crates, &fast_opts(2)).await;
    for krate in &crates {
        assert_eq!(outcome(&again, &krate.name), &CrateOutcome::Skipped);
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, UploadEvent::Uploading { .. }))
    );
    assert_eq!(registry.puts(), 3, "a rerun uploads nothing");

    // The same version with other bytes is an error, never an upload.
    let changed = vec![
        krate_with(d, "core-lib", "0.3.0", &[], b"changed"),
        crates[1].clone(),
    ];
    let (report, _) = run(&registry, &changed, &fast_opts(2)).await;
    let CrateOutcome::Failed { reason } = outcome(&report, "core-lib") else {
        panic!("{report:#?}");
    };
    assert_eq!(
        reason,
        &format!(
            "`core-lib@0.3.0` is already on `local` with different content (cksum {}, local {})",
            crates[0].cksum, changed[0].cksum
        )
    );
    assert_eq!(outcome(&report, "mid-lib"), &CrateOutcome::Skipped);
    assert_eq!(registry.puts(), 3);
    registry.assert_published_once(&crates[0]).await;

    // Build metadata does not make a new version.
    let plus = krate(d, "app-lib", "0.3.0+build.7", &["mid-lib"]);
    let (report, _) = run(&registry, &[plus], &fast_opts(1)).await;
    assert!(
        matches!(outcome(&report, "app-lib"), CrateOutcome::Failed { reason } if reason.contains("different content")),
        "{report:#?}"
    );
    assert_eq!(registry.puts(), 3);
}

// ---------------------------------------------------------------- faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_429_is_waited_out() {
    let registry = Registry::start(Setup {
        publish_rate: Some(RateLimit {
            burst: 2,
            refill: Duration::from_millis(500),
        }),
        ..Setup::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let crates: Vec<_> = (0..5)
        .map(|i| krate(dir.path(), &format!("limited-{i}"), "0.1.0", &[]))
        .collect();
    let (report, events) = run(&registry, &crates, &fast_opts(5)).await;

    assert!(report.is_success(), "{report:#?}");
    for krate in &crates {
        registry.assert_published_once(krate).await;
    }
    let waits: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            UploadEvent::Retrying { reason, after, .. } if reason.starts_with("rate limited") => {
                Some(*after)
            }
            _ => None,
        })
        .collect();
    assert!(!waits.is_empty(), "{events:#?}");
    // The registry said `Retry-After: 1` (whole seconds, rounded up).
    assert!(
        waits.iter().all(|w| *w >= Duration::from_secs(1)),
        "{waits:?}"
    );
    // Each 429 was one refused PUT; every crate still landed once.
    assert_eq!(registry.puts(), crates.len() + waits.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_503s_are_retried() {
    let registry = Registry::start(Setup {
        fail_puts: 3,
        ..Setup::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let crates = vec![
        krate(dir.path(), "flaky-a", "0.1.0", &[]),
        krate(dir.path(), "flaky-b", "0.1.0", &["flaky-a"]),
    ];
    let (report, events) = run(&registry, &crates, &fast_opts(2)).await;

    assert!(report.is_success(), "{report:#?}");
    let retries: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            UploadEvent::Retrying { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 3, "{retries:?}");
    assert!(retries.iter().all(|r| r.contains("503")), "{retries:?}");
    assert_eq!(registry.puts(), 5);
    let attempts: u32 = report.crates.iter().map(|c| c.attempts).sum();
    assert_eq!(attempts, 5);
    for krate in &crates {
        registry.assert_published_once(krate).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_give_up_after_max_retries() {
    let registry = Registry::start(Setup {
        fail_puts: 100,
        ..Setup::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let crates = vec![krate(dir.path(), "down", "0.1.0", &[])];
    let opts = UploadOptions {
        max_retries: 2,
        ..fast_opts(1)
    };
    let (report, _) = run(&registry, &crates, &opts).await;
    let CrateOutcome::Failed { reason } = outcome(&report, "down") else {
        panic!("{report:#?}");
    };
    assert!(
        reason.starts_with("failed to upload `down@0.1.0` to `local` after 3 attempts, status 503"),
        "{reason}"
    );
    assert_eq!(registry.puts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_survived_without_double_uploads() {
    // One connection dropped after the registry stored the upload (the
    // client must find it in the index instead of sending it again), one
    // dropped before it got there (the client must send it again).
    let registry = Registry::start(Setup {
        drops: vec![Cut::AfterForward, Cut::BeforeForward],
        ..Setup::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let crates = vec![
        krate(dir.path(), "net-a", "0.1.0", &[]),
        krate(dir.path(), "net-b", "0.1.0", &["net-a"]),
        krate(dir.path(), "net-c", "0.1.0", &["net-b"]),
    ];
    let (report, events) = run(&registry, &crates, &fast_opts(1)).await;

    assert!(report.is_success(), "{report:#?}");
    // net-a: its only PUT landed though the answer was lost.
    assert_eq!(report.get("net-a").unwrap().attempts, 1);
    // net-b: its first PUT never arrived, the second did.
    assert_eq!(report.get("net-b").unwrap().attempts, 2);
    assert_eq!(report.get("net-c").unwrap().attempts, 1);
    let retried: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            UploadEvent::Retrying { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(retried, ["net-b"]);
    // Each crate reached the registry exactly once.
    assert_eq!(registry.puts(), 3);
    for krate in &crates {
        registry.assert_published_once(krate).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried() {
    let registry = Registry::start(Setup::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // Crate names must start with a letter.
    let crates = vec![krate(dir.path(), "1bad", "0.1.0", &[])];
    let (report, events) = run(&registry, &crates, &fast_opts(1)).await;

    let CrateOutcome::Failed { reason } = outcome(&report, "1bad") else {
        panic!("{report:#?}");
    };
    assert!(
        reason.starts_with("`local` rejected `1bad@0.1.0` with status 400, "),
        "{reason}"
    );
    assert_eq!(registry.puts(), 1);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, UploadEvent::Retrying { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_blocks_dependents_but_not_independent_crates() {
    let registry = Registry::start(Setup::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `broken` claims 0.2.0 while its Cargo.toml says 0.1.0: a 400.
    let mut broken = krate(d, "broken", "0.1.0", &["good-base"]);
    broken.version = "0.2.0".into();
    broken.metadata.vers = "0.2.0".into();
    let crates = vec![
        krate(d, "good-base", "0.1.0", &[]),
        broken,
        krate(d, "needs-broken", "0.1.0", &["broken"]),
        krate(d, "needs-needs", "0.1.0", &["needs-broken", "good-base"]),
        krate(d, "good-top", "0.1.0", &["good-base"]),
        krate(d, "alone", "0.1.0", &[]),
    ];
    let (report, _) = run(&registry, &crates, &fast_opts(3)).await;

    assert_eq!(outcome(&report, "good-base"), &CrateOutcome::Published);
    assert_eq!(outcome(&report, "good-top"), &CrateOutcome::Published);
    assert_eq!(outcome(&report, "alone"), &CrateOutcome::Published);
    assert!(matches!(
        outcome(&report, "broken"),
        CrateOutcome::Failed { .. }
    ));
    let blocked = CrateOutcome::Blocked {
        by: vec!["broken".into()],
    };
    assert_eq!(outcome(&report, "needs-broken"), &blocked);
    assert_eq!(outcome(&report, "needs-needs"), &blocked);
    assert!(!report.is_success());
    // Four crates went up, plus the one refused attempt.
    assert_eq!(registry.puts(), 4);
    assert!(registry.index("needs-broken").await.is_empty());

    // The result document the CLI writes.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["crates"][2],
        serde_json::json!({
            "name": "needs-broken",
            "version": "0.1.0",
            "cksum": crates[2].cksum,
            "status": "blocked",
            "by": ["broken"],
            "attempts": 0,
        })
    );
    assert_eq!(json["crates"][0]["status"], "published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_fails_every_crate_clearly() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = RegistryTarget {
        name: Some("gone".into()),
        index: format!("sparse+http://127.0.0.1:{port}/index/"),
        token: Some("secret-token".into()),
        http: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let crates = vec![
        krate(dir.path(), "one", "0.1.0", &[]),
        krate(dir.path(), "two", "0.1.0", &["one"]),
    ];
    let opts = UploadOptions {
        max_retries: 1,
        ..fast_opts(2)
    };
    let (report, events) = run_against(&target, &crates, &opts).await;
    for name in ["one", "two"] {
        let CrateOutcome::Failed { reason } = outcome(&report, name) else {
            panic!("{report:#?}");
        };
        assert!(
            reason.starts_with("failed to read the index configuration of `gone`"),
            "{reason}"
        );
    }
    assert_eq!(events.len(), 2);
    assert!(!format!("{report:?}{events:?}").contains("secret-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_is_reported_before_any_upload() {
    let registry = Registry::start(Setup::default()).await;
    let target = RegistryTarget {
        token: None,
        http: Default::default(),
        ..registry.target()
    };
    let dir = tempfile::tempdir().unwrap();
    let crates = vec![krate(dir.path(), "tokenless", "0.1.0", &[])];
    let (report, _) = run_against(&target, &crates, &fast_opts(1)).await;
    assert!(
        matches!(outcome(&report, "tokenless"), CrateOutcome::Failed { reason } if reason.starts_with("no token found for registry `local`")),
        "{report:#?}"
    );
    assert_eq!(registry.puts(), 0);
}

// ---------------------------------------------------------------- speed

/// The goal: 50 independent crates to a registry that answers in
/// 100 ms take close to one round trip per `-j` slot, not 50 in sequence.
/// Speed itself is measured by `cargo xtask bench publish`; this test checks
/// the mechanism: uploads really overlap, and never more than `-j` of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_crates_at_100ms_use_every_slot() {
    const LATENCY: Duration = Duration::from_millis(100);
    let registry = Registry::start(Setup {
        delay: LATENCY,
        ..Setup::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let crates: Vec<_> = (0..50)
        .map(|i| krate(dir.path(), &format!("wide-{i:02}"), "0.1.0", &[]))
        .collect();
    let (report, _) = run(&registry, &crates, &fast_opts(8)).await;

    assert!(report.is_success(), "{report:#?}");
    assert_eq!(registry.puts(), 50);
    let peak = registry.peak.load(Ordering::SeqCst);
    assert!(peak > 1, "uploads must overlap, saw at most {peak} at once");
    assert!(
        peak <= 8,
        "`-j 8` must bound the uploads, saw {peak} at once"
    );
}

// ---------------------------------------------------------------- dry run

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_uploads_nothing_but_still_checks_the_index() {
    let registry = Registry::start(Setup::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let existing = krate(d, "dry-base", "0.1.0", &[]);
    let (first, _) = run(&registry, std::slice::from_ref(&existing), &fast_opts(1)).await;
    assert!(first.is_success());
    assert_eq!(registry.puts(), 1);

    let crates = vec![
        existing.clone(),
        krate(d, "dry-mid", "0.1.0", &["dry-base"]),
        krate(d, "dry-top", "0.1.0", &["dry-mid"]),
        krate_with(d, "dry-other", "0.1.0", &[], b"x"),
    ];
    let opts = UploadOptions {
        dry_run: true,
        ..fast_opts(2)
    };
    let (report, events) = run(&registry, &crates, &opts).await;
    assert!(report.dry_run);
    assert!(report.is_success(), "{report:#?}");
    assert_eq!(outcome(&report, "dry-base"), &CrateOutcome::Skipped);
    for name in ["dry-mid", "dry-top", "dry-other"] {
        assert_eq!(outcome(&report, name), &CrateOutcome::DryRun);
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, UploadEvent::Uploading { .. }))
    );
    assert_eq!(registry.puts(), 1);
    assert!(registry.index("dry-mid").await.is_empty());

    // A mismatch is found in a dry run too.
    let changed = vec![krate_with(d, "dry-base", "0.1.0", &[], b"changed")];
    let (report, _) = run(&registry, &changed, &opts).await;
    assert!(matches!(
        outcome(&report, "dry-base"),
        CrateOutcome::Failed { .. }
    ));
    // A dry run needs no token.
    let tokenless = RegistryTarget {
        token: None,
        http: Default::default(),
        ..registry.target()
    };
    let (report, _) = run_against(&tokenless, &crates[1..2], &opts).await;
    assert_eq!(outcome(&report, "dry-mid"), &CrateOutcome::DryRun);
    assert_eq!(registry.puts(), 1);
}

// ---------------------------------------------------------------- pacing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_waits_instead_of_collecting_429s() {
    let limit = RateLimit {
        burst: 2,
        refill: Duration::from_millis(300),
    };
    let registry = Registry::start(Setup {
        publish_rate: Some(limit),
        ..Setup::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let crates: Vec<_> = (0..4)
        .map(|i| krate(dir.path(), &format!("paced-{i}"), "0.1.0", &[]))
        .collect();
    // Pace a little slower than the registry refills, as a margin.
    let pace = convoy_upload::PaceLimit {
        burst: 2,
        refill: Duration::from_millis(450),
    };
    let opts = UploadOptions {
        pacing: Pacing::Limits(convoy_upload::PaceLimits {
            new_crates: pace,
            new_versions: pace,
        }),
        ..fast_opts(4)
    };
    let (report, events) = run(&registry, &crates, &opts).await;
    assert!(report.is_success(), "{report:#?}");
    let paced = events
        .iter()
        .filter(|e| matches!(e, UploadEvent::Paced { .. }))
        .count();
    assert_eq!(paced, 2, "{events:#?}");
    assert_eq!(registry.puts(), 4, "no PUT was refused");
}

// ---------------------------------------------------------------- input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycles_and_duplicates_fail_without_stalling_the_rest() {
    let registry = Registry::start(Setup::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let crates = vec![
        krate(d, "cyc-a", "0.1.0", &["cyc-b"]),
        krate(d, "cyc-b", "0.1.0", &["cyc-a"]),
        krate(d, "free", "0.1.0", &[]),
        krate(d, "free", "0.1.0", &[]),
    ];
    let (report, _) = run(&registry, &crates, &fast_opts(2)).await;
    assert!(matches!(
        &report.crates[0].outcome,
        CrateOutcome::Failed { reason } if reason == "`cyc-a` is part of, or depends on, a dependency cycle among `cyc-a`, `cyc-b`"
    ));
    assert!(matches!(
        &report.crates[1].outcome,
        CrateOutcome::Failed { .. }
    ));
    assert_eq!(report.crates[2].outcome, CrateOutcome::Published);
    assert!(matches!(
        &report.crates[3].outcome,
        CrateOutcome::Failed { reason } if reason == "`free` is listed more than once in the upload"
    ));
    assert_eq!(registry.puts(), 1);
}

/// The CLI is sync: `upload_on` runs the same engine on the caller's
/// runtime, and its observer runs on the calling thread, so it may borrow
/// (here, mutably) the caller's state without a lock.
#[test]
fn upload_on_publishes_on_the_callers_runtime() {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = server.block_on(Registry::start(Setup::default()));
    let dir = tempfile::tempdir().unwrap();
    let crates = vec![
        krate(dir.path(), "sync-a", "0.1.0", &[]),
        krate(dir.path(), "sync-b", "0.1.0", &["sync-a"]),
    ];
    let mut events = Vec::new();
    let report = convoy_upload::upload_on(
        &convoy_test_support::runtime(),
        &registry.target(),
        &crates,
        &fast_opts(2),
        |e: UploadEvent| events.push(e),
    );
    assert!(report.is_success(), "{report:#?}");
    assert_eq!(registry.puts(), 2);
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| matches!(e, UploadEvent::Uploading { name, .. } | UploadEvent::Uploaded { name, .. } | UploadEvent::Waiting { name, .. } | UploadEvent::Published { name, .. } if name == "sync-a"))
        .map(|e| match e {
            UploadEvent::Uploading { .. } => "uploading",
            UploadEvent::Uploaded { .. } => "uploaded",
            UploadEvent::Waiting { .. } => "waiting",
            _ => "published",
        })
        .collect();
    assert_eq!(kinds, ["uploading", "uploaded", "waiting", "published"]);
}
