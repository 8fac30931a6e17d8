//! Convoy's companion extension (`docs/SUBLIBRARIES.md`): what a parent's
//! page shows, since search and listings leave companions out.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, App};

/// `GET /api/v1/convoy/crates/{name}/companions`: the companions of crate
/// `name`, as `{"companions": ["…"]}`; an empty list for a crate without
/// any (or an unknown name), so the answer reveals nothing search hides.
pub(crate) async fn list(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authorize_read(&headers).await?;
    let companions = app.store.companions(&name).await?;
    Ok(axum::Json(serde_json::json!({ "companions": companions })).into_response())
}
