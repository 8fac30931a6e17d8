//! A real S3-protocol server for tests: `s3s-fs` (installed by `.ci/run`
//! with `cargo install --locked s3s-fs`), one process per test binary on an
//! ephemeral port on 127.0.0.1, a fresh bucket per test. Convoy reaches it
//! through the same `object_store` S3 client it uses against AWS.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::postgres::REQUIRE_ENV;

/// The test credentials (the server accepts only these).
pub const ACCESS_KEY: &str = "convoy-test";
/// The test secret.
pub const SECRET_KEY: &str = "convoy-test-secret";

/// A running `s3s-fs`, shared by every test of the binary; killed at exit
/// by the same stdin watchdog as the PostgreSQL cluster.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    root: PathBuf,
    next: AtomicUsize,
    _guard: std::sync::Mutex<Child>,
}

fn binary() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("s3s-fs"))
            .find(|p| p.exists())
    });
    from_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let p = home.join("bin/s3s-fs");
        p.exists().then_some(p)
    })
}

/// The binary's S3 server, started on first call; `None` (with a message)
/// when `s3s-fs` is not installed and [`REQUIRE_ENV`] is unset.
pub fn server() -> Option<&'static S3Server> {
    static SERVER: OnceLock<Option<S3Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let Some(bin) = binary() else {
                assert!(
                    std::env::var_os(REQUIRE_ENV).is_none(),
                    "s3s-fs is not installed but {REQUIRE_ENV} is set"
                );
                eprintln!(
                    "skipping S3: s3s-fs is not installed (cargo install --locked s3s-fs --version 0.14.1 --features binary)"
                );
                return None;
            };
            Some(S3Server::start(&bin))
        })
        .as_ref()
}

impl S3Server {
    fn start(bin: &std::path::Path) -> Self {
        let root: PathBuf = tempfile::Builder::new()
            .prefix("convoy-s3-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let script = format!(
            "'{bin}' --host 127.0.0.1 --port {port} --access-key {ACCESS_KEY} --secret-key {SECRET_KEY} '{root}/data' >'{root}/log' 2>&1 & pid=$!\n\
             cat >/dev/null\n\
             kill $pid; wait $pid; rm -rf '{root}'\n",
            bin = bin.display(),
            root = root.display(),
        );
        std::fs::create_dir_all(root.join("data")).expect("s3 root");
        let child = Command::new("/bin/sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not start; see {}/log",
                root.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
            next: AtomicUsize::new(0),
            _guard: std::sync::Mutex::new(child),
        }
    }

    /// Creates an empty bucket and returns its name. (`s3s-fs` keeps a
    /// bucket as a directory.)
    pub fn fresh_bucket(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let name = format!("b{}-{n}", std::process::id());
        std::fs::create_dir_all(self.root.join("data").join(&name)).expect("bucket");
        name
    }

    /// Where a bucket's objects are on disk, for tests that count them.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join("data").join(bucket)
    }

    /// The `AWS_*` variables that point Convoy at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}
