//! The client of Convoy's staged-release extension of the Web API
//! (`docs/STAGING.md`): create a stage, upload into it, commit or abort it,
//! and yank a whole release.
//!
//! Uploading into a stage needs nothing from this module: it is the
//! ordinary upload ([`crate::upload`]) with a [`RegistryTarget`] whose index
//! is the stage's view and whose token is the stage token
//! ([`NewStage::upload_target`]). The staging view's `config.json` points
//! `api` at the registry and shows staged versions at once, so skips,
//! retries and visibility waits work unchanged.
//!
//! The client is blocking, like the rest of the release engine: it runs its
//! requests on the caller's runtime (the CLI owns one for the whole
//! command), through a [`tokio::runtime::Handle`], so it must not be called
//! from inside that runtime's tasks. Tokens never appear in `Debug` output,
//! messages or logs.

use std::time::Duration;

use convoy_index_client::RegistryTarget;
use convoy_protocol::api::ErrorResponse;
use convoy_protocol::index::StagingAdvert;
use convoy_protocol::staging::{
    Release, STAGING_VERSION, Stage, StageList, StageRequest, StageState,
};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::client::{RegistryClient, quote_body};
use crate::error::UploadError;
use crate::retry;

/// Transient failures (network, 429, 5xx) retried per request.
const RETRIES: u32 = 4;
/// First backoff; it doubles with jitter, as for uploads.
const BACKOFF: Duration = Duration::from_millis(300);
/// The longest `Retry-After` honoured before giving up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Timeout of one request. A commit rewrites every affected index file in
/// one transaction, which may take a while on a large release.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a staging request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StagingError {
    /// `config.json` has no `convoy-staging` key: the registry cannot stage.
    #[error(
        "registry `{registry}` does not offer staged releases (no `convoy-staging` in its config.json)"
    )]
    NotOffered {
        /// Registry label.
        registry: String,
    },
    /// The registry speaks a newer version of the extension.
    #[error(
        "registry `{registry}` offers version {v} of staged releases, this Convoy knows version {known}"
    )]
    UnsupportedVersion {
        /// Registry label.
        registry: String,
        /// The advertised version.
        v: u32,
        /// [`STAGING_VERSION`].
        known: u32,
    },
    /// `config.json` could not be read.
    #[error(transparent)]
    Connect(#[from] UploadError),
    /// A request that needs a token has none.
    #[error(
        "no token found for registry `{registry}`, pass `--token` or run `cargo login --registry <name>`"
    )]
    NoToken {
        /// Registry label.
        registry: String,
    },
    /// An id that cannot be a stage's: it would be pasted into a URL path.
    #[error("`{id}` is not a stage or release id, expected `stg_…`")]
    InvalidId {
        /// What was given.
        id: String,
    },
    /// No complete answer, after retries.
    #[error("failed to {action} on `{registry}`")]
    Network {
        /// Registry label.
        registry: String,
        /// What was being done ("commit stage `stg_…`").
        action: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an error. Every `detail` of cargo's error
    /// envelope is kept: a refused commit names each crate's problem.
    #[error("`{registry}` refused to {action} (status {status}): {}", details.join("; "))]
    Refused {
        /// Registry label.
        registry: String,
        /// What was being done.
        action: String,
        /// HTTP status.
        status: u16,
        /// One entry per problem.
        details: Vec<String>,
    },
    /// The answer is not the documented JSON.
    #[error("failed to {action} on `{registry}`, the answer is not the expected JSON")]
    Parse {
        /// Registry label.
        registry: String,
        /// What was being done.
        action: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A created stage came back without its token.
    #[error("`{registry}` created stage `{id}` but did not return its token")]
    MissingToken {
        /// Registry label.
        registry: String,
        /// The stage.
        id: String,
    },
    /// The runtime behind the blocking calls could not start.
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
}

impl StagingError {
    /// The registry's details of a refusal, one per problem; empty for
    /// other errors.
    pub fn details(&self) -> &[String] {
        match self {
            Self::Refused { details, .. } => details,
            _ => &[],
        }
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A stage token: it uploads into one stage. Its `Debug` is redacted and
/// it has no `Display`, so it cannot end up in a message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct StageToken(String);

impl StageToken {
    /// The secret, for the `Authorization` header of uploads.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StageToken(<redacted>)")
    }
}

/// A stage just created: its description (with `token` taken out) and the
/// token, shown only once by the registry.
#[derive(Debug, Clone)]
pub struct NewStage {
    /// The stage; its `token` field is always `None`.
    pub stage: Stage,
    /// The stage token.
    pub token: StageToken,
}

impl NewStage {
    /// Where to upload so that crates land in this stage: the staging view
    /// with the stage token, reached with `base`'s network settings.
    /// `base`'s name keeps the target's label in messages.
    pub fn upload_target(&self, base: &RegistryTarget) -> RegistryTarget {
        RegistryTarget {
            name: base.name.clone(),
            index: self.stage.index.clone(),
            token: Some(self.token.expose().to_owned()),
            http: base.http.clone(),
        }
    }
}

/// Whether `config.json` of `target` advertises staged releases; `None`
/// when it does not.
pub fn discover(
    target: &RegistryTarget,
    runtime: &tokio::runtime::Handle,
) -> Result<Option<StagingAdvert>, StagingError> {
    match StagingClient::connect(target, runtime) {
        Ok(client) => Ok(Some(client.advert)),
        Err(StagingError::NotOffered { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A registry's staging API, authenticated with the target's token.
pub struct StagingClient {
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
    label: String,
    advert: StagingAdvert,
    /// The staging API root, without a trailing `/`.
    api: String,
    /// Marked sensitive, so reqwest never logs it.
    token: Option<HeaderValue>,
}

impl std::fmt::Debug for StagingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token, even in debug logs.
        f.debug_struct("StagingClient")
            .field("label", &self.label)
            .field("api", &self.api)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl StagingClient {
    /// Reads `config.json` of `target` (with the token if the registry wants
    /// one for reads) and finds the staging API. Fails with
    /// [`StagingError::NotOffered`] when the registry does not advertise it.
    /// Requests run on `runtime`, which must have its I/O and time drivers.
    pub fn connect(
        target: &RegistryTarget,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, StagingError> {
        let runtime = runtime.clone();
        let registry = runtime.block_on(RegistryClient::connect(target, RETRIES, BACKOFF))?;
        let label = registry.label.clone();
        let Some(advert) = registry.staging.clone() else {
            return Err(StagingError::NotOffered { registry: label });
        };
        if advert.v > STAGING_VERSION {
            return Err(StagingError::UnsupportedVersion {
                registry: label,
                v: advert.v,
                known: STAGING_VERSION,
            });
        }
        Ok(Self {
            runtime,
            http: registry.http.clone(),
            api: advert.api.trim_end_matches('/').to_owned(),
            advert,
            label,
            token: registry.token.clone(),
        })
    }

    /// The registry's name, or its index URL.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What `config.json` advertised.
    pub fn advert(&self) -> &StagingAdvert {
        &self.advert
    }

    /// `POST /stages`: a new open stage living `ttl` (the registry's
    /// default when `None`; it caps the value).
    pub fn create_stage(&self, ttl: Option<Duration>) -> Result<NewStage, StagingError> {
        let body = StageRequest {
            ttl_secs: ttl.map(|t| t.as_secs()),
        };
        let mut stage: Stage = self.call(
            Method::POST,
            "/stages".to_owned(),
            Some(&body),
            "create a stage".to_owned(),
        )?;
        let Some(token) = stage.token.take() else {
            return Err(StagingError::MissingToken {
                registry: self.label.clone(),
                id: stage.id,
            });
        };
        Ok(NewStage {
            stage,
            token: StageToken(token),
        })
    }

    /// `GET /stages`: the caller's open stages.
    pub fn stages(&self) -> Result<Vec<Stage>, StagingError> {
        let list: StageList = self.call(
            Method::GET,
            "/stages".to_owned(),
            None::<&()>,
            "list stages".to_owned(),
        )?;
        Ok(list.stages)
    }

    /// `GET /stages/{id}`.
    pub fn stage(&self, id: &str) -> Result<Stage, StagingError> {
        let id = checked_id(id)?;
        self.call(
            Method::GET,
            format!("/stages/{id}"),
            None::<&()>,
            format!("read stage `{id}`"),
        )
    }

    /// `POST /stages/{id}/extend`: the stage now expires `ttl` from now.
    pub fn extend(&self, id: &str, ttl: Duration) -> Result<Stage, StagingError> {
        let id = checked_id(id)?;
        let body = StageRequest {
            ttl_secs: Some(ttl.as_secs()),
        };
        self.call(
            Method::POST,
            format!("/stages/{id}/extend"),
            Some(&body),
            format!("extend stage `{id}`"),
        )
    }

    /// `POST /stages/{id}/commit`: validates the stage and publishes all of
    /// it in one transaction. A refusal comes back as
    /// [`StagingError::Refused`] with every problem the registry named.
    ///
    /// A commit whose answer was lost is not sent blindly again: the stage
    /// is read first, and a stage already committed yields its release.
    pub fn commit(&self, id: &str) -> Result<Release, StagingError> {
        let id = checked_id(id)?;
        let action = format!("commit stage `{id}`");
        let path = format!("/stages/{id}/commit");
        let mut attempt = 0;
        loop {
            match self
                .runtime
                .block_on(self.send(Method::POST, &path, None::<&()>, &action))
            {
                Outcome::Done(body) => return self.parse(&body, &action),
                Outcome::Final(e) => return Err(e),
                Outcome::Transient { error, .. } if attempt >= RETRIES => return Err(error),
                Outcome::Transient { error, after } => {
                    attempt += 1;
                    self.runtime.block_on(tokio::time::sleep(
                        after.unwrap_or_else(|| retry::backoff(BACKOFF, BACKOFF * 8, attempt)),
                    ));
                    match self.stage(id) {
                        Ok(stage) if stage.state == StageState::Committed => {
                            return self.release(id);
                        }
                        Ok(stage) if stage.state == StageState::Open => {}
                        // Aborted or expired meanwhile: the commit cannot
                        // have happened; report what was seen.
                        Ok(_) | Err(_) => return Err(error),
                    }
                }
            }
        }
    }

    /// `DELETE /stages/{id}`: discards the stage and everything in it.
    pub fn abort(&self, id: &str) -> Result<Stage, StagingError> {
        let id = checked_id(id)?;
        self.call(
            Method::DELETE,
            format!("/stages/{id}"),
            None::<&()>,
            format!("abort stage `{id}`"),
        )
    }

    /// `GET /releases/{id}`.
    pub fn release(&self, id: &str) -> Result<Release, StagingError> {
        let id = checked_id(id)?;
        self.call(
            Method::GET,
            format!("/releases/{id}"),
            None::<&()>,
            format!("read release `{id}`"),
        )
    }

    /// Yanks (or, with `undo`, restores) every version of a release in one
    /// transaction.
    pub fn yank_release(&self, id: &str, undo: bool) -> Result<(), StagingError> {
        let id = checked_id(id)?;
        let (method, path, verb) = if undo {
            (Method::PUT, format!("/releases/{id}/unyank"), "restore")
        } else {
            (Method::DELETE, format!("/releases/{id}/yank"), "yank")
        };
        let _: serde_json::Value =
            self.call(method, path, None::<&()>, format!("{verb} release `{id}`"))?;
        Ok(())
    }

    /// One request with retries of transient failures; every call but
    /// commit is idempotent, or harmless to repeat (a second empty stage
    /// reserves nothing and expires).
    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: Option<&impl serde::Serialize>,
        action: String,
    ) -> Result<T, StagingError> {
        let mut attempt = 0;
        loop {
            match self
                .runtime
                .block_on(self.send(method.clone(), &path, body, &action))
            {
                Outcome::Done(bytes) => return self.parse(&bytes, &action),
                Outcome::Final(e) => return Err(e),
                Outcome::Transient { error, .. } if attempt >= RETRIES => return Err(error),
                Outcome::Transient { after, .. } => {
                    attempt += 1;
                    self.runtime.block_on(tokio::time::sleep(
                        after.unwrap_or_else(|| retry::backoff(BACKOFF, BACKOFF * 8, attempt)),
                    ));
                }
            }
        }
    }

    fn parse<T: DeserializeOwned>(&self, body: &[u8], action: &str) -> Result<T, StagingError> {
        serde_json::from_slice(body).map_err(|source| StagingError::Parse {
            registry: self.label.clone(),
            action: action.to_owned(),
            source,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
        action: &str,
    ) -> Outcome {
        let Some(token) = &self.token else {
            // `GET /releases/{id}` is open to every reader; the rest needs
            // a token, and the registry's 401 would say less than this.
            if !(method == Method::GET && path.starts_with("/releases/")) {
                return Outcome::Final(StagingError::NoToken {
                    registry: self.label.clone(),
                });
            }
            return self
                .finish(self.http.request(method, self.url(path)), action)
                .await;
        };
        let mut req = self
            .http
            .request(method, self.url(path))
            .header(header::AUTHORIZATION, token.clone());
        if let Some(body) = body {
            match serde_json::to_vec(body) {
                Ok(bytes) => {
                    req = req
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(bytes);
                }
                Err(source) => {
                    return Outcome::Final(StagingError::Parse {
                        registry: self.label.clone(),
                        action: action.to_owned(),
                        source,
                    });
                }
            }
        }
        self.finish(req, action).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    async fn finish(&self, req: reqwest::RequestBuilder, action: &str) -> Outcome {
        let network = |source| StagingError::Network {
            registry: self.label.clone(),
            action: action.to_owned(),
            source,
        };
        let resp = match req
            .timeout(REQUEST_TIMEOUT)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(resp) => resp,
            Err(e) => {
                return Outcome::Transient {
                    error: network(e),
                    after: None,
                };
            }
        };
        let status = resp.status();
        let retry_after = retry::retry_after_header(resp.headers());
        let body = match resp.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Transient {
                    error: network(e),
                    after: None,
                };
            }
        };
        let errors = serde_json::from_slice::<ErrorResponse>(&body)
            .ok()
            .filter(|e| !e.errors.is_empty())
            .map(|e| e.errors.into_iter().map(|d| d.detail).collect::<Vec<_>>());
        if status.is_success() && errors.is_none() {
            return Outcome::Done(body.to_vec());
        }
        let error = StagingError::Refused {
            registry: self.label.clone(),
            action: action.to_owned(),
            status: status.as_u16(),
            details: errors.unwrap_or_else(|| vec![quote_body(status, &body)]),
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let after = retry_after.map(|a| a.min(MAX_RETRY_AFTER));
            return Outcome::Transient { error, after };
        }
        Outcome::Final(error)
    }
}

/// How one request ended.
enum Outcome {
    /// A 2xx body.
    Done(Vec<u8>),
    /// Worth another try (no answer, 429, 5xx).
    Transient {
        error: StagingError,
        after: Option<Duration>,
    },
    /// Any other answer.
    Final(StagingError),
}

/// Stage ids go into URL paths, so only `[A-Za-z0-9_-]` is let through.
fn checked_id(id: &str) -> Result<&str, StagingError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(StagingError::InvalidId { id: id.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_path() {
        assert!(checked_id("stg_01HXYZ-abc").is_ok());
        for bad in ["", "../me", "stg/../x", "stg?x=1", "stg x", "stg%2f"] {
            assert!(checked_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stage_tokens_are_redacted() {
        let new = NewStage {
            stage: Stage {
                id: "stg_1".into(),
                state: StageState::Open,
                created_by: "alice".into(),
                created_at: "2025-01-01T00:00:00Z".into(),
                expires_at: "2025-01-01T01:00:00Z".into(),
                index: "sparse+http://127.0.0.1:1/stages/stg_1/index/".into(),
                crates: Vec::new(),
                token: None,
            },
            token: StageToken("cvy_secret_value".into()),
        };
        assert!(!format!("{new:?}").contains("secret"));
        let target = new.upload_target(&RegistryTarget::new(
            Some("reg".into()),
            "sparse+http://127.0.0.1:1/index/",
            None,
        ));
        assert_eq!(target.token.as_deref(), Some("cvy_secret_value"));
        assert_eq!(target.index, new.stage.index);
        assert!(!format!("{target:?}").contains("secret"));
    }

    #[test]
    fn refusals_keep_every_detail() {
        let e = StagingError::Refused {
            registry: "reg".into(),
            action: "commit stage `stg_1`".into(),
            status: 409,
            details: vec!["`a@1.0.0` is taken".into(), "`b@1.0.0` is taken".into()],
        };
        assert_eq!(e.details().len(), 2);
        assert_eq!(e.status(), Some(409));
        assert_eq!(
            e.to_string(),
            "`reg` refused to commit stage `stg_1` (status 409): `a@1.0.0` is taken; `b@1.0.0` is taken"
        );
    }
}
