//! Public pages.

use convoy_test_support::browser::Browser;
use convoy_test_support::{Cargo, REGISTRY, http};

use crate::{Fixture, publish_dir};

const README: &str = r#"# Alpha

Alpha does one thing.

## Usage

| Option | Meaning |
|--------|---------|
| fast   | go fast |

```rust
fn main() { alpha::go(); }
```

See the [guide](docs/guide.md).

<script>document.title = 'pwned-script'</script>

<img src="logo.png" alt="logo" onerror="document.title='pwned-img'">

<a href="javascript:document.title='pwned-link'">click me</a>

<iframe src="http://127.0.0.1:9/"></iframe>

<style>body { display: none }</style>

<p style="display:none" onclick="document.title='pwned-click'">styled</p>
"#;

/// alpha 0.1.0 (README, XSS payloads), alpha 0.2.0 yanked, beta depending on
/// alpha.
fn published() -> Fixture {
    let fx = Fixture::new(&[]);
    let alpha_meta = "repository = \"https://github.com/acme/alpha\"\nreadme = \"README.md\"\nkeywords = [\"demo\"]\ncategories = [\"development-tools\"]\n[features]\ndefault = [\"fast\"]\nfast = []\n";
    fx.publish("alpha", "0.1.0", alpha_meta, &[("README.md", README)]);
    fx.publish(
        "alpha",
        "0.2.0",
        alpha_meta,
        &[("README.md", "# Alpha two\n")],
    );
    let root = fx.cargo.root().join("alpha-0.2.0");
    fx.cargo
        .ok(&root, &["yank", "--registry", REGISTRY, "alpha@0.2.0"]);
    fx.publish(
        "beta",
        "0.1.0",
        &format!("[dependencies]\nalpha = {{ version = \"0.1\", registry = \"{REGISTRY}\" }}\n"),
        &[],
    );
    fx
}

#[test]
fn crate_page_shows_readme_versions_dependencies_and_dependents() {
    let fx = published();
    let b = Browser::start();

    b.goto(&fx.url("/crates/alpha"));
    // The latest non-yanked version is the one shown.
    assert_eq!(b.title(), "alpha 0.1.0 – Convoy registry");
    assert_eq!(b.texts(".readme h1"), ["Alpha"]);
    assert_eq!(b.texts(".readme h2"), ["Usage"]);
    assert_eq!(b.texts(".readme table th"), ["Option", "Meaning"]);
    assert_eq!(b.texts(".readme table td"), ["fast", "go fast"]);
    assert_eq!(b.texts(".readme pre code"), ["fn main() { alpha::go(); }"]);
    // Relative links resolve against the repository.
    assert!(
        b.attrs(".readme a", "href")
            .contains(&"https://github.com/acme/alpha/blob/HEAD/docs/guide.md".to_owned())
    );
    assert_eq!(
        b.attrs(".readme img", "src"),
        ["https://github.com/acme/alpha/raw/HEAD/logo.png"]
    );
    assert_eq!(b.texts(".keyword"), ["demo"]);
    assert_eq!(b.texts(".category"), ["development-tools"]);
    let meta = b.texts("aside dl dd");
    assert!(meta.iter().any(|d| d == "MIT"), "{meta:?}");
    assert!(
        meta.iter().any(|d| d == "https://github.com/acme/alpha"),
        "{meta:?}"
    );
    assert_eq!(b.texts(".features li code"), ["default", "fast"]);
    assert_eq!(b.texts("#owners + ul a"), ["alice"]);
    let install = b.texts("aside pre code");
    assert_eq!(install[0], "cargo add alpha@0.1.0 --registry convoy");
    assert!(install[2].contains(&format!("sparse+{}/index/", fx.server.url)));
    // Every version, the yanked one marked.
    assert_eq!(b.texts(".versions li a"), ["0.2.0", "0.1.0"]);
    assert_eq!(b.texts(".yanked-version a"), ["0.2.0"]);
    assert_eq!(b.texts(".versions .yanked"), ["yanked"]);
    assert!(b.texts(".yanked-banner").is_empty());
    // Dependents, linked.
    assert_eq!(b.texts("a.dependent"), ["beta 0.1.0"]);
    assert_eq!(b.attrs("a.dependent", "href"), ["/crates/beta/0.1.0"]);
    assert_eq!(
        b.eval("return document.querySelectorAll('svg.chart').length"),
        1
    );

    b.goto(&fx.url("/crates/alpha/0.2.0"));
    assert_eq!(b.title(), "alpha 0.2.0 – Convoy registry");
    assert_eq!(b.texts(".yanked-banner .yanked"), ["yanked"]);
    assert_eq!(b.texts(".readme h1"), ["Alpha two"]);

    b.goto(&fx.url("/crates/beta"));
    assert_eq!(b.texts("a.dep"), ["alpha"]);
    assert_eq!(b.attrs("a.dep", "href"), ["/crates/alpha"]);
    assert_eq!(b.texts("#deps ~ h3"), ["Dependencies"]);
    assert_eq!(b.texts("a.dependent"), Vec::<String>::new());

    b.goto(&fx.url("/crates/alpha/reverse_dependencies"));
    assert_eq!(b.texts("a.dependent"), ["beta 0.1.0"]);

    b.goto(&fx.url("/users/alice"));
    assert_eq!(b.texts("ul.crates a.name"), ["alpha", "beta"]);
}

#[test]
fn readme_and_description_scripts_are_inert() {
    let fx = Fixture::new(&[]);
    // A description with markup is text, not markup.
    let manifest = "[package]\nname = \"evil\"\nversion = \"1.0.0\"\nedition = \"2021\"\nlicense = \"MIT\"\nreadme = \"README.md\"\ndescription = \"<script>document.title='pwned-desc'</script>\"\n";
    let root = fx.cargo.project(
        "evil",
        &[
            ("Cargo.toml", manifest),
            ("src/lib.rs", ""),
            ("README.md", README),
        ],
    );
    publish_dir(&fx.cargo, &root);
    let b = Browser::start();
    b.goto(&fx.url("/crates/evil"));
    assert_eq!(b.title(), "evil 1.0.0 – Convoy registry");
    assert_eq!(b.eval("return document.scripts.length"), 0);
    let handlers = b.eval(
        "return [...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on'))",
    );
    assert_eq!(handlers, serde_json::json!([]));
    for css in [
        "iframe",
        "style",
        "[style]",
        "a[href^='javascript']",
        ".readme script",
    ] {
        assert_eq!(
            b.eval(&format!(
                "return document.querySelectorAll({}).length",
                serde_json::json!(css)
            )),
            0,
            "{css} survived"
        );
    }
    // The page is still visible: the injected `body { display: none }` did
    // nothing.
    assert_eq!(
        b.eval("return getComputedStyle(document.body).display"),
        "block"
    );
    assert_eq!(b.texts(".readme h1"), ["Alpha"]);
    assert_eq!(
        b.texts(".crate-head .description"),
        ["<script>document.title='pwned-desc'</script>"]
    );
}

#[test]
fn search_and_home_list_published_crates_only() {
    let fx = Fixture::new(&[]);
    fx.publish("alpha", "0.1.0", "", &[]);
    fx.publish("beta", "0.1.0", "", &[]);

    // gamma goes into a stage with real cargo, through the staging view.
    let stage: serde_json::Value = http()
        .post(fx.url("/api/v1/convoy/stages"))
        .header("Authorization", &fx.token)
        .body("{\"ttl_secs\": 600}")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = stage["id"].as_str().unwrap().to_owned();
    let mut staging = Cargo::new(&fx.server, Some(stage["token"].as_str().unwrap()));
    staging
        .env(
            "CARGO_REGISTRIES_CONVOY_INDEX",
            stage["index"].as_str().unwrap(),
        )
        .env("CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS", "cargo:token");
    let gamma = staging.project(
        "gamma",
        &[
            (
                "Cargo.toml",
                &convoy_test_support::manifest("gamma", "0.1.0", "readme = \"README.md\""),
            ),
            ("src/lib.rs", ""),
            ("README.md", "# Gamma staged\n"),
        ],
    );
    publish_dir(&staging, &gamma);

    let b = Browser::start();
    b.goto(&fx.url("/search?q=beta"));
    assert_eq!(b.texts("ul.crates a.name"), ["beta"]);
    assert_eq!(b.attrs("ul.crates a.name", "href"), ["/crates/beta"]);
    assert_eq!(b.texts("ul.crates .version"), ["0.1.0"]);
    assert_eq!(b.texts("ul.crates .description"), ["beta test crate"]);
    b.goto(&fx.url("/search?q=a"));
    assert_eq!(b.texts("ul.crates a.name"), ["alpha", "beta"]);
    b.goto(&fx.url("/search?q=gamma"));
    assert!(b.texts("ul.crates a.name").is_empty());
    b.goto(&fx.url("/"));
    let listed = b.texts("ul.crates a.name");
    assert!(listed.contains(&"alpha".to_owned()), "{listed:?}");
    assert!(!listed.contains(&"gamma".to_owned()), "{listed:?}");
    assert!(
        b.texts(".totals")
            .join(" ")
            .starts_with("2 crates · 2 versions")
    );
    b.goto(&fx.url("/crates/gamma"));
    assert_eq!(b.title(), "Not found – Convoy registry");
    b.goto(&fx.url(&format!("/releases/{id}")));
    assert_eq!(b.title(), "Not found – Convoy registry");
    b.goto(&fx.url("/users/alice"));
    assert_eq!(b.texts("ul.crates a.name"), ["alpha", "beta"]);

    // Committed, it appears, with its release.
    let resp = http()
        .post(fx.url(&format!("/api/v1/convoy/stages/{id}/commit")))
        .header("Authorization", &fx.token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
    b.goto(&fx.url("/crates/gamma"));
    assert_eq!(b.title(), "gamma 0.1.0 – Convoy registry");
    assert_eq!(b.texts(".readme h1"), ["Gamma staged"]);
    assert_eq!(
        b.attrs("aside a[href^='/releases/']", "href"),
        [format!("/releases/{id}")]
    );
    b.goto(&fx.url(&format!("/releases/{id}")));
    assert_eq!(b.texts("tbody td:first-child a"), ["gamma"]);
    assert_eq!(b.texts(".release-state"), ["live"]);
}

#[test]
fn http_status_codes_and_download_chart() {
    let fx = Fixture::new(&[]);
    fx.publish("alpha", "0.1.0", "", &[]);
    let client = http();
    let get = |path: &str| client.get(fx.url(path)).send().unwrap();
    for path in [
        "/crates/nope",
        "/crates/alpha/9.9.9",
        "/crates/nope/reverse_dependencies",
        "/releases/stg_nope",
        "/users/nobody",
    ] {
        let resp = get(path);
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(
            resp.headers()["content-type"],
            "text/html; charset=utf-8",
            "{path}"
        );
        assert!(
            resp.text().unwrap().contains("<h1>Not found</h1>"),
            "{path}"
        );
    }
    for path in [
        "/",
        "/search?q=alpha&page=abc",
        "/search?page=99999999999",
        "/crates/alpha",
        "/static/style.css",
    ] {
        assert_eq!(get(path).status(), 200, "{path}");
    }
    // A page without a form sets no cookie.
    assert!(get("/crates/alpha").headers().get("set-cookie").is_none());
    // The API keeps its own answers next to the UI.
    assert_eq!(get("/api/v1/crates?q=alpha").status(), 200);
    assert_eq!(get("/index/config.json").status(), 200);
    // Forms without their CSRF token are refused.
    let resp = client
        .post(fx.url("/login"))
        .form(&[("token", fx.token.as_str())])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("convoy_session"))
    );
    assert_eq!(client.post(fx.url("/logout")).send().unwrap().status(), 403);

    // Downloads are counted per day and drawn on the chart. Counts are
    // flushed at most every second, so the last one comes after a pause.
    for _ in 0..2 {
        assert_eq!(get("/api/v1/crates/alpha/0.1.0/download").status(), 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(get("/api/v1/crates/alpha/0.1.0/download").status(), 200);
    // A new version changes the index etag, so the cached page is replaced.
    fx.publish("alpha", "0.1.1", "", &[]);
    let page = get("/crates/alpha").text().unwrap();
    assert!(page.contains("alpha 0.1.1 – Convoy registry"), "{page}");
    assert!(page.contains("last 90 days: 3 in total"), "{page}");
    assert_eq!(page.matches("<rect").count(), 1, "{page}");
}

#[test]
fn companions_appear_on_their_parents_page_only() {
    let fx = Fixture::new(&[]);
    fx.publish(
        "app-helper",
        "0.1.0",
        "\n[package.metadata.convoy]\nsublibrary-of = \"app\"\n",
        &[],
    );
    fx.publish(
        "app",
        "0.1.0",
        &format!(
            "\n[dependencies]\napp-helper = {{ version = \"=0.1.0\", registry = \"{REGISTRY}\" }}\n"
        ),
        &[],
    );
    let b = Browser::start();
    b.goto(&fx.url("/crates/app"));
    assert_eq!(b.texts("a.companion"), ["app-helper"]);
    assert_eq!(b.attrs("a.companion", "href"), ["/crates/app-helper"]);
    // Home (recent and most downloaded), search and the owner's page.
    for (page, listed) in [
        ("/", vec!["app", "app"]),
        ("/search?q=app", vec!["app"]),
        ("/users/alice", vec!["app"]),
    ] {
        b.goto(&fx.url(page));
        assert_eq!(b.texts("ul.crates a.name"), listed, "{page}");
        if page == "/" {
            assert!(b.texts(".totals").join(" ").starts_with("1 crates"));
        }
    }
    b.goto(&fx.url("/crates/app-helper/reverse_dependencies"));
    assert_eq!(b.texts("a.dependent"), ["app 0.1.0"]);
    b.goto(&fx.url("/crates/app/reverse_dependencies"));
    assert!(b.texts("a.dependent").is_empty());
}
