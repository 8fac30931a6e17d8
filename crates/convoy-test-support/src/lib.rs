//! Fixtures for tests that run the real thing: a `cargo convoy serve`
//! process on 127.0.0.1 with an ephemeral port, and real `cargo` invocations
//! in an isolated `CARGO_HOME` that knows the registry only through
//! `CARGO_REGISTRIES_<NAME>_*` variables.
//!
//! For the scale-out backend it also runs a real PostgreSQL ([`postgres`]),
//! a real S3-protocol server ([`s3`]) and a round-robin balancer in front
//! of several nodes ([`balancer`]).
//!
//! Panicking is how a fixture reports a broken environment, so this crate
//! allows `expect` freely; it is never linked into a shipped binary.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

pub mod balancer;
pub mod browser;
pub mod net;
pub mod postgres;
pub mod s3;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The registry name tests configure cargo with.
pub const REGISTRY: &str = "convoy";

/// Shared state for scale-out nodes: a database and blob storage that
/// several servers use at once.
#[derive(Debug, Clone)]
pub struct SharedBackend {
    /// `postgres://…`.
    pub database: String,
    /// `s3://…` or `file:///…`.
    pub storage: String,
    /// `AWS_*` variables for the storage.
    pub env: Vec<(String, String)>,
}

impl SharedBackend {
    /// A fresh database in the binary's cluster, with blobs in `dir`;
    /// `None` when PostgreSQL is not installed (see [`postgres::cluster`]).
    pub fn postgres_with_dir(dir: &Path) -> Option<Self> {
        let database = postgres::cluster()?.fresh_database();
        Some(Self {
            database,
            storage: format!("file://{}", dir.display()),
            env: Vec::new(),
        })
    }

    /// A fresh database and a fresh bucket on the binary's S3 server;
    /// `None` when either is missing.
    pub fn postgres_with_s3() -> Option<Self> {
        let s3 = s3::server()?;
        let database = postgres::cluster()?.fresh_database();
        Some(Self {
            database,
            storage: format!("s3://{}/crates", s3.fresh_bucket()),
            env: s3.env(),
        })
    }

    /// The flags that select it.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--database".into(),
            self.database.clone(),
            "--storage".into(),
            self.storage.clone(),
        ]
    }
}

/// Whether the current test runs on PostgreSQL: tests compiled inside a
/// module named `on_postgres` do (that is how a suite is parametrized over
/// both backends without repeating a line of it; the test harness names
/// each test's thread after its path), and `CONVOY_TEST_BACKEND=postgres`
/// forces it for every test.
pub fn on_postgres() -> bool {
    if let Ok(backend) = std::env::var("CONVOY_TEST_BACKEND") {
        return backend == "postgres";
    }
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("on_postgres::") || n.contains("::on_postgres::"))
}

/// A running `cargo convoy serve`, killed when dropped.
pub struct Server {
    bin: PathBuf,
    child: Option<Child>,
    data: PathBuf,
    shared: Option<SharedBackend>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh data directory.
    pub fn start(bin: &str, extra_args: &[&str]) -> Self {
        Self::start_with_env(bin, extra_args, &[])
    }

    /// Starts a server with extra environment variables (fault injection),
    /// on the test's backend (see [`on_postgres`]).
    pub fn start_with_env(bin: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let shared = if on_postgres() {
            let shared = SharedBackend::postgres_with_dir(&data.join("crates"));
            if shared.is_none() {
                eprintln!("PostgreSQL missing: this test runs on the embedded backend instead");
            }
            shared
        } else {
            None
        };
        Self::start_on(bin, shared, dir, extra_args, env)
    }

    /// Starts a scale-out node on `shared`, one of many.
    pub fn start_shared(
        bin: &str,
        shared: &SharedBackend,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_on(bin, Some(shared.clone()), dir, extra_args, env)
    }

    fn start_on(
        bin: &str,
        shared: Option<SharedBackend>,
        dir: tempfile::TempDir,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let data = dir.path().join("data");
        let mut server = Self {
            bin: PathBuf::from(bin),
            child: None,
            data,
            shared,
            url: String::new(),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            _dir: Some(dir),
        };
        server.spawn("127.0.0.1:0");
        server
    }

    /// The flags that select this server's state.
    pub fn state_args(&self) -> Vec<String> {
        match &self.shared {
            Some(shared) => shared.args(),
            None => vec!["--data".into(), self.data.display().to_string()],
        }
    }

    /// The shared backend, for a scale-out node.
    pub fn shared(&self) -> Option<&SharedBackend> {
        self.shared.as_ref()
    }

    fn backend_env(&self) -> Vec<(String, String)> {
        self.shared
            .as_ref()
            .map(|s| s.env.clone())
            .unwrap_or_default()
    }

    fn spawn(&mut self, addr: &str) {
        let mut child = Command::new(&self.bin)
            .arg("serve")
            .args(self.state_args())
            .args(["--addr", addr])
            .args(&self.extra_args)
            .env("CONVOY_LOG", "warn")
            .envs(self.backend_env())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cargo-convoy serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
            .to_owned();
        self.url = url;
        self.child = Some(child);
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// `sparse+http://…/index/`.
    pub fn index_url(&self) -> String {
        format!("sparse+{}/index/", self.url)
    }

    /// Creates a token through the CLI, as an administrator would.
    pub fn token(&self, user: &str, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .args(["token", "create"])
            .args(self.state_args())
            .envs(self.backend_env())
            .args(["--user", user])
            .args(args)
            .output()
            .expect("run token create");
        assert!(
            out.status.success(),
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        child.wait().expect("wait for server")
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        let addr = self.url.trim_start_matches("http://").to_owned();
        // The port was ours a moment ago; retry briefly while the OS frees it.
        for _ in 0..50 {
            if std::net::TcpListener::bind(&addr).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.spawn(&addr);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An isolated cargo: its own `CARGO_HOME`, a scratch directory for
/// projects, and the registry configured only through environment variables.
pub struct Cargo {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Cargo {
    /// A sandbox pointing registry [`REGISTRY`] at `server`, with `token`
    /// (if any) in `CARGO_REGISTRIES_CONVOY_TOKEN`.
    pub fn new(server: &Server, token: Option<&str>) -> Self {
        Self::for_index(&server.index_url(), token)
    }

    /// A sandbox pointing registry [`REGISTRY`] at `index_url` (a
    /// balancer's, say).
    pub fn for_index(index_url: &str, token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("cargo-home");
        std::fs::create_dir_all(&home).expect("cargo home");
        let upper = REGISTRY.to_uppercase();
        let mut env = BTreeMap::new();
        env.insert("CARGO_HOME".into(), home.display().to_string());
        env.insert(
            format!("CARGO_REGISTRIES_{upper}_INDEX"),
            index_url.to_owned(),
        );
        if let Some(token) = token {
            env.insert(format!("CARGO_REGISTRIES_{upper}_TOKEN"), token.to_owned());
        }
        env.insert("CARGO_TERM_COLOR".into(), "never".into());
        env.insert(
            "CARGO_TARGET_DIR".into(),
            dir.path().join("target").display().to_string(),
        );
        Self { dir, env }
    }

    /// Sets an environment variable for every later command.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: &str) -> &mut Self {
        self.env.remove(key);
        self
    }

    /// The scratch root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The shared target directory of every project in the sandbox.
    pub fn target_dir(&self) -> PathBuf {
        self.dir.path().join("target")
    }

    /// Writes files (relative path → contents) under `root()/name`.
    pub fn project(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = self.dir.path().join(name);
        for (path, contents) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, contents).expect("write file");
        }
        root
    }

    /// Runs the real cargo with `args` in `cwd`.
    pub fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command(cwd, args).output().expect("run cargo")
    }

    /// A cargo command with the sandbox's environment, for callers that need
    /// stdin or other settings.
    pub fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        self.program(&cargo, cwd, args)
    }

    /// Any program (such as `cargo-convoy`) with the sandbox's environment.
    pub fn program(&self, program: &str, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(cwd);
        // Drop what the outer `cargo test` put in the environment, so the
        // inner cargo sees only the sandbox.
        for (key, _) in std::env::vars() {
            if (key.starts_with("CARGO_") || key.starts_with("RUSTC") || key == "RUSTFLAGS")
                && key != "CARGO_HOME"
            {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(&self.env);
        if let Ok(cargo) = std::env::var("CARGO") {
            // Tools that run cargo themselves find the same toolchain.
            cmd.env("CARGO", cargo);
        }
        cmd
    }

    /// Runs cargo and panics with its output unless it succeeded.
    pub fn ok(&self, cwd: &Path, args: &[&str]) -> Output {
        let out = self.run(cwd, args);
        if !out.status.success() {
            panic!(
                "cargo {} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }

    /// Runs cargo and panics unless it failed; returns stderr.
    pub fn fails(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "cargo {} unexpectedly succeeded\n{stderr}",
            args.join(" ")
        );
        stderr
    }
}

/// The client runtime of the test binary, as `cargo convoy` has one per
/// process: multi-thread, so that its workers answer an overlay's cargo
/// while the test thread blocks in `cargo` or in a `block_on`. One for all
/// the tests of a binary, never shut down; servers under test keep their
/// own runtimes ([`InProcessRegistry`]), as `serve` is a process of its own.
pub fn runtime() -> tokio::runtime::Handle {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("convoy-test-client")
                .enable_all()
                .build()
                .expect("the tests' client runtime")
        })
        .handle()
        .clone()
}

/// A blocking HTTP client for raw protocol requests.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A manifest for a small package, with `description` and `license` so that
/// publish-side checks pass.
pub fn manifest(name: &str, version: &str, extra: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\ndescription = \"{name} test crate\"\nlicense = \"MIT\"\n{extra}"
    )
}

/// The registry application over a fresh SQLite store and blob directory in
/// `dir`, with a full-scope token for `alice`: for tests that serve the
/// router in-process (behind fault-injection layers, say) rather than run
/// the binary.
pub fn registry_app(
    dir: &Path,
    settings: convoy_registry::Settings,
) -> (convoy_registry::App, String) {
    use convoy_store::NewToken;
    use convoy_store::fs::FsBlobStore;
    use convoy_store::sqlite::SqliteStore;
    let store = SqliteStore::open(dir.join("convoy.sqlite")).expect("open store");
    let token = store
        .create_token_blocking(NewToken {
            login: "alice".into(),
            name: "test".into(),
            scopes: Vec::new(),
            crates: Vec::new(),
            expires_at: None,
        })
        .expect("create token")
        .expose()
        .to_owned();
    let blobs = FsBlobStore::open(dir.join("crates")).expect("open blobs");
    let app = convoy_registry::App::new(
        std::sync::Arc::new(store),
        std::sync::Arc::new(blobs),
        settings,
    );
    (app, token)
}

/// The registry served in-process on 127.0.0.1 by a runtime of its own, for
/// library tests that cannot reach the `cargo-convoy` binary. Stops when
/// dropped.
pub struct InProcessRegistry {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// A full-scope token of `alice`.
    pub token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl InProcessRegistry {
    /// A fresh registry with default settings.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (app, token) = registry_app(
            dir.path(),
            convoy_registry::Settings {
                public_url: url.clone(),
                auth_required: false,
                limits: convoy_registry::Limits::default(),
                publish_rate: None,
                companions: true,
            },
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        {
            let _entered = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            runtime.spawn(async move {
                let shutdown = async {
                    let _ = rx.await;
                };
                let _ =
                    convoy_registry::serve(listener, convoy_registry::router(app), shutdown).await;
            });
        }
        Self {
            url,
            token,
            shutdown: Some(tx),
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    /// `sparse+http://…/index/`.
    pub fn index_url(&self) -> String {
        format!("sparse+{}/index/", self.url)
    }
}

impl Drop for InProcessRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
