//! `cargo convoy check`: glue over `convoy_plan::ops::check`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{CheckArgs, CheckFormat};

pub fn exec(args: CheckArgs, runtime: &tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
    let report = convoy_plan::ops::check(&super::plan::opts(args.scope, true, runtime)?)
        .context("failed to check the release")?;
    let text = match args.format {
        CheckFormat::Human => convoy_plan::render::check_human(&report),
        CheckFormat::Json => convoy_plan::render::check_json(&report) + "\n",
    };
    anstream::stdout()
        .write_all(text.as_bytes())
        .context("failed to write the report")?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
