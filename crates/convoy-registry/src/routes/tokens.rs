//! Token self-service, as crates.io offers it: "if it leaks, revoke it".
//!
//! - `DELETE /api/v1/tokens/current` revokes the token presented (what
//!   `cargo logout` asks crates.io to do);
//! - `GET /api/v1/me/tokens` lists the caller's tokens without secrets;
//! - `PUT /api/v1/me/tokens` creates one, never wider than the caller's own
//!   token: its scopes, crate patterns and expiry are all bounded by it;
//! - `DELETE /api/v1/me/tokens/{id}` revokes one by id.
//!
//! Revoking a token also ends every stage token opened with it, and
//! discards those stages.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use convoy_protocol::api::{
    ApiToken, ApiTokenList, CreatedApiToken, NewApiTokenRequest, NewApiTokenResponse,
};
use convoy_protocol::index::format_timestamp;
use convoy_protocol::scope::CrateGlob;
use convoy_protocol::text::quote;
use convoy_store::{AuthenticatedToken, NewToken, TokenInfo};

use crate::{ApiError, App};

fn timestamp(t: SystemTime) -> String {
    format_timestamp(
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
}

fn api_token(info: TokenInfo) -> ApiToken {
    ApiToken {
        id: info.id,
        name: info.name,
        endpoint_scopes: info.scopes,
        crate_scopes: (!info.crates.is_empty())
            .then(|| info.crates.iter().map(|g| g.as_str().to_owned()).collect()),
        created_at: timestamp(info.created_at),
        expired_at: info.expires_at.map(timestamp),
        last_used_at: info.last_used_at.map(timestamp),
        stage: info.stage,
    }
}

/// An ordinary token: stage tokens exist to upload into one stage and may
/// not manage tokens.
async fn account_token(app: &App, headers: &HeaderMap) -> Result<AuthenticatedToken, ApiError> {
    let token = app.authenticate(headers).await?;
    if token.stage.is_some() {
        return Err(ApiError::forbidden("a stage token cannot manage tokens"));
    }
    Ok(token)
}

/// `DELETE /api/v1/tokens/current`: 204, and the token works no more.
pub(crate) async fn revoke_current(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    app.store.revoke_token(token.user_id, &token.id).await?;
    tracing::info!(user = %token.login, token = %token.id, "token revoked by its holder");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/me/tokens`.
pub(crate) async fn list(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = account_token(&app, &headers).await?;
    let api_tokens = app
        .store
        .tokens(token.user_id)
        .await?
        .into_iter()
        .map(api_token)
        .collect();
    Ok(axum::Json(ApiTokenList { api_tokens }).into_response())
}

/// `PUT /api/v1/me/tokens`.
pub(crate) async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = account_token(&app, &headers).await?;
    let request: NewApiTokenRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("invalid token request: {}", quote(&e.to_string())))
    })?;
    let new = request.api_token;
    if new.name.trim().is_empty() || new.name.chars().count() > 64 {
        return Err(ApiError::bad_request(
            "a token needs a name of 1 to 64 characters",
        ));
    }
    let scopes = match new.endpoint_scopes {
        None => token.scopes.clone(),
        Some(scopes) if scopes.is_empty() => {
            return Err(ApiError::bad_request(
                "`endpoint_scopes` cannot be empty; leave it out to inherit this token's",
            ));
        }
        Some(scopes) => {
            if let Some(wider) = scopes.iter().find(|s| !token.scopes.contains(s)) {
                return Err(ApiError::forbidden(format!(
                    "this token does not hold `{wider}`, so it cannot grant it"
                )));
            }
            scopes
        }
    };
    let crates = match new.crate_scopes {
        None => token.crates.clone(),
        Some(patterns) => {
            let mut globs = Vec::new();
            for p in &patterns {
                let glob = CrateGlob::new(p).map_err(|_| {
                    ApiError::bad_request(format!("invalid crate pattern `{}`", quote(p)))
                })?;
                let covered =
                    token.crates.is_empty() || token.crates.iter().any(|own| own.covers(&glob));
                if !covered {
                    return Err(ApiError::forbidden(format!(
                        "this token is not allowed crate pattern `{}`, so it cannot grant it",
                        glob.as_str()
                    )));
                }
                globs.push(glob);
            }
            if globs.is_empty() && !token.crates.is_empty() {
                return Err(ApiError::forbidden(
                    "this token is limited to some crates, so it cannot grant every crate",
                ));
            }
            globs
        }
    };
    let expires_at = match new.expired_at {
        None => token.expires_at,
        Some(text) => {
            let at =
                time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "invalid `expired_at` `{}`, expected YYYY-MM-DDTHH:MM:SSZ",
                            quote(&text)
                        ))
                    })?;
            let at = UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(at.unix_timestamp()).unwrap_or(0));
            if token.expires_at.is_some_and(|limit| at > limit) {
                return Err(ApiError::forbidden(
                    "a new token cannot outlive the token that creates it",
                ));
            }
            Some(at)
        }
    };
    let secret = app
        .store
        .create_token(NewToken {
            login: token.login.clone(),
            name: new.name,
            scopes,
            crates,
            expires_at,
        })
        .await?;
    let info = app
        .store
        .tokens(token.user_id)
        .await?
        .into_iter()
        .find(|t| t.id == secret.id())
        .ok_or_else(|| ApiError::not_found("the new token vanished"))?;
    tracing::info!(user = %token.login, token = %info.id, "token created through the API");
    let api_token = CreatedApiToken {
        info: api_token(info),
        token: secret.expose().to_owned(),
    };
    Ok(axum::Json(NewApiTokenResponse { api_token }).into_response())
}

/// `DELETE /api/v1/me/tokens/{id}`.
pub(crate) async fn revoke(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = account_token(&app, &headers).await?;
    let id = super::params::token_id(&id)?;
    if !app.store.revoke_token(token.user_id, id).await? {
        return Err(ApiError::not_found(format!("token `{id}` does not exist")));
    }
    tracing::info!(user = %token.login, token = %id, "token revoked");
    Ok(axum::Json(serde_json::json!({})).into_response())
}
