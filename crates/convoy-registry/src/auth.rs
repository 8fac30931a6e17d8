//! Reading the `Authorization` header.
//!
//! Cargo sends the raw token; crates.io also accepts `Bearer <token>`, so we
//! do too. The token is never logged: only its verdict is.

use axum::http::{HeaderMap, header};
use convoy_protocol::scope::EndpointScope;
use convoy_store::AuthenticatedToken;

use crate::{ApiError, App};

impl App {
    pub(crate) fn login_url(&self) -> String {
        format!("{}/me", self.settings.public_url)
    }

    /// The caller's token, or 401.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<AuthenticatedToken, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "this action requires a token, see `cargo login`",
                self.login_url(),
            ));
        };
        let presented = value.to_str().unwrap_or_default().trim();
        let presented = presented.strip_prefix("Bearer ").unwrap_or(presented);
        match self.store.authenticate(presented).await? {
            Some(token) => Ok(token),
            None => Err(ApiError::unauthorized(
                "the token is invalid or expired",
                self.login_url(),
            )),
        }
    }

    /// For reads: a token is needed only on a private registry. On a public
    /// one a presented token is still read, because a stage token changes
    /// what the index shows; a bad one there is ignored, as cargo never
    /// sends one.
    pub(crate) async fn authorize_read(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<AuthenticatedToken>, ApiError> {
        if self.settings.auth_required {
            return self.authenticate(headers).await.map(Some);
        }
        if headers.contains_key(header::AUTHORIZATION) {
            return Ok(self.authenticate(headers).await.ok());
        }
        Ok(None)
    }
}

/// 403 unless `token` allows `scope` on `name`.
pub(crate) fn require_scope(
    token: &AuthenticatedToken,
    scope: EndpointScope,
    name: &str,
) -> Result<(), ApiError> {
    if token.allows(scope, name) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this token does not allow `{scope}` for crate `{name}`"
        )))
    }
}
