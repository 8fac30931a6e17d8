//! `cargo convoy serve`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use convoy_protocol::limits::IndexLimits;
use convoy_registry::{App, ConnectionLimits, Limits, Maintenance, RateLimit, Settings};
use convoy_store::object::DownloadMode;
use convoy_store::{Backend, OpenOptions};

use crate::cli::ServeArgs;

pub(crate) fn exec(args: ServeArgs, runtime: &tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
    log_panics_escaped();
    let backend = args.state.backend()?;
    let options = OpenOptions {
        download_mode: match args.s3_redirect_secs {
            Some(secs) => DownloadMode::Redirect(Duration::from_secs(secs.clamp(1, 7 * 86_400))),
            None => DownloadMode::Stream,
        },
        cache_bytes: args.blob_cache_bytes,
        commit_delay: fault_commit_delay(),
        // One server per data directory; any number per database.
        exclusive: true,
    };
    // The orphan sweep is safe only where one process writes the blobs: on
    // shared storage another node may rewrite a blob between the sweep's
    // age check and its delete (docs/DEPLOY.md), so it is opt-in there.
    let sweep_secs = match backend {
        Backend::Data(_) => args.sweep_interval_secs.unwrap_or(3600),
        Backend::Postgres { .. } => args.sweep_interval_secs.unwrap_or(0),
    };
    let sweep_every = (sweep_secs > 0).then(|| Duration::from_secs(sweep_secs));
    runtime.block_on(async move {
        let backends = convoy_store::open(&backend, &options).await?;
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("failed to listen on `{}`", args.addr))?;
        let local = listener.local_addr()?;
        let public_url = args
            .public_url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{local}"));
        let settings = Settings {
            public_url,
            auth_required: args.auth_required,
            limits: Limits {
                max_upload_bytes: args.max_upload_bytes,
                max_unpacked_bytes: args.max_unpacked_bytes,
                max_path_bytes: args.max_path_bytes,
                max_pax_bytes: args.max_pax_bytes,
                index: IndexLimits {
                    max_features: args.max_features,
                    max_feature_values: args.max_feature_values,
                    max_dependencies: args.max_dependencies,
                    max_line_bytes: args.max_index_line_bytes,
                },
                ..Limits::default()
            },
            publish_rate: args
                .publish_burst
                .zip(args.publish_refill_secs)
                .map(|(burst, secs)| RateLimit {
                    burst,
                    refill: Duration::from_secs_f64(secs.clamp(0.0, 1e9)),
                }),
            companions: !args.no_companions,
        };
        let connections = ConnectionLimits {
            header_timeout: Duration::from_secs(args.header_timeout_secs),
            body_timeout: Duration::from_secs(args.body_timeout_secs),
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            max_connections: args.max_connections,
        };
        let store = backends.store.clone();
        let app = App::new(store.clone(), backends.blobs.clone(), settings)
            .with_registry_name(&args.registry_name);
        let maintenance = app.spawn_maintenance(Maintenance {
            sweep_every,
            sweep_grace: Duration::from_secs(args.sweep_grace_secs),
            ..Maintenance::default()
        });
        announce(&format!("listening on http://{local}"))?;
        convoy_registry::serve_with(
            listener,
            convoy_registry::router(app),
            connections,
            shutdown_signal(),
        )
        .await?;
        maintenance.abort();
        // Buffered download counts reach the database before exit.
        store.flush().await?;
        drop(backends);
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A panic's message can quote request data (newlines, escape codes), so
/// the default hook, which prints it raw, is replaced by one that logs it
/// escaped. Handlers are also behind `CatchPanicLayer`; this covers the
/// message that the panic itself prints.
fn log_panics_escaped() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        tracing::error!(
            panic = %convoy_protocol::text::quote_at_most(&message, 500),
            "panic"
        );
    }));
}

/// The one line on stdout that scripts and tests wait for.
#[allow(clippy::print_stdout)]
fn announce(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `CONVOY_FAULT_COMMIT_DELAY_MS`: fault injection for the crash tests, which
/// must kill the server while a release commit holds its transaction open.
/// Never set it in production.
fn fault_commit_delay() -> Duration {
    std::env::var("CONVOY_FAULT_COMMIT_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::ZERO)
}
