//! `--auth-required`: nothing without a session, everything with one.

use convoy_test_support::browser::Browser;
use convoy_test_support::{Server, http};

use crate::{BIN, Fixture};

/// The CSRF nonce cookie and form token of a fresh `GET /login`.
fn login_form(base: &str) -> (String, String) {
    let resp = http().get(format!("{base}/login")).send().unwrap();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("convoy_csrf="))
        .expect("csrf cookie");
    let nonce = cookie.split(';').next().unwrap().to_owned();
    let html = resp.text().unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let token = html[start..start + 64].to_owned();
    (nonce, token)
}

fn post_login(base: &str, nonce: &str, csrf: &str, token: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/login"))
        .header("Cookie", nonce)
        .form(&[("token", token), ("csrf", csrf), ("next", "/crates/secret")])
        .send()
        .unwrap()
}

#[test]
fn private_registry_shows_nothing_without_a_login() {
    let fx = Fixture::new(&["--auth-required"]);
    fx.publish(
        "secret",
        "0.1.0",
        "readme = \"README.md\"",
        &[("README.md", "# Secret plans\n")],
    );

    // Plain HTTP: 401 everywhere, and no crate data in the answer.
    for path in [
        "/",
        "/crates/secret",
        "/crates/secret/0.1.0",
        "/search?q=secret",
        "/users/alice",
        "/crates/secret/reverse_dependencies",
        "/crates/nope",
    ] {
        let resp = http().get(fx.url(path)).send().unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let body = resp.text().unwrap();
        // The path itself comes back, as the login form's `next`; nothing else.
        for leak in ["Secret plans", "secret test crate", "0.1.0", "alice"]
            .iter()
            .filter(|l| !path.contains(*l))
        {
            assert!(!body.contains(leak), "{path} leaks {leak}: {body}");
        }
    }

    // Cookie attributes, and CSRF on the login form.
    let (nonce, csrf) = login_form(&fx.server.url);
    let bad = post_login(&fx.server.url, &nonce, &"0".repeat(64), &fx.token);
    assert_eq!(bad.status(), 403);
    let wrong = post_login(&fx.server.url, &nonce, &csrf, "cvy_wrong");
    assert_eq!(wrong.status(), 401);
    let ok = post_login(&fx.server.url, &nonce, &csrf, &fx.token);
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/crates/secret");
    let session = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(session.starts_with("convoy_session="), "{session}");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "http registry, no Secure: {session}"
    );
    let pair = session.split(';').next().unwrap();
    let page = http()
        .get(fx.url("/crates/secret"))
        .header("Cookie", pair)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "private, no-store");
    assert!(page.text().unwrap().contains("Secret plans"));
    // A tampered session is no session.
    let forged = format!("{}0", pair);
    assert_eq!(
        http()
            .get(fx.url("/"))
            .header("Cookie", forged)
            .send()
            .unwrap()
            .status(),
        401
    );
    // Logging out needs the form's token too.
    let logout = http()
        .post(fx.url("/logout"))
        .header("Cookie", pair)
        .send()
        .unwrap();
    assert_eq!(logout.status(), 403);

    // The browser: the login page, a wrong token, the right one, logout.
    let b = Browser::start();
    b.goto(&fx.url("/crates/secret"));
    assert_eq!(b.title(), "Log in – Convoy registry");
    assert!(b.texts(".readme").is_empty());
    assert!(
        !b.eval("return document.body.textContent")
            .as_str()
            .unwrap()
            .contains("Secret plans")
    );
    b.fill("#token", "cvy_not_a_token");
    b.click("form.login button");
    assert_eq!(b.title(), "Log in – Convoy registry");
    assert_eq!(b.texts(".error"), ["That token is invalid or expired."]);
    b.fill("#token", &fx.token);
    b.click("form.login button");
    assert_eq!(b.title(), "secret 0.1.0 – Convoy registry");
    assert_eq!(b.url(), fx.url("/crates/secret"));
    assert_eq!(b.texts(".readme h1"), ["Secret plans"]);
    let cookies = b.cookies();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "convoy_session")
        .expect("session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    b.goto(&fx.url("/"));
    assert_eq!(b.texts("ul.crates a.name")[0], "secret");
    assert_eq!(b.texts(".who a"), ["alice"]);
    b.click("header form.inline button");
    assert_eq!(b.title(), "Log in – Convoy registry");
    assert!(b.texts("ul.crates a.name").is_empty());
}

#[test]
fn session_cookie_is_secure_behind_https() {
    let server = Server::start(
        BIN,
        &[
            "--auth-required",
            "--public-url",
            "https://registry.invalid",
        ],
    );
    let token = server.token("alice", &[]);
    let (nonce, csrf) = login_form(&server.url);
    assert!(nonce.starts_with("convoy_csrf="));
    let ok = post_login(&server.url, &nonce, &csrf, &token);
    assert_eq!(ok.status(), 303);
    let session = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(session.contains("; Secure"), "{session}");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
}
