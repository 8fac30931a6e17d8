//! The registry's web UI: pages a person can browse, rendered on the server
//! from the same [`Store`] the registry serves cargo from.
//!
//! Everything is plain HTML from templates compiled into the binary (maud)
//! plus one stylesheet; no page needs JavaScript. The URL contract (`/`,
//! `/search`, `/crates/NAME[/VERSION]`, `/crates/NAME/reverse_dependencies`,
//! `/releases/ID`, `/users/NAME`, `/login`, `/logout`) is what tests and
//! tools rely on; `docs/WEB.md` describes it.
//!
//! On a private registry every page needs a session: logging in with a
//! registry token sets a cookie signed with a key kept in the store
//! ([`Store::session_key`]), so all nodes that share a store accept each
//! other's sessions.

mod cache;
mod chart;
mod pages;
mod readme;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use convoy_store::Store;

/// How the UI presents the registry.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Root URL clients use, without a trailing slash.
    pub public_url: String,
    /// Whether every page needs a login.
    pub auth_required: bool,
    /// The name the install snippets give the registry in cargo's config.
    pub registry_name: String,
}

/// Shared by every request.
#[derive(Clone)]
pub(crate) struct Web {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Arc<WebConfig>,
    pub(crate) cache: Arc<cache::PageCache>,
    key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
}

impl Web {
    /// The session-signing key, read from the store once.
    pub(crate) async fn key(&self) -> Result<&[u8], convoy_store::StoreError> {
        self.key
            .get_or_try_init(|| self.store.session_key())
            .await
            .map(Vec::as_slice)
    }

    /// Whether cookies must carry `Secure`.
    pub(crate) fn secure(&self) -> bool {
        self.config.public_url.starts_with("https://")
    }
}

/// The UI's routes, to be merged at the registry's root. None of them
/// overlaps the registry's own (`/index/…`, `/api/v1/…`, `/stages/…`,
/// `/me`).
pub fn router(store: Arc<dyn Store>, config: WebConfig) -> Router {
    let web = Web {
        store,
        config: Arc::new(config),
        cache: Arc::new(cache::PageCache::default()),
        key: Arc::default(),
    };
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/crates/{name}", get(pages::crate_latest))
        .route(
            "/crates/{name}/reverse_dependencies",
            get(pages::reverse_dependencies),
        )
        .route("/crates/{name}/{version}", get(pages::crate_version))
        .route("/releases/{id}", get(pages::release))
        .route("/users/{login}", get(pages::user))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/static/style.css", get(pages::stylesheet))
        .with_state(web)
}
