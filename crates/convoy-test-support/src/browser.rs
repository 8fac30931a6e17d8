//! A real browser for UI tests: Debian's headless Chromium, driven over
//! WebDriver by `chromedriver` (package `chromium-driver`), through a few
//! plain JSON requests.
//!
//! Chromium starts with the flags a closed network needs (no background
//! connections, no QUIC, no component updates) and a fresh profile, so no
//! test sees another's cookies.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The flags every headless Chromium of the tests gets, before
/// `--user-data-dir`.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// `CONVOY_CHROMIUM`, else `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    std::env::var_os("CONVOY_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn chromedriver() -> PathBuf {
    std::env::var_os("CONVOY_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"))
}

/// One browser session; chromedriver and Chromium stop when it is dropped.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session.
    pub fn start() -> Self {
        let (chromium, driver_bin) = (chromium(), chromedriver());
        assert!(
            chromium.exists() && driver_bin.exists(),
            "UI tests need {} and {} (apt-get install chromium chromium-driver; .ci/run does)",
            chromium.display(),
            driver_bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let mut browser = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            http,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        ));
        args.push("--window-size=1200,900".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args}
        }}});
        let session = browser.call("POST", "/session", Some(caps));
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        browser.base = format!("{}/session/{id}", browser.base);
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp: Value = req.send().expect("webdriver request").json().expect("json");
        let value = resp["value"].clone();
        if value.get("error").is_some() {
            panic!("webdriver {method} {path} failed: {value}");
        }
        value
    }

    /// Loads `url` and waits for it.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The document's title now.
    pub fn title(&self) -> String {
        self.call("GET", "/title", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `return` gives the value) in the
    /// page. WebDriver injects it, so it runs despite the page's CSP.
    pub fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The text of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let script = format!(
            "return [...document.querySelectorAll({})].map(e => e.textContent.trim());",
            json!(css)
        );
        serde_json::from_value(self.eval(&script)).expect("strings")
    }

    /// The attribute `attr` of every element matching `css`.
    pub fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        let script = format!(
            "return [...document.querySelectorAll({})].map(e => e.getAttribute({}) || '');",
            json!(css),
            json!(attr)
        );
        serde_json::from_value(self.eval(&script)).expect("strings")
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().expect("element id").to_owned()
    }

    /// Types `text` into the element matching `css`.
    pub fn fill(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks the element matching `css`, a link or a submit button, and
    /// waits until the next page has loaded: WebDriver's own wait may
    /// return while a form submission is still in flight.
    pub fn click(&self, css: &str) {
        self.eval("window.__convoyOldPage = true;");
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/click"), None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval(
            "return window.__convoyOldPage === undefined && document.readyState === 'complete'",
        ) != true
        {
            assert!(
                Instant::now() < deadline,
                "no page loaded after clicking {css}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The cookies of the current page, as WebDriver reports them.
    pub fn cookies(&self) -> Vec<Value> {
        serde_json::from_value(self.call("GET", "/cookie", None)).expect("cookies")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.base).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A PNG of `url` from `chromium --headless --screenshot`, for the
/// screenshots in `docs/`.
pub fn screenshot(url: &str, out: &std::path::Path, width: u32, height: u32) {
    let profile = tempfile::tempdir().expect("profile dir");
    let status = Command::new(chromium())
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--hide-scrollbars")
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run chromium");
    assert!(
        status.success() && out.exists(),
        "chromium --screenshot failed"
    );
}
