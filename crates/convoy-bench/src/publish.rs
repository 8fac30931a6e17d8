//! `cargo xtask bench publish`: the performance goals of issues 4 and 9,
//! measured as ratios in one run.
//!
//! For each workspace (`--workspace`, repeatable; `generated` is a 30-crate
//! workspace written here, with no crates.io dependency), every measurement
//! starts from an **empty target directory** (a fresh `CARGO_TARGET_DIR`)
//! and shares the user's `CARGO_HOME`, warmed by one untimed `cargo fetch`:
//!
//! 1. `cargo package --workspace` (cargo's package and per-crate
//!    build-based verify), baseline A;
//! 2. `cargo check --workspace`, baseline B, the floor of a verification;
//! 3. `cargo convoy publish --dry-run --verify check` against a real
//!    `cargo convoy serve` on 127.0.0.1 (the dry run packages, locks and
//!    verifies, and only reads the registry), C;
//! 4. the same again in C's target directory, W: a resume after a failed
//!    upload;
//! 5. with `--with-build`, also `cargo build --workspace` and Convoy's
//!    `--verify build`.
//!
//! The same cargo (`$CARGO`, the toolchain that runs this benchmark) and the
//! same `-j` are used throughout. Convoy's stderr lines are timestamped and
//! its lock work directory is read afterwards, which gives the per-step
//! breakdown (package, lock per crate, verify per crate).
//!
//! Then the upload stage alone ([`crate::upload`]): 50 independent crates to
//! a registry that answers every request after 100 ms, at several `-j`.
//!
//! Everything runs under a time limit, in its own process group, and is
//! stopped on the way out.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::Format;
use crate::registry::{Server, build_server, cpu_model, today};

/// The goals of issue 9 (and, for `--verify build`, issue 4).
const GOAL_CHECK_VS_PACKAGE: f64 = 0.5;
const GOAL_CHECK_VS_CHECK: f64 = 1.1;
const GOAL_WARM_VS_FIRST: f64 = 0.2;
const GOAL_BUILD_VS_PACKAGE: f64 = 0.8;

/// Options of `bench publish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workspace to measure (its root directory), or `generated`;
    /// repeatable. Default: `generated`.
    #[arg(long = "workspace", value_name = "PATH|generated")]
    workspaces: Vec<String>,
    /// Generated modules per crate of the generated workspace (its size).
    #[arg(long, default_value_t = 3)]
    modules: usize,
    /// Also measure `cargo build --workspace` and Convoy's `--verify build`.
    #[arg(long)]
    with_build: bool,
    /// Write the generated workspace to DIR and stop.
    #[arg(long, value_name = "DIR")]
    generate: Option<PathBuf>,
    /// Cargo jobs for every measurement (cargo's and Convoy's `-j`).
    /// Default: the number of CPUs.
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Seconds any one measurement may take before it is stopped.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Before each measurement, wait up to this many seconds while other
    /// processes keep the CPUs busy.
    #[arg(long, default_value_t = 30)]
    load_wait: u64,
    /// Skip the upload-concurrency figure.
    #[arg(long)]
    no_upload: bool,
    /// Only the upload-concurrency figure.
    #[arg(long, conflicts_with = "no_upload")]
    upload_only: bool,
    /// `-j` values of the upload figure.
    #[arg(long, value_delimiter = ',', default_value = "1,8,16")]
    upload_jobs: Vec<usize>,
    /// Crates of the upload figure.
    #[arg(long, default_value_t = 50)]
    upload_crates: usize,
    /// Latency the registry adds to every request in the upload figure.
    #[arg(long, default_value_t = 100)]
    upload_latency_ms: u64,
    /// The `cargo-convoy` binary; by default, built here with
    /// `cargo build --release -p convoy-cli` (not timed).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Where the temporary target directories go.
    #[arg(long, value_name = "DIR")]
    tmp_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Rewrite the "Publish pipeline" section of docs/BENCHMARKS.md.
    #[arg(long)]
    update_docs: bool,
}

#[derive(Debug, Serialize)]
struct Results {
    command: String,
    nproc: usize,
    cpu_model: String,
    date: String,
    loadavg_start: String,
    cargo_version: String,
    rustc_version: String,
    jobs: usize,
    logs: String,
    workspaces: Vec<WorkspaceResult>,
    upload: Option<crate::upload::Report>,
}

#[derive(Debug, Serialize)]
struct WorkspaceResult {
    label: String,
    path: String,
    /// Publishable members, as Convoy and cargo select them.
    publishable: Vec<String>,
    package: Option<Measure>,
    /// When `cargo package --workspace` fails: `cargo package -p X` for
    /// each publishable member in publish order, each from an empty target
    /// directory.
    package_fallback: Option<Fallback>,
    check: Option<Measure>,
    build: Option<Measure>,
    convoy_check: Option<Measure>,
    /// Convoy check again in the same target directory.
    convoy_warm: Option<Measure>,
    convoy_build: Option<Measure>,
}

impl WorkspaceResult {
    /// Baseline A: `cargo package --workspace`, or the per-package
    /// fallback's total when every package in it succeeded.
    fn baseline_a(&self) -> Option<(f64, &'static str)> {
        match (&self.package, &self.package_fallback) {
            (Some(m), _) if m.ok => Some((m.seconds, "cargo package --workspace")),
            (_, Some(f)) if f.all_ok => Some((f.seconds, "Σ cargo package -p X")),
            _ => None,
        }
    }
    fn baseline_b(&self) -> Option<f64> {
        self.check.as_ref().filter(|m| m.ok).map(|m| m.seconds)
    }
    fn first_run(&self) -> Option<f64> {
        self.convoy_check
            .as_ref()
            .filter(|m| m.ok)
            .map(|m| m.seconds)
    }
}

#[derive(Debug, Serialize)]
struct Fallback {
    all_ok: bool,
    seconds: f64,
    cpu_seconds: f64,
    packages: Vec<(String, Measure)>,
}

#[derive(Debug, Clone, Serialize)]
struct Measure {
    command: String,
    ok: bool,
    status: String,
    seconds: f64,
    /// User + system CPU time of the whole process tree.
    cpu_seconds: f64,
    loadavg_before: String,
    /// Share of all CPUs busy during the second before the start.
    busy_before: f64,
    /// The end of stderr when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    log: String,
    steps: Steps,
}

impl Measure {
    fn cores(&self) -> f64 {
        self.cpu_seconds / self.seconds.max(1e-9)
    }
}

/// Where the time went, from timestamped stderr lines (and, for Convoy,
/// the mtimes of its lock work directory).
#[derive(Debug, Clone, Default, Serialize)]
struct Steps {
    /// Seconds before packaging starts (workspace loading, checks).
    before_package: Option<f64>,
    /// Packaging (`cargo package --no-verify` for Convoy; every
    /// `Packaging` line up to the first `Verifying` for cargo).
    package: Option<f64>,
    /// Convoy: lock file per package (`cargo generate-lockfile`), seconds.
    lock: Vec<(String, f64)>,
    /// Convoy: from the first lock to the last (overlays and repacking
    /// included).
    lock_total: Option<f64>,
    /// Verification per package, seconds.
    verify: Vec<(String, f64)>,
    verify_total: Option<f64>,
    /// Convoy: from the end of verification to the exit (the dry-run
    /// upload stage reads the index).
    after_verify: Option<f64>,
}

pub fn main(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.generate {
        crate::genws::write(dir, args.modules)?;
        eprintln!(
            "wrote the generated workspace ({} crates) to {}",
            crate::genws::CRATES,
            dir.display()
        );
        return Ok(());
    }
    let command = format!(
        "cargo xtask {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(nproc).max(1);
    let cargo = cargo_program();
    let logs = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("bench-publish-logs");
    if logs.exists() {
        std::fs::remove_dir_all(&logs)?;
    }
    std::fs::create_dir_all(&logs)?;

    let mut results = Results {
        command,
        nproc,
        cpu_model: cpu_model(),
        date: today(),
        loadavg_start: loadavg(),
        cargo_version: version_of(&cargo, &["-V"]),
        rustc_version: version_of(Path::new("rustc"), &["-V"]),
        jobs,
        logs: logs.display().to_string(),
        workspaces: Vec::new(),
        upload: None,
    };

    if !args.upload_only {
        let tmp = match &args.tmp_dir {
            Some(dir) => tempfile::Builder::new()
                .prefix("convoy-bench-publish-")
                .tempdir_in(dir)?,
            None => tempfile::Builder::new()
                .prefix("convoy-bench-publish-")
                .tempdir()?,
        };
        let bin = match &args.server_bin {
            Some(p) => p.clone(),
            None => build_server()?,
        };
        let server = Server::start(
            None,
            &bin,
            &tmp.path().join("registry"),
            &logs.join("registry.log"),
        )?;
        eprintln!(
            "registry `bench` at http://{} (pid {})",
            server.addr, server.pid
        );
        let index = format!("sparse+http://{}/index/", server.addr);
        let workspaces = if args.workspaces.is_empty() {
            vec!["generated".to_owned()]
        } else {
            args.workspaces.clone()
        };
        let ctx = Ctx {
            cargo: &cargo,
            bin: &bin,
            index: &index,
            jobs,
            limit: Duration::from_secs(args.timeout),
            load_wait: Duration::from_secs(args.load_wait),
            tmp: tmp.path(),
            logs: &logs,
        };
        for (n, ws) in workspaces.iter().enumerate() {
            let (label, root) = if ws == "generated" {
                let root = tmp.path().join("generated");
                crate::genws::write(&root, args.modules)?;
                (
                    format!(
                        "generated ({} crates, {} modules each)",
                        crate::genws::CRATES,
                        args.modules
                    ),
                    root,
                )
            } else {
                let root = PathBuf::from(ws)
                    .canonicalize()
                    .with_context(|| format!("workspace {ws}"))?;
                let label = root
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| ws.clone());
                (label, root)
            };
            let result = measure_workspace(&ctx, n, &label, &root, args.with_build)?;
            print!("{}", workspace_table(&result));
            results.workspaces.push(result);
        }
        drop(server);
    }

    if !args.no_upload {
        let limit = Duration::from_secs(args.timeout.min(120));
        // The client side's one runtime, built as the CLI's
        // (`commands::runtime`): multi-thread, since `upload_on` blocks on
        // it through a `Handle`, which cannot drive a current-thread
        // runtime, and two workers, since a client's work is waiting on
        // the network.
        let client = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("convoy-bench-client")
            .enable_all()
            .build()
            .context("failed to start the client runtime")?;
        results.upload = Some(crate::upload::run(
            client.handle(),
            args.upload_crates,
            Duration::from_millis(args.upload_latency_ms),
            &args.upload_jobs,
            limit,
        )?);
    }

    match args.format {
        Format::Table => print!("{}", table(&results)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
    }
    if args.update_docs {
        let path = crate::docs::update_section("## Publish pipeline", &markdown(&results))?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}

struct Ctx<'a> {
    cargo: &'a Path,
    bin: &'a Path,
    index: &'a str,
    jobs: usize,
    limit: Duration,
    load_wait: Duration,
    tmp: &'a Path,
    logs: &'a Path,
}

fn measure_workspace(
    ctx: &Ctx<'_>,
    n: usize,
    label: &str,
    root: &Path,
    with_build: bool,
) -> anyhow::Result<WorkspaceResult> {
    eprintln!("\n== {label}: {}", root.display());
    let j = ctx.jobs.to_string();
    // Untimed: downloads land in the shared CARGO_HOME.
    let warm = ctx.tmp.join(format!("ws{n}-warmup"));
    let out = cargo_cmd(ctx, root, &warm)
        .arg("fetch")
        .stdout(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "cargo fetch in {} failed:\n{}",
            root.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&warm);
    let publishable = publish_order(ctx, root)?;
    eprintln!("publishable members, in order: {}", publishable.join(", "));

    let mut result = WorkspaceResult {
        label: label.to_owned(),
        path: root.display().to_string(),
        publishable: publishable.clone(),
        package: None,
        package_fallback: None,
        check: None,
        build: None,
        convoy_check: None,
        convoy_warm: None,
        convoy_build: None,
    };

    // A: cargo package --workspace.
    let target = ctx.tmp.join(format!("ws{n}-package"));
    let cmd = cargo_cmd(ctx, root, &target)
        .args(["package", "--workspace", "--allow-dirty", "-j", &j])
        .into_cmd();
    let m = timed(
        ctx,
        &format!("ws{n}-cargo-package"),
        cmd,
        &target,
        Kind::CargoPackage,
        true,
    )?;
    let failed = !m.ok;
    result.package = Some(m);
    clean(&target);
    if failed {
        eprintln!("cargo package --workspace failed; measuring `cargo package -p X` per package");
        result.package_fallback = Some(package_each(ctx, n, root, &publishable)?);
    }

    // B: cargo check --workspace (and, with --with-build, cargo build).
    let plain: &[&str] = if with_build {
        &["check", "build"]
    } else {
        &["check"]
    };
    for sub in plain {
        let target = ctx.tmp.join(format!("ws{n}-{sub}"));
        let cmd = cargo_cmd(ctx, root, &target)
            .args([sub, "--workspace", "-j", &j])
            .into_cmd();
        let m = timed(
            ctx,
            &format!("ws{n}-cargo-{sub}"),
            cmd,
            &target,
            Kind::Plain,
            true,
        )?;
        if *sub == "check" {
            result.check = Some(m);
        } else {
            result.build = Some(m);
        }
        clean(&target);
    }

    // C, W (and D): Convoy, first run and rerun in the same target dir.
    let convoy: &[&str] = if with_build {
        &["check", "warm", "build"]
    } else {
        &["check", "warm"]
    };
    for run in convoy {
        let verify = if *run == "build" { "build" } else { "check" };
        let target = ctx.tmp.join(format!("ws{n}-convoy-{verify}"));
        let mut cmd = Command::new(ctx.bin);
        cmd.arg("publish")
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .args(["--registry", "bench", "--dry-run", "--allow-dirty"])
            .args(["--verify", verify, "-j", &j]);
        env(ctx, &mut cmd, root, &target);
        cmd.env("CARGO_REGISTRIES_BENCH_INDEX", ctx.index);
        let m = timed(
            ctx,
            &format!("ws{n}-convoy-{run}"),
            cmd,
            &target,
            Kind::Convoy,
            *run != "warm",
        )?;
        match *run {
            "check" => result.convoy_check = Some(m),
            "warm" => {
                result.convoy_warm = Some(m);
                clean(&target);
            }
            _ => {
                result.convoy_build = Some(m);
                clean(&target);
            }
        }
    }
    let _ = std::fs::remove_dir_all(ctx.tmp.join(format!("ws{n}-package-each")));
    Ok(result)
}

/// `cargo package -p X` for each publishable member in publish order, each
/// from an empty target directory, as every other measurement.
fn package_each(
    ctx: &Ctx<'_>,
    n: usize,
    root: &Path,
    publishable: &[String],
) -> anyhow::Result<Fallback> {
    let target = ctx.tmp.join(format!("ws{n}-package-each"));
    let j = ctx.jobs.to_string();
    let mut packages = Vec::new();
    for name in publishable {
        let cmd = cargo_cmd(ctx, root, &target)
            .args(["package", "-p", name, "--allow-dirty", "-j", &j])
            .into_cmd();
        let m = timed(
            ctx,
            &format!("ws{n}-cargo-package-{name}"),
            cmd,
            &target,
            Kind::CargoPackage,
            true,
        )?;
        packages.push((name.clone(), m));
    }
    clean(&target);
    Ok(Fallback {
        all_ok: packages.iter().all(|(_, m)| m.ok),
        seconds: packages.iter().map(|(_, m)| m.seconds).sum(),
        cpu_seconds: packages.iter().map(|(_, m)| m.cpu_seconds).sum(),
        packages,
    })
}

/// A `Command` under construction that can be finished with
/// [`Builder::into_cmd`]; keeps the call sites short.
struct Builder(Command);

impl Builder {
    fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.0.arg(a);
        self
    }
    fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, a: I) -> Self {
        self.0.args(a);
        self
    }
    fn stdout(mut self, s: Stdio) -> Self {
        self.0.stdout(s);
        self
    }
    fn output(mut self) -> std::io::Result<std::process::Output> {
        self.0.output()
    }
    fn into_cmd(self) -> Command {
        self.0
    }
}

fn cargo_cmd(ctx: &Ctx<'_>, root: &Path, target: &Path) -> Builder {
    let mut cmd = Command::new(ctx.cargo);
    env(ctx, &mut cmd, root, target);
    Builder(cmd)
}

/// The environment of every measured process: the workspace as current
/// directory, a fresh target directory, the same cargo, no color, and none
/// of the variables `cargo run` set for this benchmark.
fn env(ctx: &Ctx<'_>, cmd: &mut Command, root: &Path, target: &Path) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_DIR",
            // A shared build directory would make no target dir empty.
            "CARGO_BUILD_BUILD_DIR",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_REGISTRIES_",
            "CONVOY_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
        {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(root)
        .env("CARGO", ctx.cargo)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .stdin(Stdio::null());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    CargoPackage,
    Convoy,
}

/// Runs `cmd` within the time limit and returns what it took; `fresh`
/// empties `target` first.
fn timed(
    ctx: &Ctx<'_>,
    name: &str,
    mut cmd: Command,
    target: &Path,
    kind: Kind,
    fresh: bool,
) -> anyhow::Result<Measure> {
    if fresh {
        let _ = std::fs::remove_dir_all(target);
    }
    let busy_before = wait_for_quiet(ctx.load_wait);
    let loadavg_before = loadavg();
    let log_path = ctx.logs.join(format!("{name}.log"));
    let mut log = std::fs::File::create(&log_path)?;
    let shown = format!("{cmd:?}");
    writeln!(log, "$ {shown}\n")?;
    eprintln!(
        "-- {name} (load {loadavg_before}, busy {:.0}%)",
        busy_before * 100.0
    );

    let cpu_before = children_cpu();
    let wall_start = SystemTime::now();
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {shown}"))?;
    let pid = child.id();
    let lines: Arc<Mutex<Vec<(f64, String)>>> = Arc::default();
    let reader = child.stderr.take().map(|stderr| {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let t = start.elapsed().as_secs_f64();
                let _ = writeln!(log, "[{t:8.3}] {line}");
                if let Ok(mut l) = lines.lock() {
                    l.push((t, line));
                }
            }
        })
    });
    let deadline = start + ctx.limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = start.elapsed().as_secs_f64();
    let status = match status {
        Some(s) => s.to_string(),
        None => {
            eprintln!("warning: {name} exceeded {:?}; stopping it", ctx.limit);
            let group = format!("-{pid}");
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            std::thread::sleep(Duration::from_secs(2));
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            format!("timed out after {}s", ctx.limit.as_secs())
        }
    };
    if let Some(r) = reader {
        let _ = r.join();
    }
    let cpu_seconds = children_cpu() - cpu_before;
    let ok = status == "exit status: 0";
    let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
    let error = (!ok).then(|| {
        let tail: Vec<&str> = lines
            .iter()
            .map(|(_, l)| l.as_str())
            .filter(|l| !l.trim_start().starts_with("Compiling"))
            .collect();
        tail[tail.len().saturating_sub(40)..].join("\n")
    });
    let steps = match kind {
        Kind::Plain => Steps::default(),
        Kind::CargoPackage => cargo_steps(&lines, seconds),
        Kind::Convoy => convoy_steps(&lines, seconds, target, wall_start),
    };
    eprintln!(
        "   {name}: {seconds:.1}s, {cpu_seconds:.1} CPU-s, {status}{}",
        if ok { "" } else { " (FAILED)" }
    );
    Ok(Measure {
        command: shown,
        ok,
        status,
        seconds,
        cpu_seconds,
        loadavg_before,
        busy_before,
        error,
        log: log_path.display().to_string(),
        steps,
    })
}

/// `Packaging …` up to the first `Verifying …`, then one interval per
/// `Verifying` line.
fn cargo_steps(lines: &[(f64, String)], end: f64) -> Steps {
    let verifying: Vec<(f64, String)> = lines
        .iter()
        .filter_map(|(t, l)| {
            let rest = l.trim_start().strip_prefix("Verifying ")?;
            Some((*t, rest.split(" (").next().unwrap_or(rest).to_owned()))
        })
        .collect();
    let first_packaging = lines
        .iter()
        .find(|(_, l)| l.trim_start().starts_with("Packaging "))
        .map(|(t, _)| *t);
    let verify = intervals(&verifying, end);
    Steps {
        before_package: first_packaging,
        package: first_packaging.map(|p| verifying.first().map_or(end, |v| v.0) - p),
        verify_total: (!verify.is_empty()).then(|| verify.iter().map(|(_, s)| s).sum()),
        verify,
        ..Steps::default()
    }
}

fn intervals(starts: &[(f64, String)], end: f64) -> Vec<(String, f64)> {
    starts
        .iter()
        .enumerate()
        .map(|(i, (t, name))| {
            let next = starts.get(i + 1).map_or(end, |n| n.0);
            (name.clone(), next - t)
        })
        .collect()
}

/// Convoy's status lines: `Packaging N crates`, `Packaged …` (after the
/// lock files), `Verifying name vX` per package, then the upload stage.
/// Lock files: `<target>/convoy/bench/verify/lock/<name>-<version>/`, whose
/// `Cargo.toml` is written when its lock starts and `Cargo.lock` when it
/// ends.
fn convoy_steps(lines: &[(f64, String)], end: f64, target: &Path, wall_start: SystemTime) -> Steps {
    let verb = |l: &str| l.split_whitespace().next().unwrap_or("").to_owned();
    let at = |v: &str| lines.iter().find(|(_, l)| verb(l) == v).map(|(t, _)| *t);
    let packaging = at("Packaging");
    let verifying: Vec<(f64, String)> = lines
        .iter()
        .filter(|(_, l)| verb(l) == "Verifying")
        .map(|(t, l)| {
            (
                *t,
                l.trim_start().trim_start_matches("Verifying ").to_owned(),
            )
        })
        .collect();
    // The verify stage ends at the first line after the last `Verifying`
    // that is not cargo's (the upload stage's first status line).
    let verify_end = verifying.last().and_then(|(last, _)| {
        lines
            .iter()
            .find(|(t, l)| {
                *t > *last
                    && (["Uploading", "Skipped", "Would", "Summary"]
                        .iter()
                        .any(|w| verb(l).starts_with(w))
                        || l.contains("dry run"))
            })
            .map(|(t, _)| *t)
    });
    let offset = |time: SystemTime| {
        time.duration_since(wall_start)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let mut lock = Vec::new();
    let mut first_lock: Option<f64> = None;
    let mut last_lock: Option<f64> = None;
    let lock_dir = target.join("convoy/bench/verify/lock");
    if let Ok(entries) = std::fs::read_dir(&lock_dir) {
        let mut found: Vec<(f64, f64, String)> = entries
            .flatten()
            .filter_map(|e| {
                let dir = e.path();
                // Unpacking keeps the packaged files' mtimes; the `src`
                // directory gets its entries then, and none later.
                let started = std::fs::metadata(dir.join("src"))
                    .or_else(|_| std::fs::metadata(dir.join("Cargo.toml")))
                    .ok()?
                    .modified()
                    .ok()?;
                let ended = std::fs::metadata(dir.join("Cargo.lock"))
                    .ok()?
                    .modified()
                    .ok()?;
                Some((
                    offset(started),
                    offset(ended),
                    e.file_name().to_string_lossy().into_owned(),
                ))
            })
            .collect();
        // A rerun takes its locks from the kept results and writes none:
        // directories older than this run's packaging are the first run's.
        if let Some(p) = packaging {
            found.retain(|f| f.0 >= p - 0.05);
        }
        found.sort_by(|a, b| a.0.total_cmp(&b.0));
        first_lock = found.first().map(|f| f.0);
        last_lock = found.iter().map(|f| f.1).reduce(f64::max);
        lock = found.into_iter().map(|(s, e, n)| (n, e - s)).collect();
    }
    let verify_stop = verify_end.unwrap_or(end);
    let verify = intervals(&verifying, verify_stop);
    Steps {
        before_package: packaging,
        // Without lock runs, packaging lasts until the first build.
        package: packaging
            .zip(first_lock.or(verifying.first().map(|(t, _)| *t)))
            .map(|(p, l)| l - p),
        lock_total: first_lock.zip(last_lock).map(|(f, l)| l - f),
        lock,
        verify_total: verifying.first().map(|(t, _)| verify_stop - t),
        verify,
        after_verify: verifying.first().map(|_| end - verify_stop),
    }
}

/// Publishable members in publish order (normal and build dependencies
/// first), from `cargo metadata --no-deps`; `publish = false` members are
/// left out, as cargo and Convoy leave them out.
fn publish_order(ctx: &Ctx<'_>, root: &Path) -> anyhow::Result<Vec<String>> {
    let out = cargo_cmd(ctx, root, &ctx.tmp.join("metadata"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let publishable: BTreeMap<String, Vec<String>> = packages
        .iter()
        .filter(|p| !p["publish"].as_array().is_some_and(Vec::is_empty))
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .filter(|d| d["kind"].as_str() != Some("dev") && d["path"].is_string())
                        .filter_map(|d| d["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (p["name"].as_str().unwrap_or("").to_owned(), deps)
        })
        .collect();
    let mut order = Vec::new();
    let mut left: Vec<String> = publishable.keys().cloned().collect();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|n| {
                publishable[*n]
                    .iter()
                    .all(|d| !publishable.contains_key(d) || order.contains(d))
            })
            .cloned()
            .collect();
        anyhow::ensure!(!ready.is_empty(), "dependency cycle among {left:?}");
        left.retain(|n| !ready.contains(n));
        order.extend(ready);
    }
    Ok(order)
}

fn clean(target: &Path) {
    let _ = std::fs::remove_dir_all(target);
}

fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

fn version_of(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// (busy, total) jiffies of all CPUs.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// Share of the CPUs busy over one second.
fn busy_share() -> f64 {
    let Some((b0, t0)) = cpu_jiffies() else {
        return 0.0;
    };
    std::thread::sleep(Duration::from_secs(1));
    let Some((b1, t1)) = cpu_jiffies() else {
        return 0.0;
    };
    (b1 - b0) as f64 / (t1 - t0).max(1) as f64
}

/// Waits (up to `max`) while more than a third of the CPUs are busy with
/// something else; returns the last busy share seen.
fn wait_for_quiet(max: Duration) -> f64 {
    let until = Instant::now() + max;
    loop {
        let busy = busy_share();
        if busy <= 0.33 || Instant::now() >= until {
            return busy;
        }
        eprintln!("   waiting: {:.0}% of the CPUs are busy", busy * 100.0);
        std::thread::sleep(Duration::from_secs(4));
    }
}

/// User + system CPU seconds of this process's waited-for children
/// (`cutime` + `cstime`), which include their own waited-for children:
/// cargo, rustc, build scripts.
fn children_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 16 and 17 of stat(5); `rest` starts at field 3.
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(16) + ticks(17)) / 100.0
}

fn goal(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn fmt_measure(m: &Option<Measure>) -> String {
    match m {
        Some(m) if m.ok => format!("{:7.1} s  ({:.2} cores)", m.seconds, m.cores()),
        Some(m) => format!("FAILED after {:.1} s ({})", m.seconds, m.status),
        None => "-".to_owned(),
    }
}

fn ratio(a: Option<&Measure>, b: Option<f64>) -> Option<f64> {
    let a = a.filter(|m| m.ok)?;
    Some(a.seconds / b?)
}

fn workspace_table(w: &WorkspaceResult) -> String {
    let mut s = format!("\n{} — {}\n", w.label, w.path);
    s += &format!(
        "  A cargo package --workspace     {}\n",
        fmt_measure(&w.package)
    );
    if let Some(f) = &w.package_fallback {
        s += &format!(
            "  A' Σ cargo package -p X ({})    {:7.1} s  ({:.1} CPU-s){}\n",
            f.packages.len(),
            f.seconds,
            f.cpu_seconds,
            if f.all_ok { "" } else { "  (some FAILED)" }
        );
    }
    s += &format!(
        "  B cargo check --workspace       {}\n",
        fmt_measure(&w.check)
    );
    if w.build.is_some() {
        s += &format!(
            "  cargo build --workspace         {}\n",
            fmt_measure(&w.build)
        );
    }
    s += &format!(
        "  C convoy --verify check         {}\n",
        fmt_measure(&w.convoy_check)
    );
    s += &format!(
        "  W convoy, rerun in C's target   {}\n",
        fmt_measure(&w.convoy_warm)
    );
    if w.convoy_build.is_some() {
        s += &format!(
            "  D convoy --verify build         {}\n",
            fmt_measure(&w.convoy_build)
        );
    }
    let a = w.baseline_a();
    let b = w.baseline_b();
    let line = |name: &str, r: Option<f64>, g: f64| match r {
        Some(r) => format!("  {name:<31} {r:7.2}×   goal ≤ {g}× ({})\n", goal(r <= g)),
        None => format!("  {name:<31}       -\n"),
    };
    s += &line(
        "C / B",
        ratio(w.convoy_check.as_ref(), b),
        GOAL_CHECK_VS_CHECK,
    );
    s += &line(
        "C / A",
        ratio(w.convoy_check.as_ref(), a.map(|a| a.0)),
        GOAL_CHECK_VS_PACKAGE,
    );
    s += &line(
        "W / C",
        ratio(w.convoy_warm.as_ref(), w.first_run()),
        GOAL_WARM_VS_FIRST,
    );
    if w.convoy_build.is_some() {
        s += &line(
            "D / A",
            ratio(w.convoy_build.as_ref(), a.map(|a| a.0)),
            GOAL_BUILD_VS_PACKAGE,
        );
    }
    for (name, m) in [
        ("cargo package", &w.package),
        ("convoy check", &w.convoy_check),
        ("convoy rerun", &w.convoy_warm),
        ("convoy build", &w.convoy_build),
    ] {
        if let Some(m) = m {
            s += &format!("  steps of {name}: {}\n", steps_text(&m.steps));
        }
    }
    s
}

fn steps_text(st: &Steps) -> String {
    let mut parts = Vec::new();
    if let Some(b) = st.before_package {
        parts.push(format!("start {b:.1}s"));
    }
    if let Some(p) = st.package {
        parts.push(format!("package {p:.1}s"));
    }
    if let Some(l) = st.lock_total {
        let each: Vec<String> = st.lock.iter().map(|(n, s)| format!("{n} {s:.2}")).collect();
        parts.push(format!("lock {l:.1}s [{}]", each.join(", ")));
    }
    if let Some(v) = st.verify_total {
        let each: Vec<String> = st
            .verify
            .iter()
            .map(|(n, s)| format!("{n} {s:.1}"))
            .collect();
        parts.push(format!("verify {v:.1}s [{}]", each.join(", ")));
    }
    if let Some(a) = st.after_verify {
        parts.push(format!("after verify {a:.1}s"));
    }
    parts.join("; ")
}

fn table(r: &Results) -> String {
    let mut s = format!(
        "\nPublish pipeline benchmark — {} × {}, {}, load at start {}, -j {}\n{} / {}\nlogs: {}\n",
        r.nproc,
        r.cpu_model,
        r.date,
        r.loadavg_start,
        r.jobs,
        r.cargo_version,
        r.rustc_version,
        r.logs
    );
    for w in &r.workspaces {
        s += &workspace_table(w);
    }
    if let Some(u) = &r.upload {
        s += &format!(
            "\nUpload: {} independent crates, registry answers every request after {} ms (sequential: {:.1} s)\n",
            u.crates,
            u.latency_ms,
            u.crates as f64 * u.latency_ms as f64 / 1000.0
        );
        for run in &u.runs {
            s += &format!(
                "  -j {:<3} {:6.2} s   {:.3}× of 50 sequential round trips, {:.2} round trips per slot\n",
                run.jobs, run.seconds, run.ratio_to_sequential, run.round_trips_per_slot
            );
        }
    }
    s
}

fn md_measure(m: &Option<Measure>) -> String {
    match m {
        Some(m) if m.ok => format!(
            "{:.1} s ({:.2} cores; load {})",
            m.seconds,
            m.cores(),
            m.loadavg_before
        ),
        Some(m) => format!("failed after {:.1} s ({})", m.seconds, m.status),
        None => "not run".to_owned(),
    }
}

fn markdown(r: &Results) -> String {
    let mut s = String::new();
    s += &format!("Command: `{}`\n\n", r.command);
    s += &format!(
        "Machine: {} CPUs, {}; load average {} at the start; {}; {}, {}; `-j {}` for cargo and Convoy alike. \
         A shared 2-core VM where other builds may run: each measurement notes the load average before it.\n\n",
        r.nproc, r.cpu_model, r.loadavg_start, r.date, r.cargo_version, r.rustc_version, r.jobs
    );
    s += "Each measurement starts from an empty target directory (a fresh \
`CARGO_TARGET_DIR`), except W, with the same `CARGO_HOME`, warmed by one \
untimed `cargo fetch`, so crates.io downloads are not measured. Convoy is \
built first (release) and its binary is run directly. Convoy runs `cargo \
convoy publish --dry-run --registry bench --allow-dirty -j N --verify check` \
against a real `cargo convoy serve` on 127.0.0.1 \
(`CARGO_REGISTRIES_BENCH_INDEX`): the dry run packages, locks and verifies \
every crate, and reads the registry's index without uploading (C). W is the \
same command again in C's target directory, as a resume after a failed \
upload would run. Cargo runs `cargo package --workspace --allow-dirty -j N` \
(package and per-crate build-based verify, A; when it fails, A' is the sum \
of `cargo package -p X` over the publishable members in publish order, each \
from an empty target directory) and `cargo check --workspace -j N` (B). Wall \
times; cores = CPU time of the process tree / wall time.\n\n";
    for w in &r.workspaces {
        s += &format!("### {}\n\n", w.label);
        if !w.publishable.is_empty() {
            s += &format!("Publishable members: {}.\n\n", w.publishable.join(", "));
        }
        s += "| Measure | Result | Goal | |\n|---|---:|---|---|\n";
        s += &format!(
            "| A: `cargo package --workspace` | {} | | |\n",
            md_measure(&w.package)
        );
        if let Some(f) = &w.package_fallback {
            s += &format!(
                "| A': Σ `cargo package -p X`, {} packages in publish order | {:.1} s ({}) | | |\n",
                f.packages.len(),
                f.seconds,
                if f.all_ok {
                    "all packaged and verified".to_owned()
                } else {
                    let failed: Vec<&str> = f
                        .packages
                        .iter()
                        .filter(|(_, m)| !m.ok)
                        .map(|(n, _)| n.as_str())
                        .collect();
                    format!("failed: {}", failed.join(", "))
                }
            );
        }
        s += &format!(
            "| B: `cargo check --workspace` | {} | | |\n",
            md_measure(&w.check)
        );
        if w.build.is_some() {
            s += &format!(
                "| `cargo build --workspace` | {} | | |\n",
                md_measure(&w.build)
            );
        }
        s += &format!(
            "| C: Convoy, `--verify check` | {} | | |\n",
            md_measure(&w.convoy_check)
        );
        s += &format!(
            "| W: C again, same target dir | {} | | |\n",
            md_measure(&w.convoy_warm)
        );
        if w.convoy_build.is_some() {
            s += &format!(
                "| D: Convoy, `--verify build` | {} | | |\n",
                md_measure(&w.convoy_build)
            );
        }
        let a = w.baseline_a();
        let b = w.baseline_b();
        let a_name = match a {
            Some((_, n)) if n.starts_with('Σ') => "A'",
            _ => "A",
        };
        let first = w.first_run();
        let mut row = |name: String, r: Option<f64>, g: f64| {
            s += &match r {
                Some(r) => format!("| {name} | {r:.2}× | ≤ {g}× | {} |\n", goal(r <= g)),
                None => format!("| {name} | n/a | ≤ {g}× | not measured |\n"),
            };
        };
        row(
            "C / B".into(),
            ratio(w.convoy_check.as_ref(), b),
            GOAL_CHECK_VS_CHECK,
        );
        row(
            format!("C / {a_name}"),
            ratio(w.convoy_check.as_ref(), a.map(|a| a.0)),
            GOAL_CHECK_VS_PACKAGE,
        );
        row(
            "W / C".into(),
            ratio(w.convoy_warm.as_ref(), first),
            GOAL_WARM_VS_FIRST,
        );
        if w.convoy_build.is_some() {
            row(
                format!("D / {a_name}"),
                ratio(w.convoy_build.as_ref(), a.map(|a| a.0)),
                GOAL_BUILD_VS_PACKAGE,
            );
        }
        s += "\n";
        for (name, m) in [
            ("`cargo package`", &w.package),
            ("Convoy check", &w.convoy_check),
            ("Convoy rerun", &w.convoy_warm),
            ("Convoy build", &w.convoy_build),
        ] {
            if let Some(m) = m {
                let text = steps_text(&m.steps);
                if !text.is_empty() {
                    s += &format!("- Steps of {name}: {text}.\n");
                }
                if let Some(e) = &m.error {
                    let last: Vec<&str> = e
                        .lines()
                        .rev()
                        .take(6)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    s += &format!(
                        "- {name} failed: `{}`\n",
                        last.join(" ⏎ ").replace('`', "'")
                    );
                }
            }
        }
        s += "\n";
    }
    if let Some(u) = &r.upload {
        s += &format!(
            "### Upload concurrency\n\n`convoy_upload::upload_on` sends {} \
independent generated crates (`TarballBuilder::minimal`) to the Convoy \
registry served in-process on 127.0.0.1 behind a layer that delays every \
request, index reads included, by {} ms. Each upload reads the index, `PUT`s \
and polls the index until the version is visible. Goal: close to one round \
trip per `-j` slot, not {} in sequence ({:.1} s).\n\n\
| `-j` | Time | / {} sequential round trips | round trips per slot |\n|---:|---:|---:|---:|\n",
            u.crates,
            u.latency_ms,
            u.crates,
            u.crates as f64 * u.latency_ms as f64 / 1000.0,
            u.crates
        );
        for run in &u.runs {
            s += &format!(
                "| {} | {:.2} s | {:.3}× | {:.2} |\n",
                run.jobs, run.seconds, run.ratio_to_sequential, run.round_trips_per_slot
            );
        }
        s += "\n";
    }
    s += "What limits the figures (per-step times from Convoy's timestamped \
status lines and the mtimes of its lock work directory, in the logs):\n\n\
- Convoy's lock files: one cargo run per crate, all at once against one \
overlay, each starting from the workspace's `Cargo.lock` as `cargo package` \
does (no index reads for what the workspace locked); the siblings' final \
checksums are filled in afterwards, in publish order.\n\
- Verification: libraries are built in batches, one cargo invocation each, \
when cargo's resolution (`cargo tree`) shows every member's graph unchanged \
by the others; candidates for a batch are libraries whose graphs alone agree \
on the features of every package they share. The `cargo tree` runs cost a \
resolution per library. An unused proc-macro is type-checked as a root. \
Packages with binaries are built one by one after the batches. Where \
libraries ask a shared dependency for different features, each feature set \
is compiled, which `cargo check --workspace` (one unified set) never does.\n\
- The rerun reuses the overlay URL (a port derived from the content key), \
so cargo finds every build `Fresh`, and takes the lock files and the \
`cargo tree` resolutions of the first run, kept by exact inputs; what \
remains is packaging (whose `.crate`s the file checks read, so no \
`cargo package --list` runs) and one `Fresh` cargo invocation per batch \
or package.\n\
- Uploads: each crate costs an index read, the `PUT` and at least one \
visibility poll, so one slot takes about 1.1 round trips per crate; with \
more slots than crates per slot the fixed rounds show.\n\n";
    s += "To reproduce on a real workspace, check it out anywhere and pass its \
root, e.g. `cargo xtask bench publish --workspace /path/to/serde --workspace \
/path/to/tracing --no-upload`; nothing of it is kept in this repository.\n";
    s
}
