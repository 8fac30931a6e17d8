//! Errors as cargo shows them: `{"errors":[{"detail":"…"}]}` with a status
//! that says whose fault it was.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use convoy_protocol::api::ErrorResponse;
use convoy_store::StoreError;

/// An error response. Server-side failures are logged in full and shown to
/// the client only as "internal server error", so no backend detail leaks.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    /// Further problems, each shown as its own `detail`.
    more: Vec<String>,
    /// For 401: where a user can get a token.
    login_url: Option<String>,
    /// For 429: seconds until a retry may succeed.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            more: Vec::new(),
            login_url: None,
            retry_after: None,
        }
    }

    /// Several problems at once, one `detail` each (a rejected commit names
    /// every crate's problem, not just the first).
    pub fn many(status: StatusCode, mut details: Vec<String>) -> Self {
        let first = if details.is_empty() {
            String::new()
        } else {
            details.remove(0)
        };
        Self {
            more: details,
            ..Self::new(status, first)
        }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401 with cargo's `WWW-Authenticate: Cargo login_url=…` challenge.
    pub fn unauthorized(detail: impl Into<String>, login_url: String) -> Self {
        Self {
            login_url: Some(login_url),
            ..Self::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 413.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    /// 429 with `Retry-After`, in whole seconds rounded up.
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "you have published too many crates in a short period of time, please try again in {secs} seconds"
                ),
            )
        }
    }

    /// 500; `cause` goes to the log only.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::VersionExists { .. }
            | StoreError::NameConflict { .. }
            | StoreError::VersionStaged { .. }
            | StoreError::VersionBurnt { .. }
            | StoreError::StageNotOpen { .. } => StatusCode::CONFLICT,
            StoreError::StageNotFound { .. } | StoreError::ReleaseNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            StoreError::CommitRejected { problems } => {
                return Self::many(StatusCode::BAD_REQUEST, problems.clone());
            }
            StoreError::NotOwner { .. }
            | StoreError::MissingScope { .. }
            | StoreError::CompanionDependency { .. }
            | StoreError::OwnedWithParent { .. } => StatusCode::FORBIDDEN,
            StoreError::CompanionMismatch { .. } => StatusCode::BAD_REQUEST,
            StoreError::CrateNotFound { .. }
            | StoreError::VersionNotFound { .. }
            | StoreError::UserNotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::UnknownDependencies { .. } | StoreError::LastOwner { .. } => {
                StatusCode::BAD_REQUEST
            }
            _ => return Self::internal(&e),
        };
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = ErrorResponse::single(self.detail);
        body.errors.extend(
            self.more
                .into_iter()
                .map(|detail| convoy_protocol::api::ErrorDetail { detail }),
        );
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(url) = self.login_url
            && let Ok(value) = HeaderValue::from_str(&format!("Cargo login_url=\"{url}\""))
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
