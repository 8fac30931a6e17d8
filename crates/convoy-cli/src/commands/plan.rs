//! `cargo convoy plan`: glue over `convoy_plan::ops::plan`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{PlanArgs, PlanFormat, ReleaseScopeArgs};

/// Maps the shared flags onto the library's options.
pub fn opts(
    scope: ReleaseScopeArgs,
    compare_content: bool,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<convoy_plan::ops::PlanOpts> {
    let config = scope.cargo.apply()?;
    Ok(convoy_plan::ops::PlanOpts {
        runtime: runtime.clone(),
        selection: scope.packages.selection(),
        manifest_path: scope.packages.manifest_path,
        registry: scope.registry.request(),
        offline: config.offline,
        config,
        compare_content,
        // Compare what `cargo convoy publish` would upload, not what plain
        // `cargo package` makes.
        content: Some(convoy_plan::ops::ChecksumSource(std::sync::Arc::new(
            convoy_release::EngineChecksums,
        ))),
    })
}

pub fn exec(args: PlanArgs, runtime: &tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
    let plan = convoy_plan::ops::plan(&opts(args.scope, !args.no_content_check, runtime)?)
        .context("failed to plan the release")?;
    let text = match args.format {
        PlanFormat::Human => convoy_plan::render::plan_human(&plan),
        PlanFormat::Json => convoy_plan::render::plan_json(&plan) + "\n",
        PlanFormat::Dot => convoy_plan::render::plan_dot(&plan),
        PlanFormat::Mermaid => convoy_plan::render::plan_mermaid(&plan),
    };
    anstream::stdout()
        .write_all(text.as_bytes())
        .context("failed to write the plan")?;
    let errors = plan
        .diagnostics
        .iter()
        .any(|d| d.severity == convoy_plan::Severity::Error);
    Ok(if errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
