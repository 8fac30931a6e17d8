//! The sparse index: `config.json` and one file per crate.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use convoy_protocol::index::{RegistryConfig, StagingAdvert};
use convoy_protocol::staging::STAGING_VERSION;

use crate::{ApiError, App};

/// `GET /index/config.json`. Fetched first by every cargo command.
pub(crate) async fn config(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authorize_read(&headers).await?;
    let base = &app.settings.public_url;
    let config = RegistryConfig {
        dl: format!("{base}/api/v1/crates"),
        api: Some(base.clone()),
        auth_required: app.settings.auth_required,
        convoy_staging: Some(StagingAdvert {
            v: STAGING_VERSION,
            api: format!("{base}/api/v1/convoy"),
        }),
        convoy_companions: app.settings.companions.then_some(
            convoy_protocol::companion::CompanionAdvert {
                v: convoy_protocol::companion::COMPANION_VERSION,
            },
        ),
    };
    Ok(axum::Json(config).into_response())
}

/// `GET /index/{prefix}/{name}`: the crate's lines, with validators so that
/// cargo's conditional requests get 304.
pub(crate) async fn file(
    State(app): State<App>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reader = app.authorize_read(&headers).await?;
    let name = super::params::index_file_name(&path)?;
    let name = name.as_str();
    // A stage token sees its stage's view, here as under `/stages/{id}/`.
    if let Some(stage) = reader.and_then(|t| t.stage) {
        return super::staging::view_file(&app, &stage, name).await;
    }
    let Some(file) = app.store.index_file(name).await? else {
        return Err(ApiError::not_found(format!(
            "crate `{name}` does not exist"
        )));
    };
    let last_modified = httpdate::fmt_http_date(file.last_modified);
    if not_modified(&headers, &file.etag, file.last_modified) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_validators(response.headers_mut(), &file.etag, &last_modified);
        return Ok(response);
    }
    let mut response = file.content.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    set_validators(h, &file.etag, &last_modified);
    Ok(response)
}

fn set_validators(h: &mut HeaderMap, etag: &str, last_modified: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
}

/// RFC 9110: `If-None-Match` wins over `If-Modified-Since` when both are sent.
fn not_modified(headers: &HeaderMap, etag: &str, modified: std::time::SystemTime) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let inm = inm.to_str().unwrap_or_default();
        return inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*");
    }
    if let Some(ims) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    {
        // HTTP dates have whole seconds; compare at that precision.
        let secs = |t: std::time::SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs()
        };
        return secs(modified) <= secs(ims);
    }
    false
}
