//! Reading a sparse index over HTTP, async, for the parts of Convoy that
//! keep many reads in flight on one runtime: the verification overlay's
//! upstream reads and the upload stage's skip checks and visibility polls.
//! It is also the engine of the synchronous [`crate::SparseIndex`], which
//! runs these reads on the caller's runtime. The HTTP rules live in
//! [`crate::http`].

use std::time::Duration;

use bytes::Bytes;
use convoy_protocol::index::{IndexPackage, RegistryConfig, index_path};
use reqwest::header::{self, HeaderValue};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::IndexError;
use crate::cache::CargoCache;
use crate::error::ChecksumMismatch;
use crate::http::{
    ACCEPT_TEXT, CARGO_PROTOCOL, HttpConfig, RetryPolicy, classify, is_transient_status, network,
    parse_index_file, retry_after_header, sparse_http_base,
};

/// How an [`AsyncSparseIndex`] talks to its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncSparseOptions {
    /// Retries of transient failures (no answer, 429, 5xx) for every read
    /// made with [`Fetch::Retrying`].
    pub retry: RetryPolicy,
    /// Timeout of one request, body included.
    pub timeout: Duration,
    /// Ask for fresh data past any CDN or proxy cache
    /// (`Cache-Control: no-cache`), on every request. For readers whose
    /// question is "is it there *now*", such as the upload stage's skip
    /// checks and visibility polls.
    pub no_cache: bool,
}

impl Default for AsyncSparseOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::CARGO,
            timeout: Duration::from_secs(30),
            no_cache: false,
        }
    }
}

/// Whether one read retries transient failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fetch {
    /// With the client's [`RetryPolicy`].
    #[default]
    Retrying,
    /// One attempt: for callers that poll, and retry on their own clock.
    Once,
}

/// A final answer: its status, `Retry-After`, and the body of a 200.
struct Reply {
    status: u16,
    retry_after: Option<Duration>,
    body: Option<Bytes>,
}

/// An async sparse index reader for one registry. It fetches `config.json`
/// once, lazily, to learn whether reads need the token: the token is sent
/// only when the config says `auth-required` or after the config answered
/// 401 without it, as cargo does.
pub struct AsyncSparseIndex {
    /// `http(s)://…/`, ending in `/`.
    base: String,
    token: Option<String>,
    client: reqwest::Client,
    options: AsyncSparseOptions,
    /// `--offline`: every read answers from cargo's cache, if it has one.
    offline: Option<Option<CargoCache>>,
    /// `config.json` and whether reads need the token.
    config: OnceCell<(RegistryConfig, bool)>,
}

impl std::fmt::Debug for AsyncSparseIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token, even in debug logs.
        f.debug_struct("AsyncSparseIndex")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl AsyncSparseIndex {
    /// A reader for `index` (`sparse+http(s)://…/`) with cargo's default
    /// network settings. Needs no runtime; its reads do.
    pub fn new(
        index: &str,
        token: Option<String>,
        options: AsyncSparseOptions,
    ) -> Result<Self, IndexError> {
        Self::with_http(index, token, &HttpConfig::default(), options)
    }

    /// A reader for `index` whose client is built from `http` (the
    /// command's cargo configuration). No request may hang past
    /// `options.timeout`, whether connecting or reading.
    pub fn with_http(
        index: &str,
        token: Option<String>,
        http: &HttpConfig,
        options: AsyncSparseOptions,
    ) -> Result<Self, IndexError> {
        let base = sparse_http_base(index)?;
        let client = http.client()?;
        let offline = http.offline.then(|| {
            http.cargo_home
                .as_deref()
                .and_then(|home| CargoCache::find(home, &base))
        });
        Ok(Self {
            base,
            token,
            client,
            options,
            offline,
            config: OnceCell::new(),
        })
    }

    /// The same reader, reading the network even when its [`HttpConfig`]
    /// says `offline`: for [`crate::SparseIndex`], whose callers decide
    /// about `--offline` themselves.
    pub(crate) fn online(mut self) -> Self {
        self.offline = None;
        self
    }

    /// The index's `config.json`, fetched once.
    pub async fn config(&self) -> Result<&RegistryConfig, IndexError> {
        Ok(&self.config_and_auth().await?.0)
    }

    async fn config_and_auth(&self) -> Result<&(RegistryConfig, bool), IndexError> {
        self.config
            .get_or_try_init(|| async {
                let url = format!("{}{}", self.base, RegistryConfig::NAME);
                if let Some(cache) = &self.offline {
                    let body = cache
                        .as_ref()
                        .and_then(CargoCache::config)
                        .ok_or_else(|| IndexError::Offline { url: url.clone() })?;
                    let config: RegistryConfig = serde_json::from_slice(&body)
                        .map_err(|source| IndexError::Config { url, source })?;
                    return Ok((config, false));
                }
                // First without the token, as cargo does, then with it if
                // the registry answers 401.
                let mut reply = self.get(&url, false, Fetch::Retrying).await?;
                let mut sent_token = false;
                if reply.status == 401 && self.token.is_some() {
                    reply = self.get(&url, true, Fetch::Retrying).await?;
                    sent_token = true;
                }
                let body = Self::body(&url, reply)?.ok_or_else(|| IndexError::Status {
                    url: url.clone(),
                    status: 404,
                })?;
                let config: RegistryConfig = serde_json::from_slice(&body)
                    .map_err(|source| IndexError::Config { url, source })?;
                let auth = config.auth_required || sent_token;
                Ok((config, auth))
            })
            .await
    }

    /// The raw index file of `name`, or `None` when the registry has no such
    /// crate (404, 410 or 451, as cargo reads them).
    pub async fn index_file(&self, name: &str, fetch: Fetch) -> Result<Option<Bytes>, IndexError> {
        let (_, auth) = self.config_and_auth().await?;
        if let Some(cache) = &self.offline {
            // What cargo never fetched, it cannot resolve offline either.
            return Ok(cache
                .as_ref()
                .and_then(|c| c.index_file(name))
                .map(Bytes::from));
        }
        let url = format!("{}{}", self.base, index_path(name));
        let reply = self.get(&url, *auth, fetch).await?;
        Self::body(&url, reply)
    }

    /// Every version of `name` in the index, or `None` when the registry has
    /// no such crate. Lines that do not parse are skipped, as cargo skips
    /// them.
    pub async fn versions(
        &self,
        name: &str,
        fetch: Fetch,
    ) -> Result<Option<Vec<IndexPackage>>, IndexError> {
        Ok(self
            .index_file(name, fetch)
            .await?
            .map(|body| parse_index_file(&body)))
    }

    /// Downloads `name` `vers` through the `dl` template of `config.json`,
    /// and checks it against `cksum` (the index line's): bytes that do not
    /// match are not the version the index describes.
    pub async fn download(&self, name: &str, vers: &str, cksum: &str) -> Result<Bytes, IndexError> {
        let (url, bytes) = self.download_unchecked(name, vers, cksum).await?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(cksum) {
            return Err(IndexError::Checksum(Box::new(ChecksumMismatch {
                url,
                actual,
                expected: cksum.to_owned(),
            })));
        }
        Ok(bytes)
    }

    /// The `.crate` of `name` `vers` and its URL, whatever its checksum:
    /// [`crate::SparseIndex::download`] has always left that check to its
    /// callers.
    pub(crate) async fn download_unchecked(
        &self,
        name: &str,
        vers: &str,
        cksum: &str,
    ) -> Result<(String, Bytes), IndexError> {
        let (config, auth) = self.config_and_auth().await?;
        let url = config.download_url(name, vers, cksum);
        let bytes = if let Some(cache) = &self.offline {
            match cache.as_ref().and_then(|c| c.download(name, vers)) {
                Some(bytes) => Bytes::from(bytes),
                None => return Err(IndexError::Offline { url }),
            }
        } else {
            let reply = self.get(&url, *auth, Fetch::Retrying).await?;
            let Some(bytes) = Self::body(&url, reply)? else {
                return Err(IndexError::Status { url, status: 404 });
            };
            bytes
        };
        Ok((url, bytes))
    }

    /// The owners' logins of `name` from the Web API
    /// (`GET {api}/api/v1/crates/{name}/owners`, what `cargo owner --list`
    /// reads), with the token; `None` when the registry has no Web API or
    /// no such crate. Offline, an error: cargo's cache has no owners.
    pub async fn owners(&self, name: &str) -> Result<Option<Vec<String>>, IndexError> {
        let (config, _) = self.config_and_auth().await?;
        let Some(api) = &config.api else {
            return Ok(None);
        };
        let url = format!("{}/api/v1/crates/{name}/owners", api.trim_end_matches('/'));
        if self.offline.is_some() {
            return Err(IndexError::Offline { url });
        }
        let reply = self.get(&url, true, Fetch::Retrying).await?;
        let Some(body) = Self::body(&url, reply)? else {
            return Ok(None);
        };
        let list: convoy_protocol::api::OwnersList =
            serde_json::from_slice(&body).map_err(|source| IndexError::Config { url, source })?;
        Ok(Some(list.users.into_iter().map(|u| u.login).collect()))
    }

    /// One GET, retrying transient failures (no answer, 429, 5xx) as
    /// `fetch` says, honouring `Retry-After`.
    async fn get(&self, url: &str, with_token: bool, fetch: Fetch) -> Result<Reply, IndexError> {
        let policy = self.options.retry;
        let mut attempt = 0;
        loop {
            let result = self.get_once(url, with_token).await;
            let (transient, retry_after) = match &result {
                Ok(reply) => (is_transient_status(reply.status), reply.retry_after),
                Err(e) => (e.is_transient(), None),
            };
            if !transient || fetch == Fetch::Once || attempt >= policy.retries {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(policy.delay(attempt, retry_after)).await;
        }
    }

    async fn get_once(&self, url: &str, with_token: bool) -> Result<Reply, IndexError> {
        let mut req = self
            .client
            .get(url)
            .timeout(self.options.timeout)
            .header(CARGO_PROTOCOL.0, CARGO_PROTOCOL.1)
            .header(ACCEPT_TEXT.0, ACCEPT_TEXT.1);
        if self.options.no_cache {
            req = req
                .header(header::CACHE_CONTROL, "no-cache")
                .header(header::PRAGMA, "no-cache");
        }
        if with_token && let Some(token) = &self.token {
            let mut value =
                HeaderValue::from_str(token.trim()).map_err(|_| IndexError::InvalidToken {
                    url: url.to_owned(),
                })?;
            // So that reqwest/hyper never log it.
            value.set_sensitive(true);
            req = req.header(header::AUTHORIZATION, value);
        }
        let resp = req.send().await.map_err(network(url))?;
        let status = resp.status().as_u16();
        let retry_after = retry_after_header(resp.headers());
        // Only a 200's body is ever used; a body cut short is a failed read.
        let body = if status == 200 {
            Some(resp.bytes().await.map_err(network(url))?)
        } else {
            None
        };
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    /// The body of a 200; `None` for "no such crate"; an error otherwise.
    fn body(url: &str, reply: Reply) -> Result<Option<Bytes>, IndexError> {
        if !classify(url, reply.status)? {
            return Ok(None);
        }
        Ok(Some(reply.body.unwrap_or_default()))
    }
}
