//! `cargo xtask bench web`: crate pages of the web UI under concurrent
//! load, against the goal of issue 12 (p99 < 5 ms with 32 clients).
//!
//! Publishes `--crates` crates with a README (a heading, a table, a code
//! block) and a few versions each through the real Web API of a release
//! `cargo convoy serve`, reads every `/crates/NAME` and
//! `/crates/NAME/VERSION` page once (so the run measures what a browsing
//! team sees: pages served from the per-version cache, which every publish
//! or yank invalidates), then reads them round robin from `--connections`
//! keep-alive clients for a fixed time. Optionally cross-checks with
//! `wrk --latency`. Everything started here is stopped on the way out.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::Format;
use crate::load::{self, Report};
use crate::registry::{
    Server, build_server, check_clean, cpu_model, interrupted, pin_self, publish_body, today,
    write_wrk_script, wrk_binary,
};

/// The goal of issue 12.
const GOAL_P99_MS: f64 = 5.0;

const README: &str = "# A crate\n\nWhat it does, in a paragraph of text that is long enough to \
wrap on a narrow screen and look like a real README.\n\n## Usage\n\n```rust\nfn main() {\n    \
println!(\"hello\");\n}\n```\n\n| Feature | Meaning |\n|---------|---------|\n| `std` | the \
standard library |\n| `serde` | serialization |\n";

/// Options of `bench web`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Crates to publish.
    #[arg(long, default_value_t = 50)]
    crates: usize,
    /// Versions of each crate.
    #[arg(long, default_value_t = 3)]
    versions: usize,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Unmeasured seconds before.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Pin the server to CPU 0 and the load generator to the others, with
    /// `taskset`, so the two do not take turns on the same core.
    #[arg(long)]
    pin: bool,
    /// Cross-check with `wrk --latency` (installed with apt-get if missing).
    #[arg(long)]
    wrk: bool,
    /// Never apt-get install wrk.
    #[arg(long)]
    no_install: bool,
    /// The `cargo-convoy` binary; by default built with `cargo build --release`.
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Rewrite the "Web UI" section of docs/BENCHMARKS.md with the figures.
    #[arg(long)]
    update_docs: bool,
}

#[derive(Debug, Serialize)]
struct Results {
    command: String,
    date: String,
    nproc: usize,
    pinned: bool,
    /// Load average when the run ended: other work on the machine.
    loadavg: String,
    cpu_model: String,
    crates: usize,
    versions_per_crate: usize,
    pages: usize,
    connections: usize,
    duration_s: u64,
    pages_read: Report,
    wrk_p99_ms: Option<f64>,
    wrk_rps: Option<f64>,
    goal_p99_ms: f64,
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::select! {
            result = run(&args) => result,
            () = interrupted() => bail!("interrupted; stopped everything this run started"),
        }
    })
}

async fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.duration <= 60 && args.warmup <= 30,
        "--duration ≤ 60, --warmup ≤ 30"
    );
    anyhow::ensure!(
        (1..=2000).contains(&args.crates) && (1..=20).contains(&args.versions),
        "1 ≤ --crates ≤ 2000, 1 ≤ --versions ≤ 20"
    );
    anyhow::ensure!(
        (1..=256).contains(&args.connections),
        "1 ≤ --connections ≤ 256"
    );
    let command = format!(
        "cargo xtask {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => build_server()?,
    };
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let pin = if args.pin {
        Some(pin_self(nproc)?)
    } else {
        None
    };
    let tmp = tempfile::Builder::new()
        .prefix("convoy-bench-web-")
        .tempdir()?;
    let server = Server::start(
        pin.as_deref(),
        &bin,
        &tmp.path().join("data"),
        &tmp.path().join("server.log"),
    )?;
    let token = server.token()?;
    let addr = server.addr;
    eprintln!("server {addr} (pid {})", server.pid);

    let names: Vec<String> = (0..args.crates).map(|i| format!("web-bench-{i}")).collect();
    let mut paths = Vec::new();
    for v in 0..args.versions {
        let vers = format!("1.{v}.0");
        let bodies = names
            .iter()
            .map(|n| publish_body(n, &vers, Vec::new(), Some(README.to_owned())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let report = load::Publishes {
            addrs: vec![addr],
            token: token.clone(),
            bodies: Arc::new(bodies),
            clients: 4,
            limit: Duration::from_secs(120),
        }
        .run()
        .await?;
        if report.errors > 0 || report.ok != names.len() as u64 {
            bail!(
                "setup publishes failed: {} ok, {} errors; first: {}",
                report.ok,
                report.errors,
                report.first_error.as_deref().unwrap_or("none")
            );
        }
        paths.extend(names.iter().map(|n| format!("/crates/{n}/{vers}")));
    }
    paths.extend(names.iter().map(|n| format!("/crates/{n}")));
    // Every page once, checked, before measuring.
    for path in &paths {
        let (status, body) = load::get(addr, path).await?;
        if status != hyper::StatusCode::OK || !body.starts_with(b"<!DOCTYPE html>") {
            bail!("{path} answered {status}");
        }
    }
    eprintln!(
        "reading {} pages from {} clients for {}s…",
        paths.len(),
        args.connections,
        args.duration
    );
    let paths = Arc::new(paths);
    let report = load::Reads {
        addrs: vec![addr],
        paths: Arc::clone(&paths),
        connections: args.connections,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
    }
    .run()
    .await?;
    check_clean("crate pages", &report)?;
    let (wrk_p99_ms, wrk_rps) = if args.wrk {
        let wrk = wrk_binary(args.no_install).map_err(anyhow::Error::msg)?;
        let script = write_wrk_script(tmp.path(), &paths)?;
        let out = Command::new(wrk)
            .arg(format!("-t{}", args.client_threads.max(1)))
            .arg(format!("-c{}", args.connections))
            .arg(format!("-d{}s", args.duration))
            .arg("--latency")
            .arg("-s")
            .arg(&script)
            .arg(format!("http://{addr}"))
            .stdin(Stdio::null())
            .output()
            .context("run wrk")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("Non-2xx") {
            bail!("wrk saw non-2xx responses:\n{text}");
        }
        (wrk_p99(&text), wrk_field(&text, "Requests/sec:"))
    } else {
        (None, None)
    };
    drop(server);

    let results = Results {
        command,
        date: today(),
        nproc,
        pinned: args.pin,
        loadavg: std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        cpu_model: cpu_model(),
        crates: args.crates,
        versions_per_crate: args.versions,
        pages: paths.len(),
        connections: args.connections,
        duration_s: args.duration,
        pages_read: report,
        wrk_p99_ms,
        wrk_rps,
        goal_p99_ms: GOAL_P99_MS,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Format::Table => print!("{}", markdown(&results)),
    }
    if args.update_docs {
        let path = crate::docs::update_section("## Web UI", &markdown(&results))?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}

fn wrk_field(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The `99%` line of `wrk --latency`, in milliseconds.
fn wrk_p99(text: &str) -> Option<f64> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))?
        .trim();
    let (number, factor) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn markdown(r: &Results) -> String {
    let p = &r.pages_read;
    let met = if p.p99_ms < r.goal_p99_ms {
        "met"
    } else {
        "MISSED"
    };
    let mut out = format!(
        "`{}` on {} ({} CPUs, load average {} at the end), {}: {} crates × {} versions with \
         READMEs, {} distinct crate pages (`/crates/NAME` and `/crates/NAME/VERSION`), {} \
         keep-alive clients for {} s, client and server on the same machine{}.\n\n\
         | Figure | Value | Goal |\n|---|---|---|\n\
         | crate page p99 | {:.2} ms | < {} ms ({met}) |\n\
         | crate page p50 | {:.2} ms | |\n\
         | pages/s | {:.0} | |\n\
         | errors | {} | 0 |\n",
        r.command,
        r.cpu_model,
        r.nproc,
        r.loadavg,
        r.date,
        r.crates,
        r.versions_per_crate,
        r.pages,
        r.connections,
        r.duration_s,
        if r.pinned {
            " (server pinned to CPU 0, client to the others)"
        } else {
            ""
        },
        p.p99_ms,
        r.goal_p99_ms,
        p.p50_ms,
        p.per_second,
        p.errors,
    );
    if let (Some(p99), Some(rps)) = (r.wrk_p99_ms, r.wrk_rps) {
        out.push_str(&format!(
            "| wrk cross-check | p99 {p99:.2} ms, {rps:.0} pages/s | |\n"
        ));
    }
    let busy = r
        .loadavg
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l > r.nproc as f64);
    if busy {
        out.push_str(
            "\nThe load average was above the CPU count: other work shared the CPUs, and the \
             tail figures measure that contention as much as the server. Re-run on a quiet \
             machine before reading the p99 against the goal.\n",
        );
    }
    out
}
