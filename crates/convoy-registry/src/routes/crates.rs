//! Per-crate endpoints: downloads, yank, owners, search.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use convoy_protocol::api::{
    OkResponse, OwnersChangeResponse, OwnersList, OwnersRequest, SearchMeta, SearchResponse,
};
use convoy_protocol::scope::EndpointScope;
use convoy_store::Blob;
use serde::Deserialize;

use convoy_protocol::text::quote;

use super::params::{crate_name, describe};
use crate::auth::require_scope;
use crate::{ApiError, App};

/// `GET /api/v1/crates/{name}/{version}/download`: the `.crate` bytes.
pub(crate) async fn download(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authorize_read(&headers).await?;
    let not_found = || {
        ApiError::not_found(format!(
            "crate {} does not exist",
            describe(&name, &version)
        ))
    };
    let name = crate_name(&name)?;
    let name = name.as_str();
    let Some(cksum) = app.store.download(name, &version).await? else {
        return Err(not_found());
    };
    let Some(blob) = app.blobs.fetch(&cksum).await? else {
        // The store guarantees the blob before the version row; a missing
        // blob means the blob storage was damaged from outside.
        tracing::error!(krate = %name, %version, %cksum, "blob missing for a published version");
        return Err(not_found());
    };
    let mut response = match blob {
        Blob::Bytes(bytes) => Body::from(bytes).into_response(),
        Blob::Stream { body, len } => {
            let mut response = Body::from_stream(body).into_response();
            if let Some(len) = len.and_then(|l| HeaderValue::from_str(&l.to_string()).ok()) {
                response.headers_mut().insert(header::CONTENT_LENGTH, len);
            }
            response
        }
        Blob::Redirect(url) => {
            let location = HeaderValue::from_str(&url).map_err(|e| ApiError::internal(&e))?;
            return Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response());
        }
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    Ok(response)
}

/// `DELETE /api/v1/crates/{name}/{version}/yank`, used by `cargo yank`.
pub(crate) async fn yank(
    state: State<App>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_yanked(state, path, headers, true).await
}

/// `PUT /api/v1/crates/{name}/{version}/unyank`, used by `cargo yank --undo`.
pub(crate) async fn unyank(
    state: State<App>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_yanked(state, path, headers, false).await
}

async fn set_yanked(
    State(app): State<App>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    yanked: bool,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    let name = crate_name(&name)?;
    require_scope(&token, EndpointScope::Yank, name.as_str())?;
    app.store
        .set_yanked(name.as_str(), &version, yanked, token.user_id)
        .await?;
    Ok(axum::Json(OkResponse { ok: true }).into_response())
}

/// `GET /api/v1/crates/{name}/owners`, used by `cargo owner --list`.
pub(crate) async fn list_owners(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authenticate(&headers).await?;
    let name = crate_name(&name)?;
    let users = app.store.owners(name.as_str()).await?;
    Ok(axum::Json(OwnersList { users }).into_response())
}

/// `PUT /api/v1/crates/{name}/owners`, used by `cargo owner --add`.
pub(crate) async fn add_owners(
    state: State<App>,
    path: Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    change_owners(state, path, headers, body, true).await
}

/// `DELETE /api/v1/crates/{name}/owners`, used by `cargo owner --remove`.
pub(crate) async fn remove_owners(
    state: State<App>,
    path: Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    change_owners(state, path, headers, body, false).await
}

async fn change_owners(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
    add: bool,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    let name = crate_name(&name)?;
    let name = name.as_str();
    require_scope(&token, EndpointScope::ChangeOwners, name)?;
    let request: OwnersRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid owners request: {e}")))?;
    let logins = request
        .users
        .iter()
        .map(|u| quote(u))
        .collect::<Vec<_>>()
        .join("`, `");
    let msg = if add {
        app.store
            .add_owners(name, &request.users, token.user_id)
            .await?;
        format!("user `{logins}` is now an owner of crate `{name}`")
    } else {
        app.store
            .remove_owners(name, &request.users, token.user_id)
            .await?;
        format!("user `{logins}` is no longer an owner of crate `{name}`")
    };
    Ok(axum::Json(OwnersChangeResponse { ok: true, msg }).into_response())
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
    per_page: Option<u32>,
    page: Option<u32>,
}

/// `GET /api/v1/crates?q=…&per_page=…`, used by `cargo search`.
pub(crate) async fn search(
    State(app): State<App>,
    Query(query): Query<SearchQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authorize_read(&headers).await?;
    let per_page = query.per_page.unwrap_or(10).clamp(1, 100);
    let page = query.page.unwrap_or(1).max(1);
    let (crates, total) = app.store.search(&query.q, page, per_page).await?;
    Ok(axum::Json(SearchResponse {
        crates,
        meta: SearchMeta { total },
    })
    .into_response())
}

/// `GET /me`: where `cargo login` points people.
pub(crate) async fn me() -> &'static str {
    "Convoy registry: tokens are created by the registry's administrator with\n\n    cargo convoy token create --data DIR --user NAME\n\nthen stored with `cargo login --registry NAME`.\n"
}
