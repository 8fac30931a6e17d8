//! The overlay registry: the packaged local crates layered over the target
//! registry, served as a sparse index on 127.0.0.1.
//!
//! Cargo reaches it only through source replacement
//! ([`Overlay::cargo_config_args`]), so every package it serves keeps the
//! target registry's identity in lock files and package ids, while the bytes
//! of local versions are the `.crate` files that will be uploaded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use convoy_index_client::{
    AsyncSparseIndex, AsyncSparseOptions, Fetch, HttpConfig, IndexError, RegistryTarget, describe,
};
use convoy_package::PackagedCrate;
use convoy_protocol::crates_io::INDEX as CRATES_IO_INDEX;
use convoy_protocol::index::{RegistryConfig, index_path};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::VerifyError;

/// Timeout of one upstream request; downloads of large crates need more
/// than an index read.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// How long dropping an overlay waits for the server to finish the requests
/// it is answering. By then cargo has exited, so the wait is normally
/// nothing; a request still waiting on upstream is cut off after it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The source name cargo knows the overlay by. It shows up in cargo's
/// `Updating`/`Downloaded` lines, never in lock files.
pub const OVERLAY_SOURCE: &str = "convoy-overlay";

/// The source name under which an alternative target registry is declared
/// so that it can be replaced.
pub const TARGET_SOURCE: &str = "convoy-target";

/// The registry the release goes to: where the overlay reads everything that
/// is not a local package.
#[derive(Clone)]
pub struct Upstream {
    /// The target's index URL exactly as the packaged manifests spell it
    /// (`registry-index = "…"`), e.g. `sparse+http://127.0.0.1:8000/index/`.
    /// For crates.io, [`CRATES_IO_INDEX`].
    pub index_url: String,
    /// Token for registries that require authentication for reads.
    pub token: Option<String>,
    /// The network settings (cargo's `[http]`) the overlay's upstream reads
    /// use, so that it reaches the registry wherever cargo does.
    pub http: HttpConfig,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token, even in debug logs.
        f.debug_struct("Upstream")
            .field("index_url", &self.index_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("http", &self.http)
            .finish()
    }
}

impl From<&RegistryTarget> for Upstream {
    fn from(target: &RegistryTarget) -> Self {
        Self {
            index_url: target.index.clone(),
            token: target.token.clone(),
            http: target.http.clone(),
        }
    }
}

impl Upstream {
    /// An upstream reached with cargo's default network settings.
    pub fn new(index_url: impl Into<String>, token: Option<String>) -> Self {
        Self {
            index_url: index_url.into(),
            token,
            http: HttpConfig::default(),
        }
    }

    /// Whether the target is crates.io, whose source cargo calls `crates-io`
    /// and records as `registry+https://github.com/rust-lang/crates.io-index`.
    pub fn is_crates_io(&self) -> bool {
        convoy_protocol::crates_io::is_crates_io(&self.index_url)
    }

    /// The sparse index to read: crates.io's, whichever way it is spelt.
    fn sparse_url(&self) -> &str {
        if self.is_crates_io() {
            CRATES_IO_INDEX
        } else {
            &self.index_url
        }
    }

    /// A reader of this registry with cargo's rules.
    fn reader(&self) -> Result<AsyncSparseIndex, VerifyError> {
        let options = AsyncSparseOptions {
            retry: self.http.retry_policy(),
            timeout: UPSTREAM_TIMEOUT.max(self.http.timeout),
            ..AsyncSparseOptions::default()
        };
        AsyncSparseIndex::with_http(self.sparse_url(), self.token.clone(), &self.http, options)
            .map_err(|e| match e {
                IndexError::NotSparse { .. } => VerifyError::NotSparse {
                    url: self.index_url.clone(),
                },
                other => VerifyError::OverlayStart {
                    source: std::io::Error::other(other),
                },
            })
    }
}

/// A running overlay registry, served by a task on the caller's runtime.
/// Dropping it stops the server and waits, a bounded time, until it has
/// let go of its port, so that an overlay started next for the same
/// packages gets the same URL.
pub struct Overlay {
    index_url: String,
    upstream: Upstream,
    /// The registry whose source cargo replaces by the overlay; its index
    /// URL is what lock files and packaged manifests name. The same as
    /// `upstream` except with [`Overlay::start_with_identity`].
    identity: Upstream,
    state: Arc<OverlayState>,
    /// Asks the server to stop accepting and finish what it is answering.
    shutdown: Option<oneshot::Sender<()>>,
    /// Disconnects when the server task ends, however it ends: a plain
    /// `std` channel, so that `drop` can wait on it from a thread outside
    /// the runtime without a runtime of its own. In a `Mutex` only so that
    /// the overlay is `Sync` (cargo runs share it); `drop` has it alone.
    stopped: Option<Mutex<mpsc::Receiver<()>>>,
    /// The server task, aborted when it overstays [`SHUTDOWN_GRACE`].
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("index_url", &self.index_url)
            .field("upstream", &self.upstream)
            .field("identity", &self.identity.index_url)
            .finish_non_exhaustive()
    }
}

impl Overlay {
    /// Starts the overlay for `local` over `upstream` on 127.0.0.1 with an
    /// ephemeral port, serving from a task spawned on `runtime` (the CLI's
    /// one runtime).
    ///
    /// `runtime` must be a multi-thread runtime with I/O and time enabled,
    /// and the caller must not be one of its tasks: callers are synchronous
    /// threads that then block in `cargo` (`std::process::Command`), and
    /// cargo's requests are answered while they wait only because the
    /// runtime's worker threads run on their own. A current-thread runtime
    /// is refused ([`VerifyError::CurrentThreadRuntime`]): it would only
    /// run inside a `block_on` nobody is in.
    ///
    /// The URL path contains a key derived from the local packages (names,
    /// versions, checksums and index lines). Cargo caches downloaded
    /// `.crate` files and their unpacked sources per source URL and never
    /// re-checks a cached file's checksum, so a URL that could be reused
    /// with different bytes for the same version would make cargo build
    /// stale sources. With the key in the URL, the same URL always means the
    /// same local bytes.
    ///
    /// The port is derived from the key too ([`preferred_port`]), so that
    /// a rerun with the same packages gets the same URL: cargo then finds
    /// its extracted sources and, since their paths are part of its
    /// fingerprints, reuses every build of the previous run. When that port
    /// is taken, any free one is used, which costs the reuse and nothing
    /// else.
    pub fn start(
        runtime: &Handle,
        upstream: Upstream,
        local: &[PackagedCrate],
    ) -> Result<Self, VerifyError> {
        let identity = upstream.index_url.clone();
        Self::start_with_identity(runtime, &identity, upstream, local)
    }

    /// [`Overlay::start`], reading from `upstream` but standing in for the
    /// registry whose index URL is `identity`.
    ///
    /// This is how a staged release is verified: `upstream` is the stage's
    /// view of the index (`…/stages/{id}/index/` with the stage token),
    /// which shows the staged versions over the published ones, while the
    /// packaged manifests and lock files name the target registry. Cargo
    /// must therefore replace the *target's* source, not the stage's, so
    /// that what it resolves and records stays valid after the commit.
    pub fn start_with_identity(
        runtime: &Handle,
        identity: &str,
        upstream: Upstream,
        local: &[PackagedCrate],
    ) -> Result<Self, VerifyError> {
        if runtime.runtime_flavor() == RuntimeFlavor::CurrentThread {
            return Err(VerifyError::CurrentThreadRuntime);
        }
        let reader = upstream.reader()?;
        let identity = Upstream {
            index_url: identity.to_owned(),
            token: None,
            http: upstream.http.clone(),
        };
        let key = overlay_key(&upstream, &identity, local);
        let mut by_path: HashMap<String, Vec<LocalVersion>> = HashMap::new();
        let mut files = HashMap::new();
        for pkg in local {
            let line =
                serde_json::to_vec(&pkg.index_line).map_err(|source| VerifyError::IndexLine {
                    name: pkg.name.clone(),
                    version: pkg.version.clone(),
                    source,
                })?;
            by_path
                .entry(index_path(&pkg.name))
                .or_default()
                .push(LocalVersion {
                    vers: pkg.version.clone(),
                    line,
                });
            files.insert(
                (pkg.name.to_ascii_lowercase(), pkg.version.clone()),
                pkg.path.clone(),
            );
        }

        let std_listener = bind(&key)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| VerifyError::OverlayStart { source })?;
        let addr = std_listener
            .local_addr()
            .map_err(|source| VerifyError::OverlayStart { source })?;
        let root = format!("http://{addr}/{key}");
        let state = Arc::new(OverlayState {
            dl: format!("{root}/dl"),
            local_index: by_path,
            local_files: files,
            upstream: UpstreamClient {
                reader,
                index: Mutex::new(HashMap::new()),
                crates: Mutex::new(HashMap::new()),
                disk: OnceLock::new(),
            },
            errors: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route(&format!("/{key}/index/config.json"), get(config_json))
            .route(&format!("/{key}/index/{{*path}}"), get(index_file))
            .route(
                &format!("/{key}/dl/{{crate}}/{{version}}/download"),
                get(download),
            )
            .with_state(Arc::clone(&state));
        let (tx, rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = mpsc::sync_channel::<()>(1);
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)
                .map_err(|source| VerifyError::OverlayStart { source })?
        };
        let server = runtime.spawn(async move {
            // Dropped with the task, whether it returns or is aborted.
            let _stopped = stopped_tx;
            let shutdown = async {
                let _ = rx.await;
            };
            // A serve error after startup shows up as failed cargo
            // requests, which name the overlay URL.
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(Self {
            index_url: format!("sparse+{root}/index/"),
            upstream,
            identity,
            state,
            shutdown: Some(tx),
            stopped: Some(Mutex::new(stopped)),
            server: Some(server),
        })
    }

    /// `sparse+http://127.0.0.1:PORT/KEY/index/`.
    pub fn index_url(&self) -> String {
        self.index_url.clone()
    }

    /// The registry the overlay reads what is not local from.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The target registry the overlay stands in for: the source cargo
    /// replaces, and the index URL lock files record. Its token is never
    /// set; reads go to [`Overlay::upstream`].
    pub fn identity(&self) -> &Upstream {
        &self.identity
    }

    /// `--config` arguments that replace the target registry's source with
    /// the overlay, so that packages keep the target's identity:
    ///
    /// The replaced source is [`Overlay::identity`].
    ///
    /// - crates.io: `source.crates-io.replace-with = "convoy-overlay"`;
    /// - any other registry: `source.convoy-target.registry = "<index>"`
    ///   and `source.convoy-target.replace-with = "convoy-overlay"`;
    /// - and `source.convoy-overlay.registry = "<overlay index>"`.
    pub fn cargo_config_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.identity.is_crates_io() {
            args.push(format!("source.crates-io.replace-with={OVERLAY_SOURCE:?}"));
        } else {
            args.push(format!(
                "source.{TARGET_SOURCE}.registry={}",
                toml_string(&self.identity.index_url)
            ));
            args.push(format!(
                "source.{TARGET_SOURCE}.replace-with={OVERLAY_SOURCE:?}"
            ));
        }
        args.push(format!(
            "source.{OVERLAY_SOURCE}.registry={}",
            toml_string(&self.index_url)
        ));
        if self.upstream.http.offline {
            // Offline, Convoy's cargo runs get `CARGO_NET_OFFLINE`; the
            // overlay is local and answers from cargo's cache, so cargo may
            // read it.
            args.push("net.offline=false".to_owned());
        }
        args.into_iter()
            .flat_map(|a| ["--config".to_owned(), a])
            .collect()
    }

    /// Keeps the `.crate` files downloaded from upstream in `dir`, named by
    /// their sha256, and reads them from there before asking upstream:
    /// the index's checksum names the bytes, so a hit is checked against it
    /// and never stale. Reruns and other overlays over the same registry
    /// then download nothing again. Failures to write the cache are
    /// ignored; it only saves time.
    pub fn cache_downloads_in(&self, dir: impl Into<PathBuf>) {
        let _ = self.state.upstream.disk.set(dir.into());
    }

    /// Upstream failures the overlay met so far (cargo only sees a 502), so
    /// that a verification error can say what really went wrong.
    pub fn upstream_errors(&self) -> Vec<String> {
        self.state
            .errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }
}

impl Drop for Overlay {
    /// Stops the server gracefully, and past [`SHUTDOWN_GRACE`] by
    /// aborting its task. Never blocks for long and needs no runtime: it
    /// waits on a `std` channel that the task drops as it ends (at once if
    /// the runtime is already gone). Dropped on a worker thread of the
    /// runtime, it holds that worker for at most the grace period.
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(Ok(stopped)) = self.stopped.take().map(Mutex::into_inner) else {
            return;
        };
        // Nothing is ever sent: the task ending disconnects the channel.
        if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(SHUTDOWN_GRACE)
            && let Some(server) = self.server.take()
        {
            server.abort();
            // The abort takes effect on a worker; wait, briefly, for the
            // listener to be dropped with the task.
            let _ = stopped.recv_timeout(SHUTDOWN_GRACE);
        }
    }
}

/// A TOML basic string; JSON string escaping is a subset of it.
pub(crate) fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Ports tried first lie in 20000..32000, below Linux's ephemeral range
/// (32768 and up), so that they rarely collide with outgoing connections.
const PREFERRED_PORTS: (u16, u16) = (20000, 12000);

/// The port an overlay with `key` tries first: a function of the key, so
/// the same packages get the same URL from one run to the next.
fn preferred_port(key: &str) -> u16 {
    let n = key
        .get(..4)
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    PREFERRED_PORTS.0 + n % PREFERRED_PORTS.1
}

/// Binds 127.0.0.1 on the key's preferred port, else on any free port.
fn bind(key: &str) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(("127.0.0.1", preferred_port(key)))
        .or_else(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
}

/// A short key naming the local contents; see [`Overlay::start`].
fn overlay_key(upstream: &Upstream, identity: &Upstream, local: &[PackagedCrate]) -> String {
    let mut parts: Vec<String> = local
        .iter()
        .map(|p| {
            let line = serde_json::to_string(&p.index_line).unwrap_or_default();
            format!("{}\0{}\0{}\0{line}", p.name, p.version, p.cksum)
        })
        .collect();
    parts.sort();
    let mut hasher = Sha256::new();
    hasher.update(upstream.index_url.as_bytes());
    if identity.index_url != upstream.index_url {
        // Kept out of the key when equal, so plain overlays keep their URLs.
        hasher.update(b"\0");
        hasher.update(identity.index_url.as_bytes());
    }
    for part in &parts {
        hasher.update(b"\n");
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

struct LocalVersion {
    vers: String,
    line: Vec<u8>,
}

struct OverlayState {
    /// The `dl` value of the overlay's `config.json`.
    dl: String,
    /// Index path → the local versions of that crate.
    local_index: HashMap<String, Vec<LocalVersion>>,
    /// (lower-case name, version) → `.crate` file.
    local_files: HashMap<(String, String), PathBuf>,
    upstream: UpstreamClient,
    errors: Mutex<Vec<String>>,
}

impl OverlayState {
    fn record(&self, message: String) {
        if let Ok(mut errors) = self.errors.lock()
            && !errors.contains(&message)
        {
            errors.push(message);
        }
    }
}

/// An answer the overlay could not get from upstream.
fn bad_gateway(state: &OverlayState, message: String) -> Response {
    state.record(message.clone());
    (StatusCode::BAD_GATEWAY, message).into_response()
}

/// `GET /KEY/index/config.json`: downloads come back to the overlay.
async fn config_json(State(state): State<Arc<OverlayState>>) -> Response {
    let config = RegistryConfig {
        dl: state.dl.clone(),
        api: None,
        auth_required: false,
        convoy_staging: None,
        convoy_companions: None,
    };
    axum::Json(config).into_response()
}

/// `GET /KEY/index/{path}`: upstream lines, minus versions that exist
/// locally, then the local lines.
async fn index_file(State(state): State<Arc<OverlayState>>, Path(path): Path<String>) -> Response {
    let path = path.to_ascii_lowercase();
    // Cargo asks for `index_path(name)`; anything else names no crate.
    let name = path.rsplit('/').next().unwrap_or_default();
    if index_path(name) != path {
        return StatusCode::NOT_FOUND.into_response();
    }
    let upstream = match state.upstream.index_file(name).await {
        Ok(file) => file,
        Err(message) => return bad_gateway(&state, message),
    };
    let Some(local) = state.local_index.get(&path) else {
        return match upstream {
            Some(body) => text(body),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    };
    let mut out = Vec::new();
    if let Some(body) = upstream {
        for line in body.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let shadowed = serde_json::from_slice::<VersOnly>(line)
                .is_ok_and(|l| local.iter().any(|v| same_version(&v.vers, &l.vers)));
            if !shadowed {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
    }
    for v in local {
        out.extend_from_slice(&v.line);
        out.push(b'\n');
    }
    text(Bytes::from(out))
}

/// `GET /KEY/dl/{crate}/{version}/download`: local bytes from disk, anything
/// else from upstream.
async fn download(
    State(state): State<Arc<OverlayState>>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    if let Some(path) = state
        .local_files
        .get(&(name.to_ascii_lowercase(), version.clone()))
    {
        return match tokio::fs::read(path).await {
            Ok(bytes) => crate_body(Bytes::from(bytes)),
            Err(e) => {
                let message = format!("failed to read `{}`: {e}", path.display());
                state.record(message.clone());
                (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
            }
        };
    }
    match state.upstream.download(&name, &version).await {
        Ok(Some(bytes)) => crate_body(bytes),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(message) => bad_gateway(&state, message),
    }
}

fn text(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], Body::from(body)).into_response()
}

fn crate_body(body: Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from(body),
    )
        .into_response()
}

/// Versions are the same when they differ at most in build metadata, as
/// registries see them.
fn same_version(a: &str, b: &str) -> bool {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp_precedence(&b).is_eq(),
        _ => a == b,
    }
}

#[derive(Deserialize)]
struct VersOnly {
    vers: String,
}

#[derive(Deserialize)]
struct LineForDownload {
    name: String,
    vers: String,
    cksum: String,
}

/// The target registry, read with cargo's rules and cached for the run:
/// cargo asks for the same files many times while it resolves and builds.
struct UpstreamClient {
    reader: AsyncSparseIndex,
    /// Index path → file (`None`: no such crate).
    index: Mutex<HashMap<String, Option<Bytes>>>,
    /// (name, version) → `.crate` bytes.
    crates: Mutex<HashMap<(String, String), Bytes>>,
    /// The on-disk download cache, by checksum
    /// ([`Overlay::cache_downloads_in`]).
    disk: OnceLock<PathBuf>,
}

impl UpstreamClient {
    /// The index file of `name`, raw, so that lines the overlay does not
    /// shadow reach cargo byte for byte.
    async fn index_file(&self, name: &str) -> Result<Option<Bytes>, String> {
        let path = index_path(name);
        if let Some(hit) = self.index.lock().ok().and_then(|c| c.get(&path).cloned()) {
            return Ok(hit);
        }
        let body = self
            .reader
            .index_file(name, Fetch::Retrying)
            .await
            .map_err(|e| describe(&e))?;
        if let Ok(mut cache) = self.index.lock() {
            cache.insert(path, body.clone());
        }
        Ok(body)
    }

    /// The `.crate` of `name` `version`, checked against the upstream
    /// index's `cksum`; `None` when the index has no such version.
    async fn download(&self, name: &str, version: &str) -> Result<Option<Bytes>, String> {
        let key = (name.to_owned(), version.to_owned());
        if let Some(hit) = self.crates.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(Some(hit));
        }
        let Some(file) = self.index_file(name).await? else {
            return Ok(None);
        };
        let Some(line) = file
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice::<LineForDownload>(l).ok())
            .find(|l| l.vers == version && l.name.eq_ignore_ascii_case(name))
        else {
            return Ok(None);
        };
        let cached = self.disk.get().map(|dir| dir.join(&line.cksum));
        let bytes = match &cached {
            Some(path) => read_checked(path, &line.cksum).await,
            None => None,
        };
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => {
                let bytes = self
                    .reader
                    .download(&line.name, &line.vers, &line.cksum)
                    .await
                    .map_err(|e| describe(&e))?;
                if let Some(path) = &cached {
                    write_cache(path, &bytes).await;
                }
                bytes
            }
        };
        if let Ok(mut cache) = self.crates.lock() {
            cache.insert(key, bytes.clone());
        }
        Ok(Some(bytes))
    }
}

/// The cached file at `path` if its sha256 is `cksum` (lower-case hex).
async fn read_checked(path: &std::path::Path, cksum: &str) -> Option<Bytes> {
    let bytes = tokio::fs::read(path).await.ok()?;
    (hex::encode(Sha256::digest(&bytes)) == cksum.to_ascii_lowercase()).then(|| Bytes::from(bytes))
}

/// Writes a cache entry through a temporary file and a rename, so a reader
/// never sees half a file; errors are ignored (the cache only saves time).
async fn write_cache(path: &std::path::Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if tokio::fs::create_dir_all(dir).await.is_err() {
        return;
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    if tokio::fs::write(&tmp, bytes).await.is_ok() && tokio::fs::rename(&tmp, path).await.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_port_follows_the_key() {
        let (low, span) = PREFERRED_PORTS;
        for key in ["0000aa", "ffffffff", "1234abcd", ""] {
            let port = preferred_port(key);
            assert!((low..low + span).contains(&port), "{key}: {port}");
        }
        assert_eq!(preferred_port("1234abcd"), preferred_port("1234ffff"));
        assert_ne!(preferred_port("1234abcd"), preferred_port("1235abcd"));
    }

    #[test]
    fn versions_compare_without_build_metadata() {
        assert!(same_version("1.0.0", "1.0.0+abc"));
        assert!(!same_version("1.0.0", "1.0.1"));
        assert!(same_version("x", "x"));
    }

    #[test]
    fn identity_is_the_replaced_source_while_reads_go_upstream() {
        let stage = "sparse+http://127.0.0.1:9/stages/stg_x/index/";
        let target = "sparse+http://127.0.0.1:9/index/";
        let upstream = Upstream::new(stage, Some("stage-token".into()));
        let runtime = convoy_test_support::runtime();
        let overlay =
            Overlay::start_with_identity(&runtime, target, upstream, &[]).expect("starts");
        let args = overlay.cargo_config_args().join(" ");
        assert!(
            args.contains(&format!("source.{TARGET_SOURCE}.registry=\"{target}\"")),
            "{args}"
        );
        assert!(!args.contains("stages"), "{args}");
        assert_eq!(overlay.upstream().index_url, stage);
        assert_eq!(overlay.identity().index_url, target);
        assert!(!format!("{overlay:?}").contains("stage-token"));

        let plain = Overlay::start(&runtime, Upstream::new(target, None), &[]).expect("starts");
        assert_eq!(plain.identity().index_url, target);
    }

    #[test]
    fn a_current_thread_runtime_is_refused_and_drop_frees_the_port() {
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let upstream = Upstream::new("sparse+http://127.0.0.1:9/refused/", None);
        assert!(matches!(
            Overlay::start(current.handle(), upstream.clone(), &[]),
            Err(VerifyError::CurrentThreadRuntime)
        ));

        // Dropping stops the server and lets go of the port at once, so
        // that the next overlay for the same packages can have it.
        let runtime = convoy_test_support::runtime();
        let overlay = Overlay::start(&runtime, upstream, &[]).expect("starts");
        let addr = overlay
            .index_url()
            .trim_start_matches("sparse+http://")
            .split('/')
            .next()
            .map(str::to_owned)
            .expect("an address");
        assert!(
            std::net::TcpListener::bind(&addr).is_err(),
            "{addr} is served"
        );
        drop(overlay);
        std::net::TcpListener::bind(&addr).expect("the port is free again");
    }

    #[test]
    fn crates_io_is_recognised_in_both_spellings() {
        for url in [
            CRATES_IO_INDEX,
            "registry+https://github.com/rust-lang/crates.io-index",
        ] {
            let up = Upstream::new(url, None);
            assert!(up.is_crates_io());
            assert_eq!(up.sparse_url(), CRATES_IO_INDEX);
            assert!(up.reader().is_ok());
        }
    }
}
