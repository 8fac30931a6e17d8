//! Reading a sparse index for synchronous callers (planning, `changed`,
//! `version`, the release's reuse of published files): a thin facade over
//! [`AsyncSparseIndex`] that runs each read on the caller's runtime, so
//! that the process keeps one runtime and one HTTP stack. The HTTP rules
//! live in [`crate::http`].

use convoy_protocol::index::{IndexPackage, RegistryConfig};
use tokio::runtime::Handle;

use crate::http::HttpConfig;
use crate::{AsyncSparseIndex, AsyncSparseOptions, Fetch, IndexError, RegistryTarget};

/// A sparse index reader for one registry, for synchronous code. It fetches
/// `config.json` once, lazily, to learn whether reads need the token.
///
/// Every read is a `block_on` on the runtime it was made with, so it must
/// not be called from one of that runtime's tasks (tokio panics there), and
/// the runtime must be a multi-thread one: a current-thread runtime's I/O
/// only runs inside its own `Runtime::block_on`. Reads from several threads
/// at once are fine.
///
/// Unlike [`AsyncSparseIndex`], it always reads the network: whether
/// `--offline` allows that is its callers' decision (the plan reports the
/// registry as unchecked instead of reading it).
#[derive(Debug)]
pub struct SparseIndex {
    inner: AsyncSparseIndex,
    runtime: Handle,
}

impl SparseIndex {
    /// A reader for `index` (`sparse+http(s)://…/`), sending `token` only
    /// where the registry asks for one, reading on `runtime`.
    /// Uses cargo's default network settings.
    pub fn new(runtime: &Handle, index: &str, token: Option<String>) -> Result<Self, IndexError> {
        Self::with_http(runtime, index, token, &HttpConfig::default())
    }

    /// A reader for `target`, with its token and network settings.
    pub fn for_target(runtime: &Handle, target: &RegistryTarget) -> Result<Self, IndexError> {
        Self::with_http(runtime, &target.index, target.token.clone(), &target.http)
    }

    /// A reader whose client is built from `http`: its proxies, trust,
    /// user agent and `net.retry`. A request may take `http.timeout` to
    /// connect, go silent for `http.timeout`, and take four times that in
    /// all.
    pub fn with_http(
        runtime: &Handle,
        index: &str,
        token: Option<String>,
        http: &HttpConfig,
    ) -> Result<Self, IndexError> {
        let options = AsyncSparseOptions {
            retry: http.retry_policy(),
            timeout: http.timeout.saturating_mul(4),
            no_cache: false,
        };
        let inner = AsyncSparseIndex::with_http(index, token, http, options)?.online();
        Ok(Self {
            inner,
            runtime: runtime.clone(),
        })
    }

    /// The index's `config.json`.
    pub fn config(&self) -> Result<&RegistryConfig, IndexError> {
        self.runtime.block_on(self.inner.config())
    }

    /// Every version of `name` in the index, or `None` when the registry has
    /// no such crate (404, 410 or 451, as cargo reads them). Lines that do not
    /// parse are skipped, as cargo skips them.
    pub fn versions(&self, name: &str) -> Result<Option<Vec<IndexPackage>>, IndexError> {
        self.runtime
            .block_on(self.inner.versions(name, Fetch::Retrying))
    }

    /// Downloads the `.crate` of `pkg` through the `dl` template of
    /// `config.json`. The bytes are not checked against `pkg.cksum`;
    /// callers that need the indexed file check it (or use
    /// [`AsyncSparseIndex::download`], which does).
    pub fn download(&self, pkg: &IndexPackage) -> Result<Vec<u8>, IndexError> {
        self.runtime
            .block_on(
                self.inner
                    .download_unchecked(&pkg.name, &pkg.vers, &pkg.cksum),
            )
            .map(|(_, bytes)| Vec::from(bytes))
    }

    /// The owners' logins of `name` from the Web API
    /// (`GET {api}/api/v1/crates/{name}/owners`, what `cargo owner --list`
    /// reads), with the token; `None` when the registry has no Web API or
    /// no such crate.
    pub fn owners(&self, name: &str) -> Result<Option<Vec<String>>, IndexError> {
        self.runtime.block_on(self.inner.owners(name))
    }
}
