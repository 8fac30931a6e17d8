//! Reading a sparse index over HTTP, blocking, for synchronous callers
//! (planning). The HTTP rules live in [`crate::http`], shared with
//! [`crate::AsyncSparseIndex`].

use std::cell::OnceCell;

use convoy_protocol::index::{IndexPackage, RegistryConfig, index_path};
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};

use crate::IndexError;
use crate::RegistryTarget;
use crate::http::{
    ACCEPT_TEXT, CARGO_PROTOCOL, HttpConfig, RetryPolicy, classify, is_transient_status, network,
    parse_index_file, retry_after_header, sparse_http_base,
};

/// A sparse index reader for one registry. It fetches `config.json` once,
/// lazily, to learn whether reads need the token.
#[derive(Debug)]
pub struct SparseIndex {
    base: String,
    token: Option<String>,
    client: Client,
    retry: RetryPolicy,
    config: OnceCell<(RegistryConfig, bool)>,
}

impl SparseIndex {
    /// A reader for `index` (`sparse+http(s)://…/`), sending `token` only
    /// where the registry asks for one.
    /// Uses cargo's default network settings.
    pub fn new(index: &str, token: Option<String>) -> Result<Self, IndexError> {
        Self::with_http(index, token, &HttpConfig::default())
    }

    /// A reader for `target`, with its token and network settings.
    pub fn for_target(target: &RegistryTarget) -> Result<Self, IndexError> {
        Self::with_http(&target.index, target.token.clone(), &target.http)
    }

    /// A reader whose client is built from `http`.
    pub fn with_http(
        index: &str,
        token: Option<String>,
        http: &HttpConfig,
    ) -> Result<Self, IndexError> {
        let base = sparse_http_base(index)?;
        let client = http.blocking_client()?;
        Ok(Self {
            base,
            token,
            client,
            retry: http.retry_policy(),
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
        Ok(Self::body(&url, resp)?.map(|body| parse_index_file(&body)))
    }

    /// Downloads the `.crate` of `pkg` through the `dl` template of
    /// `config.json`.
    pub fn download(&self, pkg: &IndexPackage) -> Result<Vec<u8>, IndexError> {
        let (config, auth) = self.config_and_auth()?;
        let url = config.download_url(&pkg.name, &pkg.vers, &pkg.cksum);
        let resp = self.get(&url, *auth)?;
        Self::body(&url, resp)?.ok_or(IndexError::Status { url, status: 404 })
    }

    /// The owners' logins of `name` from the Web API
    /// (`GET {api}/api/v1/crates/{name}/owners`, what `cargo owner --list`
    /// reads), with the token; `None` when the registry has no Web API or
    /// no such crate.
    pub fn owners(&self, name: &str) -> Result<Option<Vec<String>>, IndexError> {
        let (config, _) = self.config_and_auth()?;
        let Some(api) = &config.api else {
            return Ok(None);
        };
        let url = format!("{}/api/v1/crates/{name}/owners", api.trim_end_matches('/'));
        let resp = self.get(&url, true)?;
        let Some(body) = Self::body(&url, resp)? else {
            return Ok(None);
        };
        let list: convoy_protocol::api::OwnersList =
            serde_json::from_slice(&body).map_err(|source| IndexError::Config { url, source })?;
        Ok(Some(list.users.into_iter().map(|u| u.login).collect()))
    }

    /// One GET with cargo's retries on 429 and 5xx.
    fn get(&self, url: &str, with_token: bool) -> Result<Response, IndexError> {
        let policy = self.retry;
        let mut attempt = 0;
        loop {
            let mut req = self
                .client
                .get(url)
                .header(CARGO_PROTOCOL.0, CARGO_PROTOCOL.1)
                .header(ACCEPT_TEXT.0, ACCEPT_TEXT.1);
            if with_token && let Some(token) = &self.token {
                req = req.header("authorization", token.trim());
            }
            let resp = req.send().map_err(network(url))?;
            if !is_transient_status(resp.status().as_u16()) || attempt >= policy.retries {
                return Ok(resp);
            }
            attempt += 1;
            std::thread::sleep(policy.delay(attempt, retry_after_header(resp.headers())));
        }
    }

    /// The body of a 200; `None` for "no such crate"; an error otherwise.
    fn body(url: &str, resp: Response) -> Result<Option<Vec<u8>>, IndexError> {
        if !classify(url, resp.status().as_u16())? {
            return Ok(None);
        }
        resp.bytes().map(|b| Some(b.to_vec())).map_err(network(url))
    }
}
