//! The registry as the upload stage sees it: fresh index reads and one
//! `PUT /api/v1/crates/new` at a time, each answer sorted into what the
//! caller should do next.
//!
//! Every client here is built from the target's `HttpConfig` (cargo's
//! `[http]` settings), as the index reader is.
//!
//! Index reads go through `convoy_index_client::AsyncSparseIndex`: async,
//! because the scheduler keeps many reads and uploads in flight on one
//! thread; and set to bypass caches, because "is it visible yet" must not
//! be answered from a copy taken before the upload.

use std::time::Duration;

use bytes::Bytes;
use convoy_index_client::{
    AsyncSparseIndex, AsyncSparseOptions, Fetch, IndexError, RegistryTarget, RetryPolicy,
};
use convoy_protocol::api::ErrorResponse;
use convoy_protocol::index::StagingAdvert;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderValue};

use crate::error::{UploadError, describe};
use crate::retry;

/// Timeout of one index read.
const INDEX_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a non-JSON error body is quoted back to the user.
const MAX_QUOTED_BODY: usize = 300;

/// What the index says about one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RemoteVersion {
    /// The registry has no crate of that name.
    NoCrate,
    /// The crate exists, without this version.
    OtherVersions,
    /// This version (build metadata ignored) exists with this cksum.
    Present {
        /// The index line's cksum.
        cksum: String,
    },
}

/// How one `PUT` ended.
#[derive(Debug)]
pub(crate) enum PutResult {
    /// 2xx without an `errors` body.
    Accepted {
        /// Registry warnings, as sentences.
        warnings: Vec<String>,
    },
    /// 429: wait `after` (when the registry said) and try again.
    RateLimited {
        /// The parsed `Retry-After`.
        after: Option<Duration>,
        /// The registry's message.
        detail: String,
    },
    /// 5xx or no complete answer: the upload may or may not have landed.
    Transient {
        /// What happened.
        reason: String,
    },
    /// Any other 4xx, or a 2xx with `errors`: final.
    Rejected {
        /// The status.
        status: u16,
        /// The registry's details.
        detail: String,
    },
}

/// One registry, ready to be read and published to.
pub(crate) struct RegistryClient {
    pub(crate) http: reqwest::Client,
    /// For messages: the registry's name or index URL.
    pub(crate) label: String,
    /// The index, read past caches: "is it there" must be answered now.
    index: AsyncSparseIndex,
    /// The Web API root from `config.json`, without a trailing `/`.
    api: Option<String>,
    /// Marked sensitive, so that reqwest/hyper never log it.
    pub(crate) token: Option<HeaderValue>,
    /// The staged-release extension, when `config.json` advertises it.
    pub(crate) staging: Option<StagingAdvert>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token, even in debug logs.
        f.debug_struct("RegistryClient")
            .field("label", &self.label)
            .field("index", &self.index)
            .field("api", &self.api)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("staging", &self.staging)
            .finish()
    }
}

impl RegistryClient {
    /// Reads `config.json` (retrying transient failures) and learns the API
    /// root and whether reads need the token.
    pub(crate) async fn connect(
        target: &RegistryTarget,
        retries: u32,
        backoff: Duration,
    ) -> Result<Self, UploadError> {
        let label = target.label().to_owned();
        let config_error = |source| UploadError::Config {
            registry: label.clone(),
            source,
        };
        let options = AsyncSparseOptions {
            retry: RetryPolicy {
                retries,
                base: backoff,
                max: backoff.saturating_mul(8),
            },
            timeout: INDEX_TIMEOUT.max(target.http.timeout),
            no_cache: true,
        };
        let index = match AsyncSparseIndex::with_http(
            &target.index,
            target.token.clone(),
            &target.http,
            options,
        ) {
            Ok(index) => index,
            Err(IndexError::NotSparse { .. }) => {
                return Err(UploadError::NotSparse {
                    index: target.index.clone(),
                });
            }
            Err(IndexError::Http(e)) => return Err(UploadError::Client(e)),
            Err(e) => return Err(config_error(e)),
        };
        // Uploads and stage requests go through the same proxy, with the
        // same trust, as the index reads.
        let http = target.http.client()?;
        let token = match &target.token {
            Some(t) => {
                let mut value =
                    HeaderValue::from_str(t.trim()).map_err(|_| UploadError::InvalidToken {
                        registry: label.clone(),
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let config = index.config().await.map_err(config_error)?;
        let api = config
            .api
            .as_ref()
            .map(|a| a.trim_end_matches('/').to_owned());
        let staging = config.convoy_staging.clone();
        Ok(Self {
            http,
            label,
            index,
            api,
            token,
            staging,
        })
    }

    /// Whether uploads are possible: an API root and a token.
    pub(crate) fn check_can_publish(&self) -> Result<(), UploadError> {
        if self.api.is_none() {
            return Err(UploadError::NoApi {
                registry: self.label.clone(),
            });
        }
        if self.token.is_none() {
            return Err(UploadError::NoToken {
                registry: self.label.clone(),
            });
        }
        Ok(())
    }

    /// One fresh read of `name`'s index file, looking for `version`.
    /// [`Fetch::Retrying`] for decisions that must not be made on a blip
    /// (skip or upload), [`Fetch::Once`] for polls and checks that retry on
    /// their own clock.
    pub(crate) async fn lookup(
        &self,
        name: &str,
        version: &str,
        fetch: Fetch,
    ) -> Result<RemoteVersion, IndexError> {
        let Some(versions) = self.index.versions(name, fetch).await? else {
            return Ok(RemoteVersion::NoCrate);
        };
        let found = versions
            .into_iter()
            .find(|line| same_version(&line.vers, version));
        Ok(match found {
            Some(line) => RemoteVersion::Present { cksum: line.cksum },
            None => RemoteVersion::OtherVersions,
        })
    }

    /// One `PUT /api/v1/crates/new` with cargo's framing and headers.
    /// `body` is cheap to clone, so retries resend the same bytes.
    pub(crate) async fn put(&self, body: Bytes, timeout: Duration) -> PutResult {
        let (Some(api), Some(token)) = (&self.api, &self.token) else {
            return PutResult::Rejected {
                status: 0,
                detail: "the registry cannot be published to".to_owned(),
            };
        };
        let url = format!("{api}/api/v1/crates/new");
        let sent = self
            .http
            .put(&url)
            .timeout(timeout)
            .header(header::AUTHORIZATION, token.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                return PutResult::Transient {
                    reason: describe(&e),
                };
            }
        };
        let status = resp.status();
        let retry_after = retry::retry_after_header(resp.headers());
        let body = match resp.bytes().await {
            Ok(body) => body,
            // The status arrived but the body did not: for a success the
            // upload has landed, for anything else it is unknown. Either
            // way the caller checks the index before sending it again.
            Err(e) => {
                return PutResult::Transient {
                    reason: format!("status {status}, then {}", describe(&e)),
                };
            }
        };
        classify(status, retry_after, &body)
    }
}

/// Sorts a complete answer, following cargo: an `errors` body is an error
/// for any status, even 200.
fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> PutResult {
    let errors = serde_json::from_slice::<ErrorResponse>(body)
        .ok()
        .filter(|e| !e.errors.is_empty())
        .map(|e| {
            e.errors
                .into_iter()
                .map(|d| d.detail)
                .collect::<Vec<_>>()
                .join(", ")
        });
    if status == StatusCode::TOO_MANY_REQUESTS {
        return PutResult::RateLimited {
            after: retry_after,
            detail: errors.unwrap_or_else(|| quote_body(status, body)),
        };
    }
    if status.is_server_error() {
        return PutResult::Transient {
            reason: format!(
                "status {status}, {}",
                errors.unwrap_or_else(|| quote_body(status, body))
            ),
        };
    }
    if status.is_success() {
        return match errors {
            Some(detail) => PutResult::Rejected {
                status: status.as_u16(),
                detail,
            },
            None => PutResult::Accepted {
                warnings: warnings(body),
            },
        };
    }
    PutResult::Rejected {
        status: status.as_u16(),
        detail: errors.unwrap_or_else(|| quote_body(status, body)),
    }
}

/// The start of a body that is not cargo's error envelope, or the status's
/// reason phrase when it is empty.
pub(crate) fn quote_body(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no details given")
            .to_owned();
    }
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The `warnings` cargo prints after a publish, as sentences. The body may
/// be empty or any JSON (cargo reads an empty body as `{}`).
fn warnings(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let list = |key: &str| -> Vec<String> {
        value
            .pointer(&format!("/warnings/{key}"))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    out.extend(
        list("invalid_categories")
            .into_iter()
            .map(|c| format!("the registry does not know category `{c}`")),
    );
    out.extend(
        list("invalid_badges")
            .into_iter()
            .map(|b| format!("the registry does not know badge `{b}`")),
    );
    out.extend(list("other"));
    out
}

/// Registries identify a version without its build metadata: `1.0.0+a`
/// and `1.0.0+b` are the same version, and the second is refused.
pub(crate) fn same_version(a: &str, b: &str) -> bool {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.major == b.major && a.minor == b.minor && a.patch == b.patch && a.pre == b.pre
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_metadata_is_ignored() {
        assert!(same_version("1.0.0+a", "1.0.0+b"));
        assert!(same_version("1.0.0", "1.0.0+b"));
        assert!(!same_version("1.0.0-alpha", "1.0.0"));
        assert!(!same_version("1.0.1", "1.0.0"));
        assert!(same_version("not-semver", "not-semver"));
    }

    #[test]
    fn errors_body_is_an_error_even_on_200() {
        let body = br#"{"errors":[{"detail":"one"},{"detail":"two"}]}"#;
        match classify(StatusCode::OK, None, body) {
            PutResult::Rejected { status, detail } => {
                assert_eq!(status, 200);
                assert_eq!(detail, "one, two");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn statuses_are_sorted() {
        assert!(matches!(
            classify(StatusCode::OK, None, b""),
            PutResult::Accepted { .. }
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, None, b""),
            PutResult::Transient { .. }
        ));
        assert!(matches!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(3)),
                b""
            ),
            PutResult::RateLimited { after: Some(_), .. }
        ));
        match classify(StatusCode::BAD_REQUEST, None, b"plain words") {
            PutResult::Rejected { status, detail } => {
                assert_eq!((status, detail.as_str()), (400, "plain words"));
            }
            other => panic!("{other:?}"),
        }
        match classify(StatusCode::FORBIDDEN, None, b"") {
            PutResult::Rejected { detail, .. } => assert_eq!(detail, "Forbidden"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn warnings_are_sentences() {
        let body =
            br#"{"warnings":{"invalid_categories":["x"],"invalid_badges":[],"other":["be nice"]}}"#;
        assert_eq!(
            warnings(body),
            vec![
                "the registry does not know category `x`".to_owned(),
                "be nice".to_owned()
            ]
        );
        assert!(warnings(b"").is_empty());
    }
}
