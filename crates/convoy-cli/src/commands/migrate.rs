//! `cargo convoy migrate --from-data DIR --database URL --storage URL`.

use std::process::ExitCode;

use anyhow::Context;
use convoy_store::postgres::PgStore;
use convoy_store::{Backend, OpenOptions};

use crate::cli::MigrateArgs;
use crate::status::{Status, Tone};

pub(crate) fn exec(
    args: MigrateArgs,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<ExitCode> {
    // Validates both URLs the way `serve` does.
    let Backend::Postgres { url, storage } =
        Backend::from_urls(&args.from_data, Some(&args.database), Some(&args.storage))?
    else {
        anyhow::bail!("`--database` must name a PostgreSQL database");
    };
    let status = Status::new();
    let report = runtime.block_on(async {
        let store = PgStore::connect(&url)
            .await
            .context("failed to open the PostgreSQL database")?;
        let options = OpenOptions {
            cache_bytes: 0,
            ..OpenOptions::default()
        };
        let blobs = convoy_store::backend::open_storage(&storage, &options)?;
        let report =
            convoy_store::migrate::from_data(&args.from_data, &store, blobs.as_ref(), |line| {
                status.line(Tone::Ok, "Migrated", line)
            })
            .await?;
        anyhow::Ok(report)
    })?;
    status.line(
        Tone::Ok,
        "Finished",
        &format!(
            "{} crates: {} versions copied, {} already present, {} blobs checked, {} tokens copied",
            report.crates,
            report.versions_copied,
            report.versions_present,
            report.blobs,
            report.tokens_copied
        ),
    );
    Ok(ExitCode::SUCCESS)
}
