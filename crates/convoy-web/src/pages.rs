//! The handlers: who may look, what to fetch, and the response around the
//! markup of `view`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use convoy_protocol::name::canonical_name;
use convoy_store::{CrateDetails, StoreError};
use maud::Markup;
use serde::Deserialize;

use crate::cache::Page;
use crate::session::{self, CSRF_COOKIE, SESSION_COOKIE, SESSION_TTL};
use crate::view::{self, Chrome};
use crate::{Web, chart, readme};

/// Search results per page.
const PER_PAGE: u32 = 20;
/// Highest page number served; deeper pages are clamped.
const MAX_PAGE: u32 = 10_000;
/// Longest search query kept, in characters.
const MAX_QUERY_CHARS: usize = 200;
/// Crates listed in each column of the home page.
const HOME_LIST: u32 = 10;

/// A request's view of the visitor.
struct Visitor {
    key: Vec<u8>,
    login: Option<String>,
    nonce: String,
    new_nonce: bool,
    /// Whether the page got a form token, so the nonce cookie must go out.
    csrf_used: std::cell::Cell<bool>,
}

impl Visitor {
    /// The token for a POST form on this page. Only pages with such a form
    /// (the login page, and every page of a logged-in visitor) call it, so
    /// anonymous pages carry no cookie.
    fn csrf(&self) -> String {
        self.csrf_used.set(true);
        session::csrf_token(&self.key, &self.nonce)
    }
}

/// Reads the visitor from the cookies; on a private registry, a visitor
/// without a session gets the login page (401) and nothing else.
async fn visitor(web: &Web, headers: &HeaderMap, path: &str) -> Result<Visitor, Response> {
    let visitor = read_visitor(web, headers).await?;
    if web.config.auth_required && visitor.login.is_none() {
        let body = view::login(path, &visitor.csrf(), None);
        return Err(respond(
            web,
            &visitor,
            StatusCode::UNAUTHORIZED,
            "Log in – Convoy registry",
            &body.into_string(),
        ));
    }
    Ok(visitor)
}

async fn read_visitor(web: &Web, headers: &HeaderMap) -> Result<Visitor, Response> {
    let key = match web.key().await {
        Ok(key) => key.to_vec(),
        Err(e) => return Err(internal(&e)),
    };
    let login =
        session::cookie(headers, SESSION_COOKIE).and_then(|value| session::verify(&key, value));
    let (nonce, new_nonce) = match session::cookie(headers, CSRF_COOKIE) {
        Some(n) if n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (n.to_owned(), false)
        }
        _ => (session::new_nonce(), true),
    };
    Ok(Visitor {
        key,
        login,
        nonce,
        new_nonce,
        csrf_used: std::cell::Cell::new(false),
    })
}

/// The page in the layout, with the headers every page carries.
fn respond(web: &Web, visitor: &Visitor, status: StatusCode, title: &str, body: &str) -> Response {
    let csrf = visitor.login.as_ref().map(|_| visitor.csrf());
    let chrome = Chrome {
        login: visitor.login.as_deref(),
        csrf: csrf.as_deref().unwrap_or_default(),
        private: web.config.auth_required,
    };
    let html = view::layout(&chrome, title, body);
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // No page needs a script; README images may come from anywhere.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src http: https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let cache = if web.config.auth_required {
        "private, no-store"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if visitor.new_nonce && visitor.csrf_used.get() {
        h.append(
            header::SET_COOKIE,
            session::set_cookie(
                CSRF_COOKIE,
                &visitor.nonce,
                SESSION_TTL.as_secs(),
                web.secure(),
            ),
        );
    }
    response
}

fn page(web: &Web, visitor: &Visitor, title: &str, body: Markup) -> Response {
    respond(web, visitor, StatusCode::OK, title, &body.into_string())
}

fn not_found(web: &Web, visitor: &Visitor, what: &str) -> Response {
    let body = view::message("Not found", what);
    respond(
        web,
        visitor,
        StatusCode::NOT_FOUND,
        "Not found – Convoy registry",
        &body.into_string(),
    )
}

/// The store failed: logged here, and a page without details for the
/// visitor.
fn internal(e: &StoreError) -> Response {
    tracing::error!(error = %e, "web page failed");
    let body = view::message(
        "Something went wrong",
        "The registry could not answer this request. Try again later.",
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response()
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return internal(&e),
        }
    };
}

macro_rules! visitor_or_return {
    ($web:expr, $headers:expr, $path:expr) => {
        match visitor(&$web, &$headers, $path).await {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

pub(crate) async fn home(State(web): State<Web>, headers: HeaderMap) -> Response {
    let visitor = visitor_or_return!(web, headers, "/");
    let recent = tri!(web.store.recent_crates(HOME_LIST).await);
    let popular = tri!(web.store.most_downloaded(HOME_LIST).await);
    let totals = tri!(web.store.totals().await);
    page(
        &web,
        &visitor,
        "Convoy registry",
        view::home(&recent, &popular, totals),
    )
}

/// `q` and `page`, read leniently: a malformed parameter is ignored rather
/// than refused.
fn search_params(raw: Option<&str>) -> (String, u32) {
    let pairs: Vec<(String, String)> = raw
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let query: String = get("q")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    let page = get("page")
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGE);
    (query, page)
}

pub(crate) async fn search(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let visitor = visitor_or_return!(web, headers, "/search");
    let (query, page_no) = search_params(raw.as_deref());
    let (hits, total) = tri!(web.store.search_summaries(&query, page_no, PER_PAGE).await);
    let pages = u32::try_from(total.div_ceil(u64::from(PER_PAGE))).unwrap_or(MAX_PAGE);
    page(
        &web,
        &visitor,
        &format!("Search: {query} – Convoy registry"),
        view::search(&query, &hits, total, page_no, pages),
    )
}

pub(crate) async fn crate_latest(
    State(web): State<Web>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    crate_page(web, headers, name, None).await
}

pub(crate) async fn crate_version(
    State(web): State<Web>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    crate_page(web, headers, name, Some(version)).await
}

/// The version `/crates/NAME` shows: the highest non-yanked one, or the
/// highest when all are yanked.
fn latest(details: &CrateDetails) -> usize {
    let best = |live: bool| {
        details
            .versions
            .iter()
            .enumerate()
            .filter(|(_, v)| !live || !v.line.yanked)
            .filter_map(|(i, v)| semver::Version::parse(&v.line.vers).ok().map(|p| (p, i)))
            .max()
            .map(|(_, i)| i)
    };
    best(true).or_else(|| best(false)).unwrap_or(0)
}

async fn crate_page(
    web: Web,
    headers: HeaderMap,
    name: String,
    version: Option<String>,
) -> Response {
    let path = format!("/crates/{name}");
    let visitor = visitor_or_return!(web, headers, &path);
    let missing = || match &version {
        Some(v) => format!("The crate `{name}` has no version `{v}` here."),
        None => format!("There is no crate named `{name}` here."),
    };
    // The index file's etag changes with every publish and yank of the
    // crate: it keys the cache.
    let Some(index) = tri!(web.store.index_file(&name).await) else {
        return not_found(&web, &visitor, &missing());
    };
    let key = (
        "crate",
        canonical_name(&name),
        version.clone().unwrap_or_default(),
    );
    if let Some(cached) = web.cache.get(&key, &index.etag) {
        return respond(&web, &visitor, StatusCode::OK, &cached.title, &cached.body);
    }
    let Some(details) = tri!(web.store.crate_details(&name).await) else {
        return not_found(&web, &visitor, &missing());
    };
    let shown = match &version {
        Some(v) => match details.versions.iter().position(|x| &x.line.vers == v) {
            Some(i) => i,
            None => return not_found(&web, &visitor, &missing()),
        },
        None => latest(&details),
    };
    let vers = details.versions[shown].line.vers.clone();
    let meta = tri!(web.store.version_meta(&details.name, &vers).await).unwrap_or_default();
    let dependents = tri!(web.store.reverse_dependencies(&details.name).await);
    let daily = tri!(web.store.daily_downloads(&details.name, chart::DAYS).await);
    let companions = tri!(web.store.companions(&details.name).await);
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 / 86_400)
        .unwrap_or(0);
    let readme = meta
        .readme
        .as_deref()
        .map(|md| readme::render(md, meta.repository.as_deref(), meta.readme_file.as_deref()));
    let body = view::crate_page(&view::CratePage {
        details: &details,
        shown,
        meta: &meta,
        readme,
        dependents: &dependents,
        companions: &companions,
        chart: chart::downloads(&daily, today),
        config: &web.config,
    });
    let page = Arc::new(Page {
        title: format!("{} {vers} – Convoy registry", details.name),
        body: body.into_string(),
    });
    web.cache.put(key, index.etag, Arc::clone(&page));
    respond(&web, &visitor, StatusCode::OK, &page.title, &page.body)
}

pub(crate) async fn reverse_dependencies(
    State(web): State<Web>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visitor = visitor_or_return!(
        web,
        headers,
        &format!("/crates/{name}/reverse_dependencies")
    );
    let Some(details) = tri!(web.store.crate_details(&name).await) else {
        return not_found(
            &web,
            &visitor,
            &format!("There is no crate named `{name}` here."),
        );
    };
    let list = tri!(web.store.reverse_dependencies(&details.name).await);
    page(
        &web,
        &visitor,
        &format!("Dependents of {} – Convoy registry", details.name),
        view::reverse_dependencies(&details.name, &list),
    )
}

pub(crate) async fn release(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visitor = visitor_or_return!(web, headers, &format!("/releases/{id}"));
    // Only committed stages are releases; an open stage is not found.
    let Some(release) = tri!(web.store.release(&id).await) else {
        return not_found(&web, &visitor, &format!("There is no release `{id}` here."));
    };
    page(
        &web,
        &visitor,
        &format!("Release {id} – Convoy registry"),
        view::release(&release),
    )
}

pub(crate) async fn user(
    State(web): State<Web>,
    Path(login): Path<String>,
    headers: HeaderMap,
) -> Response {
    let visitor = visitor_or_return!(web, headers, &format!("/users/{login}"));
    let Some(crates) = tri!(web.store.user_crates(&login).await) else {
        return not_found(&web, &visitor, &format!("There is no user `{login}` here."));
    };
    page(
        &web,
        &visitor,
        &format!("{login} – Convoy registry"),
        view::user(&login, &crates),
    )
}

/// Where to go after logging in: only a path on this site.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
}

pub(crate) async fn login_form(
    State(web): State<Web>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let visitor = match read_visitor(&web, &headers).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let pairs: Vec<(String, String)> = raw
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let next = local_path(
        pairs
            .iter()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.as_str()),
    );
    page(
        &web,
        &visitor,
        "Log in – Convoy registry",
        view::login(&next, &visitor.csrf(), None),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

fn forbidden(web: &Web, visitor: &Visitor) -> Response {
    let body = view::message(
        "Form expired",
        "This form could not be verified (a missing or stale CSRF token). Reload the page and try again.",
    );
    respond(
        web,
        visitor,
        StatusCode::FORBIDDEN,
        "Form expired – Convoy registry",
        &body.into_string(),
    )
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

pub(crate) async fn login(State(web): State<Web>, headers: HeaderMap, body: Bytes) -> Response {
    let visitor = match read_visitor(&web, &headers).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return forbidden(&web, &visitor);
    };
    if !session::csrf_ok(&visitor.key, &headers, &form.csrf) {
        return forbidden(&web, &visitor);
    }
    let next = local_path(form.next.as_deref());
    let token = tri!(web.store.authenticate(form.token.trim()).await);
    // A stage token belongs to a release in progress, not to a person.
    let Some(token) = token.filter(|t| t.stage.is_none()) else {
        let body = view::login(
            &next,
            &visitor.csrf(),
            Some("That token is invalid or expired."),
        );
        return respond(
            &web,
            &visitor,
            StatusCode::UNAUTHORIZED,
            "Log in – Convoy registry",
            &body.into_string(),
        );
    };
    tracing::info!(user = %token.login, "web login");
    let mut response = see_other(&next);
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(
            SESSION_COOKIE,
            &session::issue(&visitor.key, &token.login),
            SESSION_TTL.as_secs(),
            web.secure(),
        ),
    );
    response
}

pub(crate) async fn logout(State(web): State<Web>, headers: HeaderMap, body: Bytes) -> Response {
    let visitor = match read_visitor(&web, &headers).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let form = serde_urlencoded::from_bytes::<LogoutForm>(&body).ok();
    if !form.is_some_and(|f| session::csrf_ok(&visitor.key, &headers, &f.csrf)) {
        return forbidden(&web, &visitor);
    }
    let mut response = see_other("/");
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, "", 0, web.secure()),
    );
    response
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}
