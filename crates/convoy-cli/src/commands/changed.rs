//! `cargo convoy changed`: glue over `convoy_workflow::changed`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{ChangedArgs, WorkflowFormat};
use crate::status::{Status, Tone};

pub fn exec(args: ChangedArgs, runtime: &tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
    let report = convoy_workflow::changed(&convoy_workflow::ChangedOptions {
        runtime: runtime.clone(),
        manifest_path: args.packages.manifest_path.clone(),
        selection: args.packages.selection(),
        registry: args.registry.request(),
    })
    .context("failed to compare the workspace with the registry")?;
    let status = Status::new();
    for p in &report.packages {
        let published = p.published_version.as_deref().unwrap_or("none");
        let dependents = if p.dependents.is_empty() {
            String::new()
        } else {
            format!("; reaches {}", p.dependents.join(", "))
        };
        match p.reason {
            Some(convoy_workflow::ChangeReason::Unpublished) => status.line(
                Tone::Warn,
                "Unpublished",
                &format!(
                    "{} v{} (registry has {published}){dependents}",
                    p.name, p.version
                ),
            ),
            Some(convoy_workflow::ChangeReason::Content) => status.line(
                Tone::Warn,
                "Changed",
                &format!(
                    "{} v{}: {} differ from `{}`'s copy{dependents}",
                    p.name,
                    p.version,
                    p.files.join(", "),
                    report.registry
                ),
            ),
            None => status.line(
                Tone::Ok,
                "Unchanged",
                &format!("{} v{} is as on `{}`", p.name, p.version, report.registry),
            ),
        }
    }
    let count = report.packages.iter().filter(|p| p.changed).count();
    status.line(
        Tone::Ok,
        "Finished",
        &format!(
            "{count} of {} crates changed since `{}`'s copy",
            report.packages.len(),
            report.registry
        ),
    );
    if let WorkflowFormat::Json = args.format {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report).context("failed to write the result")?;
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}
