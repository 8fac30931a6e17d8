//! The markup: one layout around every page, and the page bodies. Bodies
//! depend only on registry data, so crate pages can be cached; the layout
//! carries what is per request (the login state and the CSRF token).

use std::collections::BTreeMap;

use convoy_protocol::index::{DependencyKind, IndexDependency};
use convoy_store::{CrateDetails, CrateSummary, Dependent, Release, Totals, VersionMeta};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::WebConfig;

/// Who is looking, for the header.
pub(crate) struct Chrome<'a> {
    /// The logged-in user.
    pub(crate) login: Option<&'a str>,
    /// The CSRF token for the forms on this page.
    pub(crate) csrf: &'a str,
    /// Whether login links are shown at all.
    pub(crate) private: bool,
}

pub(crate) fn layout(chrome: &Chrome<'_>, title: &str, body: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header {
                    nav aria-label="Site" {
                        a.brand href="/" { "Convoy registry" }
                        form.search action="/search" method="get" role="search" {
                            label for="nav-q" class="visually-hidden" { "Search crates" }
                            input id="nav-q" type="search" name="q" placeholder="Search crates";
                            button type="submit" { "Search" }
                        }
                        @if let Some(login) = chrome.login {
                            span.who { "Logged in as " a href=(format!("/users/{login}")) { (login) } }
                            form.inline action="/logout" method="post" {
                                input type="hidden" name="csrf" value=(chrome.csrf);
                                button type="submit" { "Log out" }
                            }
                        } @else if chrome.private {
                            a href="/login" { "Log in" }
                        }
                    }
                }
                main { (PreEscaped(body)) }
                footer { "Served by Convoy" }
            }
        }
    }
    .into_string()
}

fn date(unix_secs: i64) -> String {
    crate::chart::day_label(unix_secs.div_euclid(86_400))
}

fn crate_list(list: &[CrateSummary], empty: &str) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { (empty) }
        } @else {
            ul.crates {
                @for c in list {
                    li {
                        a.name href=(format!("/crates/{}", c.name)) { (c.name) }
                        " " span.version { (c.max_version) }
                        @if let Some(d) = &c.description { p.description { (d) } }
                        p.muted { (c.downloads) " downloads · updated " (date(c.updated_at)) }
                    }
                }
            }
        }
    }
}

pub(crate) fn home(recent: &[CrateSummary], popular: &[CrateSummary], totals: Totals) -> Markup {
    html! {
        h1 { "Convoy registry" }
        form.big-search action="/search" method="get" role="search" {
            label for="q" { "Search crates" }
            input id="q" type="search" name="q" placeholder="name or description";
            button type="submit" { "Search" }
        }
        p.totals {
            strong { (totals.crates) } " crates · "
            strong { (totals.versions) } " versions · "
            strong { (totals.downloads) } " downloads"
        }
        div.columns {
            section aria-labelledby="recent" {
                h2 id="recent" { "Recently published" }
                (crate_list(recent, "Nothing published yet."))
            }
            section aria-labelledby="popular" {
                h2 id="popular" { "Most downloaded" }
                (crate_list(popular, "Nothing downloaded yet."))
            }
        }
    }
}

pub(crate) fn search(
    query: &str,
    hits: &[CrateSummary],
    total: u64,
    page: u32,
    pages: u32,
) -> Markup {
    let link = |p: u32| {
        format!(
            "/search?{}",
            serde_urlencoded::to_string([("q", query), ("page", &p.to_string())])
                .unwrap_or_default()
        )
    };
    html! {
        h1 { "Search" }
        form.big-search action="/search" method="get" role="search" {
            label for="q" { "Search crates" }
            input id="q" type="search" name="q" value=(query);
            button type="submit" { "Search" }
        }
        p.muted id="result-count" { (total) " crates match " q { (query) } }
        (crate_list(hits, "No crate matches."))
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a rel="next" href=(link(page + 1)) { "Next →" } }
            }
        }
    }
}

/// Where a dependency's name links: its page here, crates.io, or nowhere.
fn dep_link(dep: &IndexDependency) -> Option<String> {
    let real = dep.package.as_deref().unwrap_or(&dep.name);
    match dep.registry.as_deref() {
        None => Some(format!("/crates/{real}")),
        Some(r)
            if r.contains("github.com/rust-lang/crates.io-index")
                || r.contains("index.crates.io") =>
        {
            Some(format!("https://crates.io/crates/{real}"))
        }
        Some(_) => None,
    }
}

fn kind_title(kind: DependencyKind) -> &'static str {
    match kind {
        DependencyKind::Normal => "Dependencies",
        DependencyKind::Build => "Build dependencies",
        DependencyKind::Dev => "Dev dependencies",
    }
}

/// Everything the crate page shows.
pub(crate) struct CratePage<'a> {
    pub(crate) details: &'a CrateDetails,
    /// Index into `details.versions`.
    pub(crate) shown: usize,
    pub(crate) meta: &'a VersionMeta,
    pub(crate) readme: Option<String>,
    pub(crate) dependents: &'a [Dependent],
    /// Companion crates (`docs/SUBLIBRARIES.md`): listed here and nowhere
    /// else.
    pub(crate) companions: &'a [String],
    pub(crate) chart: Markup,
    pub(crate) config: &'a WebConfig,
}

/// How many dependents the crate page lists before linking to the full page.
pub(crate) const DEPENDENTS_SHOWN: usize = 10;

pub(crate) fn crate_page(p: &CratePage<'_>) -> Markup {
    let d = p.details;
    let v = &d.versions[p.shown];
    let line = &v.line;
    let name = &d.name;
    let reg = &p.config.registry_name;
    let mut versions: Vec<_> = d.versions.iter().collect();
    versions.sort_by(|a, b| {
        let pa = semver::Version::parse(&a.line.vers).ok();
        let pb = semver::Version::parse(&b.line.vers).ok();
        pb.cmp(&pa)
    });
    let mut by_kind: BTreeMap<DependencyKind, Vec<&IndexDependency>> = BTreeMap::new();
    for dep in &line.deps {
        by_kind
            .entry(dep.kind.unwrap_or(DependencyKind::Normal))
            .or_default()
            .push(dep);
    }
    let mut features: BTreeMap<&String, &Vec<String>> = line.features.iter().collect();
    if let Some(f2) = &line.features2 {
        features.extend(f2.iter());
    }
    let downloads: u64 = d.versions.iter().map(|v| v.downloads).sum();
    html! {
        div.crate-head {
            h1 { (name) " " span.version { (line.vers) } }
            @if line.yanked { p.yanked-banner role="status" { span.yanked { "yanked" } " This version is yanked: new lock files will not select it." } }
            @if let Some(desc) = &d.description { p.description { (desc) } }
        }
        div.crate {
            article.readme aria-label="README" {
                @match &p.readme {
                    Some(html) => (PreEscaped(html)),
                    None => p.muted { "This version has no README." },
                }
            }
            aside {
                section aria-labelledby="install" {
                    h2 id="install" { "Install" }
                    p { "Run in your project:" }
                    pre { code { "cargo add " (name) "@" (line.vers) " --registry " (reg) } }
                    p { "Or add to " code { "Cargo.toml" } ":" }
                    pre { code { (name) " = { version = \"" (line.vers) "\", registry = \"" (reg) "\" }" } }
                    p { "With the registry in " code { ".cargo/config.toml" } ":" }
                    pre { code { "[registries]\n" (reg) " = { index = \"sparse+" (p.config.public_url) "/index/\" }" } }
                }
                section aria-labelledby="meta" {
                    h2 id="meta" { "Metadata" }
                    dl {
                        dt { "License" } dd { (p.meta.license.as_deref().unwrap_or("not given")) }
                        @if let Some(r) = &p.meta.repository { dt { "Repository" } dd { a rel="nofollow noopener" href=(r) { (r) } } }
                        @if let Some(h) = &p.meta.homepage { dt { "Homepage" } dd { a rel="nofollow noopener" href=(h) { (h) } } }
                        @if let Some(doc) = &p.meta.documentation { dt { "Documentation" } dd { a rel="nofollow noopener" href=(doc) { (doc) } } }
                        @if let Some(msrv) = &line.rust_version { dt { "Rust version" } dd { (msrv) } }
                        dt { "Published" } dd { (date(v.created_at)) " by " a href=(format!("/users/{}", v.published_by)) { (v.published_by) } }
                        @if let Some(rel) = &v.release { dt { "Release" } dd { a href=(format!("/releases/{rel}")) { (rel) } } }
                        dt { "Downloads" } dd { (downloads) " (this version " (v.downloads) ")" }
                    }
                    @if !p.meta.keywords.is_empty() {
                        h3 { "Keywords" }
                        ul.tags { @for k in &p.meta.keywords { li.keyword { (k) } } }
                    }
                    @if !p.meta.categories.is_empty() {
                        h3 { "Categories" }
                        ul.tags { @for c in &p.meta.categories { li.category { (c) } } }
                    }
                }
                section aria-labelledby="owners" {
                    h2 id="owners" { "Owners" }
                    ul { @for o in &d.owners { li { a href=(format!("/users/{o}")) { (o) } } } }
                }
                section aria-labelledby="downloads" {
                    h2 id="downloads" { "Downloads per day" }
                    (p.chart)
                }
            }
        }
        section aria-labelledby="versions" {
            h2 id="versions" { "Versions (" (versions.len()) ")" }
            ul.versions {
                @for ver in &versions {
                    li class=(if ver.line.yanked { "yanked-version" } else { "" }) {
                        a href=(format!("/crates/{name}/{}", ver.line.vers)) { (ver.line.vers) }
                        " " span.muted { (date(ver.created_at)) }
                        @if ver.line.yanked { " " span.yanked { "yanked" } }
                    }
                }
            }
        }
        section aria-labelledby="deps" {
            h2 id="deps" { "Dependencies of " (line.vers) }
            @if by_kind.is_empty() { p.muted { "None." } }
            @for (kind, deps) in &by_kind {
                h3 { (kind_title(*kind)) }
                ul.deps {
                    @for dep in deps {
                        li {
                            @let real = dep.package.as_deref().unwrap_or(&dep.name);
                            @match dep_link(dep) {
                                Some(href) => a.dep href=(href) { (real) },
                                None => span.dep { (real) },
                            }
                            " " code { (dep.req) }
                            @if dep.package.is_some() { " " span.muted { "as " (dep.name) } }
                            @if dep.optional { " " span.badge { "optional" } }
                            @if let Some(t) = &dep.target { " " span.muted { "for " code { (t) } } }
                            @if dep.registry.is_some() && dep_link(dep).is_some_and(|l| l.starts_with("https://crates.io")) { " " span.muted { "(crates.io)" } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="features" {
            h2 id="features" { "Features" }
            @if features.is_empty() { p.muted { "None." } }
            @else {
                ul.features {
                    @for (f, enables) in &features {
                        li { code { (f) } @if !enables.is_empty() { " → " (enables.join(", ")) } }
                    }
                }
            }
        }
        @if !p.companions.is_empty() {
            section aria-labelledby="companions" {
                h2 id="companions" { "Companions" }
                p.muted { "Published and yanked together with " (name) "." }
                ul.companions {
                    @for c in p.companions { li { a.companion href=(format!("/crates/{c}")) { (c) } } }
                }
            }
        }
        section aria-labelledby="dependents" {
            h2 id="dependents" { "Dependents" }
            (dependents_list(&p.dependents[..p.dependents.len().min(DEPENDENTS_SHOWN)]))
            @if !p.dependents.is_empty() {
                p { a href=(format!("/crates/{name}/reverse_dependencies")) { "All " (p.dependents.len()) " dependents" } }
            }
        }
    }
}

pub(crate) fn dependents_list(list: &[Dependent]) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { "No crate in this registry depends on it." }
        } @else {
            ul.dependents {
                @for d in list {
                    li {
                        a.dependent href=(format!("/crates/{}/{}", d.name, d.version)) { (d.name) " " (d.version) }
                        " " span.muted { "requires " code { (d.req) } }
                        @if d.kind != DependencyKind::Normal { " " span.badge { (format!("{:?}", d.kind).to_lowercase()) } }
                    }
                }
            }
        }
    }
}

pub(crate) fn reverse_dependencies(name: &str, list: &[Dependent]) -> Markup {
    html! {
        h1 { "Dependents of " a href=(format!("/crates/{name}")) { (name) } }
        (dependents_list(list))
    }
}

pub(crate) fn release(r: &Release) -> Markup {
    let yanked = r.crates.iter().filter(|c| c.yanked).count();
    let state = match yanked {
        0 => "live",
        n if n == r.crates.len() => "yanked",
        _ => "partly yanked",
    };
    html! {
        h1 { "Release " code { (r.id) } }
        p {
            "Committed " (r.committed_at) " by " a href=(format!("/users/{}", r.committed_by)) { (r.committed_by) }
            ". State: " strong.release-state { (state) }
        }
        table {
            thead { tr { th scope="col" { "Crate" } th scope="col" { "Version" } th scope="col" { "State" } } }
            tbody {
                @for c in &r.crates {
                    tr {
                        td { a href=(format!("/crates/{}", c.name)) { (c.name) } }
                        td { a href=(format!("/crates/{}/{}", c.name, c.vers)) { (c.vers) } }
                        td { @if c.yanked { span.yanked { "yanked" } } @else { "live" } }
                    }
                }
            }
        }
    }
}

pub(crate) fn user(login: &str, crates: &[CrateSummary]) -> Markup {
    html! {
        h1 { "Crates owned by " (login) }
        (crate_list(crates, "This user owns no published crate."))
    }
}

pub(crate) fn login(next: &str, csrf: &str, problem: Option<&str>) -> Markup {
    html! {
        h1 { "Log in" }
        p { "This registry is private. Log in with a registry token (the one cargo uses; " code { "cargo convoy token create" } " makes one)." }
        @if let Some(problem) = problem { p.error role="alert" { (problem) } }
        form.login action="/login" method="post" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            label for="token" { "Token" }
            input id="token" type="password" name="token" autocomplete="off" required;
            button type="submit" { "Log in" }
        }
    }
}

pub(crate) fn message(heading: &str, text: &str) -> Markup {
    html! {
        h1 { (heading) }
        p { (text) }
        p { a href="/" { "Back to the start page" } }
    }
}
