//! Staged releases (`docs/STAGING.md`): the stage API under
//! `/api/v1/convoy`, and each stage's own view of the index under
//! `/stages/{id}/`.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use convoy_protocol::api::OwnersChangeResponse;
use convoy_protocol::index::RegistryConfig;
use convoy_protocol::scope::EndpointScope;
use convoy_protocol::staging::{Stage, StageList, StageRequest};
use convoy_store::{AuthenticatedToken, StageRecord};

use crate::{ApiError, App};

/// A stage lives an hour unless asked otherwise, and a day at most.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(86_400);

fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    convoy_protocol::index::format_timestamp(secs)
}

impl App {
    fn stage_json(&self, record: StageRecord, token: Option<String>) -> Stage {
        let base = &self.settings.public_url;
        Stage {
            index: format!("sparse+{base}/stages/{}/index/", record.id),
            id: record.id,
            state: record.state,
            created_by: record.login,
            created_at: rfc3339(record.created_at),
            expires_at: rfc3339(record.expires_at),
            crates: record.crates,
            token,
        }
    }

    /// The stage `id` if the caller may do `action` on it. Only its own
    /// stage token or a token of its creator may see it at all; anyone else
    /// gets 404, so stage ids reveal nothing. Then the token needs the
    /// scopes of what the action stands for: a stage holds uploads, so
    /// every stage route is a publish route, and committing or aborting
    /// publishes or discards each staged crate, so the token's crate globs
    /// must cover every one of them.
    async fn owned_stage(
        &self,
        token: &AuthenticatedToken,
        id: &str,
        action: StageAction,
    ) -> Result<StageRecord, ApiError> {
        let id = super::params::stage_id(id)?;
        let not_found = || ApiError::not_found(format!("staged release `{id}` does not exist"));
        let record = self.store.stage(id).await?.ok_or_else(not_found)?;
        let allowed = match &token.stage {
            Some(stage) => stage == id,
            None => token.user_id == record.user_id,
        };
        if !allowed {
            return Err(not_found());
        }
        if !can_publish(token) {
            return Err(ApiError::forbidden(format!(
                "{} a staged release needs a token with `publish-new` or `publish-update`",
                action.verb()
            )));
        }
        if matches!(action, StageAction::Commit | StageAction::Abort) {
            let refused: Vec<String> = record
                .crates
                .iter()
                .filter(|c| {
                    !token.allows(EndpointScope::PublishNew, &c.name)
                        && !token.allows(EndpointScope::PublishUpdate, &c.name)
                })
                .map(|c| {
                    format!(
                        "this token does not allow publishing crate `{}`, which the stage holds",
                        c.name
                    )
                })
                .collect();
            if !refused.is_empty() {
                return Err(ApiError::many(StatusCode::FORBIDDEN, refused));
            }
        }
        Ok(record)
    }
}

/// What a stage route does, for [`App::owned_stage`].
#[derive(Debug, Clone, Copy)]
enum StageAction {
    View,
    Extend,
    Abort,
    Commit,
}

impl StageAction {
    fn verb(self) -> &'static str {
        match self {
            StageAction::View => "viewing",
            StageAction::Extend => "extending",
            StageAction::Abort => "aborting",
            StageAction::Commit => "committing",
        }
    }
}

fn can_publish(token: &AuthenticatedToken) -> bool {
    token
        .scopes
        .iter()
        .any(|s| matches!(s, EndpointScope::PublishNew | EndpointScope::PublishUpdate))
}

fn ttl_of(body: &[u8]) -> Result<Duration, ApiError> {
    if body.is_empty() {
        return Ok(DEFAULT_TTL);
    }
    let request: StageRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid stage request: {e}")))?;
    Ok(request
        .ttl_secs
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TTL)
        .clamp(Duration::from_secs(1), MAX_TTL))
}

/// `POST /api/v1/convoy/stages`: opens a stage and hands out its token.
pub(crate) async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    if token.stage.is_some() {
        return Err(ApiError::forbidden(
            "a stage token cannot open another stage",
        ));
    }
    if !can_publish(&token) {
        return Err(ApiError::forbidden(
            "opening a stage needs a token with `publish-new` or `publish-update`",
        ));
    }
    let ttl = ttl_of(&body)?;
    let (record, secret) = app.store.create_stage(&token, ttl).await?;
    tracing::info!(stage = %record.id, user = %token.login, "stage opened");
    let stage = app.stage_json(record, Some(secret.expose().to_owned()));
    Ok((StatusCode::CREATED, axum::Json(stage)).into_response())
}

/// `GET /api/v1/convoy/stages`: the caller's open stages.
pub(crate) async fn list(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    if !can_publish(&token) {
        return Err(ApiError::forbidden(
            "listing staged releases needs a token with `publish-new` or `publish-update`",
        ));
    }
    let records = match &token.stage {
        Some(id) => app.store.stage(id).await?.into_iter().collect(),
        None => app.store.open_stages(token.user_id).await?,
    };
    let stages = records
        .into_iter()
        .map(|r| app.stage_json(r, None))
        .collect();
    Ok(axum::Json(StageList { stages }).into_response())
}

/// `GET /api/v1/convoy/stages/{id}`.
pub(crate) async fn show(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    let record = app.owned_stage(&token, &id, StageAction::View).await?;
    Ok(axum::Json(app.stage_json(record, None)).into_response())
}

/// `POST /api/v1/convoy/stages/{id}/extend`.
pub(crate) async fn extend(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    app.owned_stage(&token, &id, StageAction::Extend).await?;
    let record = app.store.extend_stage(&id, ttl_of(&body)?).await?;
    Ok(axum::Json(app.stage_json(record, None)).into_response())
}

/// `POST /api/v1/convoy/stages/{id}/commit`: everything becomes visible at
/// once, or nothing changes.
pub(crate) async fn commit(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    app.owned_stage(&token, &id, StageAction::Commit).await?;
    let release = app.store.commit_stage(&id, token.user_id).await?;
    tracing::info!(stage = %id, user = %token.login, crates = release.crates.len(), "release committed");
    Ok(axum::Json(release).into_response())
}

/// `DELETE /api/v1/convoy/stages/{id}`: abort.
pub(crate) async fn abort(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    app.owned_stage(&token, &id, StageAction::Abort).await?;
    let record = app.store.abort_stage(&id).await?;
    tracing::info!(stage = %id, user = %token.login, "stage aborted");
    Ok(axum::Json(app.stage_json(record, None)).into_response())
}

/// `GET /api/v1/convoy/releases/{id}`.
pub(crate) async fn release(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authorize_read(&headers).await?;
    let id = super::params::stage_id(&id)?;
    let release = app
        .store
        .release(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release `{id}` does not exist")))?;
    Ok(axum::Json(release).into_response())
}

/// `DELETE /api/v1/convoy/releases/{id}/yank`.
pub(crate) async fn yank(
    state: State<App>,
    path: Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_release_yanked(state, path, headers, true).await
}

/// `PUT /api/v1/convoy/releases/{id}/unyank`.
pub(crate) async fn unyank(
    state: State<App>,
    path: Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_release_yanked(state, path, headers, false).await
}

async fn set_release_yanked(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    yanked: bool,
) -> Result<Response, ApiError> {
    let token = app.authenticate(&headers).await?;
    let id = super::params::stage_id(&id)?.to_owned();
    let release = app
        .store
        .release(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("release `{id}` does not exist")))?;
    for krate in &release.crates {
        crate::auth::require_scope(&token, EndpointScope::Yank, &krate.name)?;
    }
    let release = app.store.yank_release(&id, yanked, token.user_id).await?;
    let verb = if yanked { "yanked" } else { "restored" };
    let msg = format!("{verb} {} crate(s) of release `{id}`", release.crates.len());
    Ok(axum::Json(OwnersChangeResponse { ok: true, msg }).into_response())
}

/// The stage named in a staging-view request, if the caller holds its
/// token or is its creator; 401 without a token, so cargo retries with one.
async fn view_access(app: &App, id: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = app.authenticate(headers).await?;
    app.owned_stage(&token, id, StageAction::View).await?;
    Ok(())
}

/// `GET /stages/{id}/index/config.json`.
pub(crate) async fn view_config(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view_access(&app, &id, &headers).await?;
    let base = &app.settings.public_url;
    let config = RegistryConfig {
        dl: format!("{base}/stages/{id}/dl"),
        api: Some(base.clone()),
        auth_required: true,
        convoy_staging: None,
        convoy_companions: None,
    };
    Ok(private(axum::Json(config).into_response()))
}

/// `GET /stages/{id}/index/{path}`.
pub(crate) async fn view_index(
    State(app): State<App>,
    Path((id, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view_access(&app, &id, &headers).await?;
    let name = super::params::index_file_name(&path)?;
    view_file(&app, &id, name.as_str()).await
}

/// The stage's view of one index file: published plus staged lines. Never
/// cached by anyone but the caller.
pub(crate) async fn view_file(app: &App, stage: &str, name: &str) -> Result<Response, ApiError> {
    let Some(content) = app.store.stage_index_file(stage, name).await? else {
        return Err(ApiError::not_found(format!(
            "crate `{name}` does not exist"
        )));
    };
    let mut response = content.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(private(response))
}

/// `GET /stages/{id}/dl/{name}/{version}/download`.
pub(crate) async fn view_download(
    State(app): State<App>,
    Path((id, name, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    view_access(&app, &id, &headers).await?;
    let not_found = || {
        ApiError::not_found(format!(
            "crate {} does not exist",
            super::params::describe(&name, &version)
        ))
    };
    let name = super::params::crate_name(&name)?;
    let cksum = app
        .store
        .stage_download(&id, name.as_str(), &version)
        .await?
        .ok_or_else(not_found)?;
    let bytes = app.blobs.get(&cksum).await?.ok_or_else(not_found)?;
    let mut response = axum::body::Body::from(bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    Ok(private(response))
}

fn private(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}
