//! Reading a sparse index over HTTP.

use std::cell::OnceCell;
use std::time::Duration;

use convoy_protocol::index::{IndexPackage, RegistryConfig, index_path};
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};

/// How many times a 429 or 5xx answer is retried, as cargo's `net.retry`.
const RETRIES: u32 = 3;

/// Why the index could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The URL is not `sparse+http(s)://…`.
    #[error("index `{url}` is not a sparse index, expected `sparse+http(s)://…/`")]
    NotSparse {
        /// The URL given.
        url: String,
    },
    /// The request did not get an answer (DNS, connection, timeout, TLS).
    #[error("failed to fetch `{url}`")]
    Network {
        /// The URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry wants a token and none (or a rejected one) was sent.
    #[error(
        "registry at `{url}` requires authentication, pass `--token` or configure one for the registry"
    )]
    Unauthorized {
        /// The URL.
        url: String,
    },
    /// Any other unexpected status.
    #[error("failed to fetch `{url}`, the server answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// `config.json` is not what cargo expects.
    #[error("failed to parse `{url}`")]
    Config {
        /// The URL.
        url: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// A sparse index reader for one registry. It fetches `config.json` once,
/// lazily, to learn whether reads need the token.
#[derive(Debug)]
pub struct SparseIndex {
    base: String,
    token: Option<String>,
    client: Client,
    config: OnceCell<(RegistryConfig, bool)>,
}

impl SparseIndex {
    /// A reader for `index` (`sparse+http(s)://…/`), sending `token` only
    /// where the registry asks for one.
    pub fn new(index: &str, token: Option<String>) -> Result<Self, IndexError> {
        let Some(base) = index.strip_prefix("sparse+") else {
            return Err(IndexError::NotSparse {
                url: index.to_owned(),
            });
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(IndexError::NotSparse {
                url: index.to_owned(),
            });
        }
        let mut base = base.to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        let client = Client::builder()
            .user_agent(concat!("convoy/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| IndexError::Network {
                url: base.clone(),
                source,
            })?;
        Ok(Self {
            base,
            token,
            client,
            config: OnceCell::new(),
        })
    }

    /// The index's `config.json`.
    pub fn config(&self) -> Result<&RegistryConfig, IndexError> {
        Ok(&self.config_and_auth()?.0)
    }

    fn config_and_auth(&self) -> Result<&(RegistryConfig, bool), IndexError> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let url = format!("{}{}", self.base, RegistryConfig::NAME);
        let mut resp = self.get(&url, false)?;
        let mut sent_token = false;
        if resp.status() == StatusCode::UNAUTHORIZED && self.token.is_some() {
            resp = self.get(&url, true)?;
            sent_token = true;
        }
        let body = Self::body(&url, resp)?.ok_or_else(|| IndexError::Status {
            url: url.clone(),
            status: 404,
        })?;
        let config: RegistryConfig =
            serde_json::from_slice(&body).map_err(|source| IndexError::Config { url, source })?;
        let auth = config.auth_required || sent_token;
        Ok(self.config.get_or_init(|| (config, auth)))
    }

    /// Every version of `name` in the index, or `None` when the registry has
    /// no such crate (404, 410 or 451, as cargo reads them). Lines that do not
    /// parse are skipped, as cargo skips them.
    pub fn versions(&self, name: &str) -> Result<Option<Vec<IndexPackage>>, IndexError> {
        let (_, auth) = self.config_and_auth()?;
        let url = format!("{}{}", self.base, index_path(name));
        let resp = self.get(&url, *auth)?;
        let Some(body) = Self::body(&url, resp)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&body);
        Ok(Some(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .filter_map(|l| serde_json::from_str::<IndexPackage>(l).ok())
                .collect(),
        ))
    }

    /// Downloads the `.crate` of `pkg` through the `dl` template of
    /// `config.json`.
    pub fn download(&self, pkg: &IndexPackage) -> Result<Vec<u8>, IndexError> {
        let (config, auth) = self.config_and_auth()?;
        let url = config.download_url(&pkg.name, &pkg.vers, &pkg.cksum);
        let resp = self.get(&url, *auth)?;
        Self::body(&url, resp)?.ok_or(IndexError::Status { url, status: 404 })
    }

    /// One GET with cargo's retries on 429 and 5xx.
    fn get(&self, url: &str, with_token: bool) -> Result<Response, IndexError> {
        let mut attempt = 0;
        loop {
            let mut req = self
                .client
                .get(url)
                .header("cargo-protocol", "version=1")
                .header("accept", "text/plain");
            if with_token && let Some(token) = &self.token {
                req = req.header("authorization", token);
            }
            let resp = req.send().map_err(|source| IndexError::Network {
                url: url.to_owned(),
                source,
            })?;
            let status = resp.status();
            let transient = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if !transient || attempt >= RETRIES {
                return Ok(resp);
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(250 * u64::from(attempt)));
        }
    }

    /// The body of a 200; `None` for "no such crate"; an error otherwise.
    fn body(url: &str, resp: Response) -> Result<Option<Vec<u8>>, IndexError> {
        match resp.status().as_u16() {
            200 => resp
                .bytes()
                .map(|b| Some(b.to_vec()))
                .map_err(|source| IndexError::Network {
                    url: url.to_owned(),
                    source,
                }),
            404 | 410 | 451 => Ok(None),
            401 | 403 => Err(IndexError::Unauthorized {
                url: url.to_owned(),
            }),
            status => Err(IndexError::Status {
                url: url.to_owned(),
                status,
            }),
        }
    }
}
