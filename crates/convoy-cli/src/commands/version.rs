//! `cargo convoy version`: glue over `convoy_workflow::version`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{VersionArgs, WorkflowFormat};
use crate::status::{Status, Tone};

pub fn exec(args: VersionArgs, runtime: &tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
    let report = convoy_workflow::version(&convoy_workflow::VersionOptions {
        runtime: runtime.clone(),
        manifest_path: args.packages.manifest_path.clone(),
        selection: args.packages.selection(),
        registry: args.registry.request(),
        spec: args.bump,
        pre: args.pre,
        dry_run: args.dry_run,
    })
    .context("failed to bump the versions")?;
    let status = Status::new();
    for note in &report.notes {
        status.line(Tone::Note, "note", note);
    }
    let verb = if report.dry_run {
        "Would bump"
    } else {
        "Bumping"
    };
    for p in &report.packages {
        let why = match p.why {
            convoy_workflow::Why::Selected => match p.level {
                Some(level) => format!("{level}, from commits"),
                None => "selected".to_owned(),
            },
            convoy_workflow::Why::Dependent => "a dependency moved".to_owned(),
            convoy_workflow::Why::SharedVersion => "shares the workspace version".to_owned(),
        };
        status.line(
            Tone::Ok,
            verb,
            &format!("{} v{} -> v{} ({why})", p.name, p.from, p.to),
        );
    }
    let verb = if report.dry_run {
        "Would update"
    } else {
        "Updating"
    };
    for r in &report.requirements {
        status.line(
            Tone::Ok,
            verb,
            &format!(
                "{} {} `{}`: \"{}\" -> \"{}\"",
                r.manifest.display(),
                r.table,
                r.dependency,
                r.from,
                r.to
            ),
        );
    }
    let files: Vec<String> = report
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    if report.dry_run {
        status.line(
            Tone::Warn,
            "Dry run",
            &format!("nothing written; would write {}", files.join(", ")),
        );
    } else if !files.is_empty() {
        status.line(Tone::Ok, "Wrote", &files.join(", "));
    }
    if let WorkflowFormat::Json = args.format {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report).context("failed to write the result")?;
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}
