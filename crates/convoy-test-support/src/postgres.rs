//! A real PostgreSQL 15 for tests: one cluster per test binary, started on
//! first use on an ephemeral port on 127.0.0.1, and a fresh database per
//! test.
//!
//! `initdb` and `postgres` refuse to run as root, so as root they run as
//! the `postgres` system user (`runuser`) on a directory it owns. The
//! server runs under a small shell that reads its stdin: when the test
//! binary exits, however it exits, the pipe closes, the shell stops the
//! server and removes the cluster. Nothing outlives the tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where Debian puts PostgreSQL 15's server binaries (not on `PATH`).
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Set (to anything) by `.ci/run`: tests that need PostgreSQL or the S3
/// server then fail instead of skipping when one is missing.
pub const REQUIRE_ENV: &str = "CONVOY_REQUIRE_SCALEOUT";

/// A running cluster, shared by every test of the binary.
pub struct PgCluster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    _guard: std::sync::Mutex<Child>,
    next: AtomicUsize,
}

/// Whether PostgreSQL's server binaries are installed.
pub fn available() -> bool {
    Path::new(PG_BIN).join("initdb").exists()
}

/// The binary's cluster, started on first call; `None` (with a message
/// saying why) when PostgreSQL is not installed and [`REQUIRE_ENV`] is
/// unset.
pub fn cluster() -> Option<&'static PgCluster> {
    static CLUSTER: OnceLock<Option<PgCluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            if !available() {
                assert!(
                    std::env::var_os(REQUIRE_ENV).is_none(),
                    "PostgreSQL 15 is not installed ({PG_BIN}/initdb is missing) but {REQUIRE_ENV} is set"
                );
                eprintln!(
                    "skipping PostgreSQL: {PG_BIN}/initdb is missing (apt-get install postgresql)"
                );
                return None;
            }
            Some(PgCluster::start(Durability::Fast))
        })
        .as_ref()
}

/// How much a cluster may cut corners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync=off`: for tests, which kill Convoy nodes, never the database.
    Fast,
    /// PostgreSQL's defaults: for benchmarks that compare with SQLite's
    /// `synchronous=FULL`.
    Full,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `cmd` run as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl PgCluster {
    /// Starts a new cluster (normally through [`cluster`]).
    pub fn start(durability: Durability) -> Self {
        let dir: PathBuf = tempfile::Builder::new()
            .prefix("convoy-pg-")
            .tempdir()
            .expect("tempdir")
            .keep();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown of the cluster directory failed");
        }
        let data = dir.join("data");
        let out = as_postgres(&Path::new(PG_BIN).join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut settings = vec![
            format!("-p {port}"),
            "-h 127.0.0.1".to_owned(),
            format!("-k {}", dir.display()),
            "-c max_connections=300".to_owned(),
            "-c shared_buffers=64MB".to_owned(),
        ];
        if durability == Durability::Fast {
            settings.push("-c fsync=off -c synchronous_commit=off -c full_page_writes=off".into());
        }
        // The watchdog: start the server, wait for stdin to close (the test
        // binary is gone), then stop it fast and remove the cluster.
        let script = format!(
            "{bin}/postgres -D {data} {settings} >{dir}/log 2>&1 & pid=$!\n\
             cat >/dev/null\n\
             kill -INT $pid; wait $pid; rm -rf {dir}\n",
            bin = PG_BIN,
            data = data.display(),
            settings = settings.join(" "),
            dir = dir.display(),
        );
        let child = as_postgres(Path::new("/bin/sh"))
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let cluster = Self {
            port,
            _guard: std::sync::Mutex::new(child),
            next: AtomicUsize::new(0),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(Path::new(PG_BIN).join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start; see {}/log",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// Creates an empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        let out = Command::new(Path::new(PG_BIN).join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(&name)
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs one SQL statement with `psql` and returns its unaligned output.
    pub fn psql(&self, database_url: &str, sql: &str) -> String {
        let psql = if Path::new(PG_BIN).join("psql").exists() {
            Path::new(PG_BIN).join("psql")
        } else {
            PathBuf::from("psql")
        };
        let mut child = Command::new(psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                database_url,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql.as_bytes())
            .expect("write sql");
        let out = child.wait_with_output().expect("psql output");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}
