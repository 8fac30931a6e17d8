//! Routes, grouped by the cargo command that calls them.

mod companions;
mod crates;
mod index;
mod params;
mod publish;
mod staging;
mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::App;

pub(crate) fn router(app: App) -> Router {
    // The publish handler reads its body with its own limit and answers 413
    // in cargo's JSON envelope, so axum's default limit must not cut in first.
    Router::new()
        // Used by every cargo command that resolves dependencies.
        .route("/index/config.json", get(index::config))
        .route("/index/{*path}", get(index::file))
        // `cargo publish`.
        .route(
            "/api/v1/crates/new",
            put(publish::publish).layer(DefaultBodyLimit::disable()),
        )
        // `cargo search`.
        .route("/api/v1/crates", get(crates::search))
        // Downloads, through the `dl` template.
        .route(
            "/api/v1/crates/{name}/{version}/download",
            get(crates::download),
        )
        // `cargo yank [--undo]`.
        .route("/api/v1/crates/{name}/{version}/yank", delete(crates::yank))
        .route(
            "/api/v1/crates/{name}/{version}/unyank",
            put(crates::unyank),
        )
        // `cargo owner`.
        .route(
            "/api/v1/crates/{name}/owners",
            get(crates::list_owners)
                .put(crates::add_owners)
                .delete(crates::remove_owners),
        )
        // Convoy's staged releases (docs/STAGING.md).
        .route(
            "/api/v1/convoy/stages",
            post(staging::create).get(staging::list),
        )
        .route(
            "/api/v1/convoy/stages/{id}",
            get(staging::show).delete(staging::abort),
        )
        .route("/api/v1/convoy/stages/{id}/extend", post(staging::extend))
        .route("/api/v1/convoy/stages/{id}/commit", post(staging::commit))
        .route("/api/v1/convoy/releases/{id}", get(staging::release))
        .route("/api/v1/convoy/releases/{id}/yank", delete(staging::yank))
        .route("/api/v1/convoy/releases/{id}/unyank", put(staging::unyank))
        .route("/stages/{id}/index/config.json", get(staging::view_config))
        .route("/stages/{id}/index/{*path}", get(staging::view_index))
        .route(
            "/stages/{id}/dl/{name}/{version}/download",
            get(staging::view_download),
        )
        // Convoy's companions (docs/SUBLIBRARIES.md): the parent's page.
        .route(
            "/api/v1/convoy/crates/{name}/companions",
            get(companions::list),
        )
        // Token self-service, crates.io-compatible.
        .route("/api/v1/tokens/current", delete(tokens::revoke_current))
        .route("/api/v1/me/tokens", get(tokens::list).put(tokens::create))
        .route("/api/v1/me/tokens/{id}", delete(tokens::revoke))
        // Where `cargo login` sends people for a token.
        .route("/me", get(crates::me))
        .layer(TraceLayer::new_for_http())
        // The second line of defence: no input may panic a handler, but if
        // one does, the client gets a 500 in cargo's envelope and the log
        // gets the message with its control characters escaped.
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(app)
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(
        panic = %convoy_protocol::text::quote_at_most(message, 500),
        "handler panicked"
    );
    axum::response::IntoResponse::into_response(crate::ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal server error",
    ))
}
