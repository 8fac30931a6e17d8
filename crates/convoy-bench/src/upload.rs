//! The upload stage alone: `convoy_upload::upload_on` sends 50
//! independent crates to the real Convoy registry, served in-process on
//! 127.0.0.1 behind a layer that delays every request (index reads and
//! `PUT`s alike) by a fixed latency, at several `-j`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use convoy_index_client::RegistryTarget;
use convoy_package::PackagedCrate;
use convoy_protocol::publish::NewCrate;
use convoy_registry::{App, Limits, Settings};
use convoy_store::NewToken;
use convoy_store::fs::FsBlobStore;
use convoy_store::sqlite::SqliteStore;
use convoy_tarball::TarballBuilder;
use convoy_upload::{Pacing, UploadOptions, upload_on};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One `-j` run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub jobs: usize,
    pub seconds: f64,
    /// `seconds` over `crates × latency` (50 sequential round trips).
    pub ratio_to_sequential: f64,
    /// `seconds` over `ceil(crates / jobs) × latency`: 1.0 would be one
    /// round trip per slot and nothing else.
    pub round_trips_per_slot: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub crates: usize,
    pub latency_ms: u64,
    pub runs: Vec<Run>,
}

/// Runs the upload of `crates` generated crates at each of `jobs`, each to
/// a fresh registry, within `limit` per run. The uploads run on `client`,
/// the caller's client runtime, as the CLI's do on its one runtime; each
/// registry has a runtime of its own, so that the server's work does not
/// share (or skew) the client's workers.
pub fn run(
    client: &tokio::runtime::Handle,
    crates: usize,
    latency: Duration,
    jobs: &[usize],
    limit: Duration,
) -> anyhow::Result<Report> {
    let mut runs = Vec::new();
    for &j in jobs {
        let dir = tempfile::Builder::new()
            .prefix("convoy-bench-upload-")
            .tempdir()?;
        let registry = Registry::start(dir.path(), latency)?;
        let packaged = (0..crates)
            .map(|i| krate(dir.path(), &format!("wide-{i:02}"), "0.1.0"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let opts = UploadOptions {
            jobs: j,
            retry_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            visibility_timeout: Duration::from_secs(10),
            request_timeout: limit,
            pacing: Pacing::Off,
            ..UploadOptions::default()
        };
        let target = registry.target.clone();
        let client = client.clone();
        eprintln!(
            "upload: {crates} crates, {} ms per request, -j {j}…",
            latency.as_millis()
        );
        // `upload_on` blocks its calling thread until the upload ends: call
        // it from a thread of its own so that a hang is bounded by `limit`.
        let (tx, rx) = std::sync::mpsc::channel();
        let started = Instant::now();
        std::thread::spawn(move || {
            let report = upload_on(&client, &target, &packaged, &opts, |_| {});
            let _ = tx.send(report);
        });
        let report = rx
            .recv_timeout(limit)
            .with_context(|| format!("upload at -j {j} did not finish within {limit:?}"))?;
        let seconds = started.elapsed().as_secs_f64();
        if !report.is_success() {
            bail!("upload at -j {j} failed: {report:?}");
        }
        let sequential = latency.as_secs_f64() * crates as f64;
        let slots = crates.div_ceil(j.max(1)) as f64;
        runs.push(Run {
            jobs: j,
            seconds,
            ratio_to_sequential: seconds / sequential,
            round_trips_per_slot: seconds / (slots * latency.as_secs_f64()),
        });
        drop(registry);
    }
    Ok(Report {
        crates,
        latency_ms: latency.as_millis() as u64,
        runs,
    })
}

/// The registry on a runtime of its own; stopped when dropped.
struct Registry {
    target: RegistryTarget,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Registry {
    fn start(dir: &Path, latency: Duration) -> anyhow::Result<Self> {
        let store = SqliteStore::open(dir.join("convoy.sqlite"))?;
        let token = store
            .create_token_blocking(NewToken {
                login: "bench".into(),
                name: "bench".into(),
                scopes: Vec::new(),
                crates: Vec::new(),
                expires_at: None,
            })?
            .expose()
            .to_owned();
        let blobs = FsBlobStore::open(dir.join("crates"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let settings = Settings {
            public_url: format!("http://{addr}"),
            auth_required: false,
            limits: Limits::default(),
            publish_rate: None,
            companions: true,
        };
        let app = App::new(Arc::new(store), Arc::new(blobs), settings);
        let delay = axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                tokio::time::sleep(latency).await;
                next.run(req).await
            },
        );
        let router = convoy_registry::router(app).layer(delay);
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(convoy_registry::serve(listener, router, async {
            let _ = stop.await;
        }));
        Ok(Self {
            target: RegistryTarget {
                name: Some("bench".into()),
                index: format!("sparse+http://{addr}/index/"),
                token: Some(token),
                http: Default::default(),
            },
            runtime: Some(runtime),
            shutdown: Some(shutdown),
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// A real minimal `.crate` and its packaged form, as the tests build them.
fn krate(dir: &Path, name: &str, version: &str) -> anyhow::Result<PackagedCrate> {
    let bytes = TarballBuilder::minimal(name, version).build();
    let cksum: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("{name}-{version}.crate"));
    std::fs::write(&path, &bytes)?;
    let metadata: NewCrate = serde_json::from_value(serde_json::json!({
        "name": name,
        "vers": version,
        "description": format!("upload benchmark crate {name}"),
        "license": "MIT",
        "deps": [],
    }))?;
    Ok(PackagedCrate {
        name: name.into(),
        version: version.into(),
        path,
        index_line: metadata.to_index_package(cksum.clone(), None),
        cksum,
        metadata,
        local_deps: Vec::new(),
        changes: Vec::new(),
    })
}
