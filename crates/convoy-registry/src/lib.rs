//! The Convoy registry: a Cargo registry that stock cargo uses for
//! everything a private registry is used for.
//!
//! It speaks the sparse index under `/index/` and the Cargo Web API under
//! `/api/v1/`. All state lives in a [`Store`] and a [`BlobStore`], so the
//! server itself holds nothing that a restart could lose.
//!
//! [`router`] builds the whole application; tests drive it directly or
//! through a real socket, and `cargo convoy serve` binds it with
//! [`serve`].

mod auth;
mod error;
mod routes;
mod server;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use convoy_protocol::limits::IndexLimits;
use convoy_store::{BlobStore, Store};
use tokio::net::TcpListener;

/// Publish rate limits live in the store, so every node shares them.
pub use convoy_store::RateLimit;
pub use error::ApiError;
pub use server::{ConnectionLimits, serve_with};

/// Size limits applied to uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `.crate` file, in bytes (crates.io: 10 MiB).
    pub max_upload_bytes: u64,
    /// Largest unpacked crate, in bytes (crates.io: 512 MiB).
    pub max_unpacked_bytes: u64,
    /// Largest JSON metadata, in bytes (crates.io: 1 MiB).
    pub max_metadata_bytes: u64,
    /// Longest path inside a `.crate`, in bytes.
    pub max_path_bytes: u64,
    /// Largest PAX header of one `.crate` entry, in bytes.
    pub max_pax_bytes: u64,
    /// How much one version may add to the index.
    pub index: IndexLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_upload_bytes: 10 * 1024 * 1024,
            max_unpacked_bytes: 512 * 1024 * 1024,
            max_metadata_bytes: 1024 * 1024,
            max_path_bytes: convoy_tarball::TarballLimits::default().max_path_bytes,
            max_pax_bytes: convoy_tarball::TarballLimits::default().max_pax_bytes,
            index: IndexLimits::DEFAULT,
        }
    }
}

/// How the registry presents itself.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Root URL clients use, without a trailing slash, e.g.
    /// `http://127.0.0.1:8000`. `config.json` is built from it.
    pub public_url: String,
    /// Whether reads need a token too.
    pub auth_required: bool,
    /// Upload limits.
    pub limits: Limits,
    /// Publishes per user; `None` means unlimited.
    pub publish_rate: Option<RateLimit>,
    /// Whether the companion extension is on (`docs/SUBLIBRARIES.md`):
    /// advertised in `config.json`, companions hidden and owned with their
    /// parent. Off, a companion is an ordinary crate.
    pub companions: bool,
}

/// Everything a handler needs; cloned per request, so the fields are shared.
#[derive(Clone)]
pub struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) settings: Arc<Settings>,
    /// What the web UI's install snippets call this registry.
    pub(crate) registry_name: Arc<str>,
}

impl App {
    /// Assembles an application over the given stores.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>, settings: Settings) -> Self {
        Self {
            store,
            blobs,
            settings: Arc::new(settings),
            registry_name: Arc::from(DEFAULT_REGISTRY_NAME),
        }
    }

    /// Sets the registry name the web UI's install snippets use
    /// ([`DEFAULT_REGISTRY_NAME`] otherwise).
    pub fn with_registry_name(mut self, name: &str) -> Self {
        self.registry_name = Arc::from(name);
        self
    }
}

/// How often the server's housekeeping runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    /// How often expired stages are discarded.
    pub expire_every: Duration,
    /// How often buffered download counts are written.
    pub flush_every: Duration,
    /// How often orphan blobs are swept; `None` to never sweep.
    pub sweep_every: Option<Duration>,
    /// How old an unreferenced blob must be before a sweep deletes it:
    /// longer than any request can take, see
    /// [`convoy_store::sweep_orphans`].
    pub sweep_grace: Duration,
}

impl Default for Maintenance {
    /// Counts every second, stages every minute; blobs every hour, once an
    /// hour old.
    fn default() -> Self {
        Self {
            expire_every: Duration::from_secs(60),
            flush_every: Duration::from_secs(1),
            sweep_every: Some(Duration::from_secs(3600)),
            sweep_grace: Duration::from_secs(3600),
        }
    }
}
/// The name the web UI suggests for this registry in cargo's config.
pub const DEFAULT_REGISTRY_NAME: &str = "convoy";

impl App {
    /// Runs the housekeeping in `schedule` until the handle is aborted:
    /// expired stages are discarded so reservations of abandoned releases
    /// do not outlive their expiry by long, buffered download counts are
    /// written, and orphan blobs are swept.
    /// Needs a Tokio runtime.
    pub fn spawn_maintenance(&self, schedule: Maintenance) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(&self.store);
        let blobs = Arc::clone(&self.blobs);
        tokio::spawn(async move {
            let mut expire = tokio::time::interval(schedule.expire_every);
            let mut flush = tokio::time::interval(schedule.flush_every);
            let mut sweep =
                tokio::time::interval(schedule.sweep_every.unwrap_or(Duration::MAX / 4));
            loop {
                tokio::select! {
                    _ = flush.tick() => {
                        if let Err(e) = store.flush().await {
                            tracing::warn!(error = %e, "could not write download counts");
                        }
                    }
                    _ = expire.tick() => match store.expire_stages().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(stages = n, "expired stages discarded"),
                        Err(e) => tracing::warn!(error = %e, "could not expire stages"),
                    },
                    _ = sweep.tick(), if schedule.sweep_every.is_some() => {
                        match convoy_store::sweep_orphans(&*store, &*blobs, schedule.sweep_grace).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(blobs = n, "orphan blobs deleted"),
                            Err(e) => tracing::warn!(error = %e, "could not sweep orphan blobs"),
                        }
                    }
                }
            }
        })
    }
}

/// The whole HTTP surface: cargo's protocol and the web UI at the root.
pub fn router(app: App) -> Router {
    let web = convoy_web::router(
        Arc::clone(&app.store),
        convoy_web::WebConfig {
            public_url: app.settings.public_url.clone(),
            auth_required: app.settings.auth_required,
            registry_name: app.registry_name.to_string(),
        },
    );
    routes::router(app).merge(web)
}

/// [`serve_with`] the default [`ConnectionLimits`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, ConnectionLimits::DEFAULT, shutdown).await
}
