//! Routes, grouped by the cargo command that calls them.

mod companions;
mod crates;
mod index;
mod publish;
mod staging;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
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
        // Where `cargo login` sends people for a token.
        .route("/me", get(crates::me))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}
