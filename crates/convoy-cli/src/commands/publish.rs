//! `cargo convoy publish`: glue over `convoy_release::publish`, and the
//! rendering of its events as cargo-style status lines.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use convoy_release::{Outcome, PublishOptions, ReleaseError, ReleaseEvent, ReleaseReport};
use convoy_upload::UploadEvent;
use convoy_verify::{VerifyEvent, VerifyMode};

use crate::cli::{PublishArgs, PublishFormat, TagArgs, VerifyArg};
use crate::status::{Status, Tone};

pub fn exec(args: PublishArgs, runtime: &tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
    let config = args.cargo.apply()?;
    let opts = PublishOptions {
        config,
        runtime: runtime.clone(),
        selection: args.packages.selection(),
        manifest_path: args.packages.manifest_path,
        registries: registries(args.registries, args.index, args.token),
        verify: match args.verify {
            VerifyArg::Check => VerifyMode::Check,
            VerifyArg::Build => VerifyMode::Build,
            VerifyArg::None => VerifyMode::None,
        },
        verify_tests: args.verify_tests,
        jobs: args.jobs,
        dry_run: args.dry_run,
        allow_dirty: args.allow_dirty,
        locked: args.locked,
        visibility_timeout: Duration::from_secs(args.timeout),
        features: args
            .features
            .iter()
            .flat_map(|f| f.split([' ', ',']))
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
        all_features: args.all_features,
        no_default_features: args.no_default_features,
        target_dir: args.target_dir,
        atomic: args.atomic,
    };
    if args.tags.tag {
        convoy_workflow::check_tagging(&tag_options(&opts, &args.tags, Vec::new()))
            .context("cannot tag the release")?;
    }
    let mut status = Status::new();
    let mut progress = Progress::default();
    let result = convoy_release::publish(&opts, &mut |event| {
        render(&mut status, &mut progress, event)
    });
    status.finish_bar();
    let report = match result {
        Ok(report) => report,
        Err(ReleaseError::Checks(diagnostics)) => {
            for d in &diagnostics {
                let package = d.package.as_deref().unwrap_or("workspace");
                status.line(
                    Tone::Error,
                    "error",
                    &format!("[{}] {package}: {}", d.code.as_str(), d.message),
                );
                status.line(Tone::Note, "help", &d.hint);
            }
            return Err(ReleaseError::Checks(diagnostics).into());
        }
        Err(e) => return Err(e.into()),
    };
    summarize(&status, &report);
    if let PublishFormat::Json = args.format {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report).context("failed to write the result")?;
        writeln!(out)?;
    }
    if args.tags.tag {
        tag(&status, &report, &opts, &args.tags)?;
    }
    if report.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        let failed: Vec<String> = report
            .registries
            .iter()
            .flat_map(|r| {
                r.crates
                    .iter()
                    .filter(|c| c.outcome.is_failure())
                    .map(move |c| format!("{} v{} on `{}`", c.name, c.version, r.registry))
            })
            .collect();
        anyhow::bail!(
            "{} crate(s) were not published: {}; run the same command again to resume",
            failed.len(),
            failed.join(", ")
        )
    }
}

/// `--tag`: an annotated tag for each crate version every registry of the
/// run confirmed; a crate that failed or was blocked anywhere gets none, and
/// a rerun adds the tags still missing.
fn tag(
    status: &Status,
    report: &ReleaseReport,
    opts: &PublishOptions,
    args: &TagArgs,
) -> anyhow::Result<()> {
    if report.dry_run {
        status.line(
            Tone::Note,
            "Tagging",
            "skipped: nothing is published in a dry run",
        );
        return Ok(());
    }
    let confirmed: Vec<(String, String)> = report
        .registries
        .first()
        .map(|first| {
            first
                .crates
                .iter()
                .filter(|c| {
                    report.registries.iter().all(|r| {
                        r.crates
                            .iter()
                            .any(|o| o.name == c.name && o.version == c.version && is_confirmed(o))
                    })
                })
                .map(|c| (c.name.clone(), c.version.clone()))
                .collect()
        })
        .unwrap_or_default();
    let tags = convoy_workflow::tag_released(&tag_options(opts, args, confirmed))
        .context("failed to tag the release")?;
    for t in &tags.created {
        status.line(Tone::Ok, "Tagged", t);
    }
    for t in &tags.existing {
        status.line(Tone::Note, "Tagged", &format!("{t} (already)"));
    }
    if !tags.pushed.is_empty() {
        status.line(
            Tone::Ok,
            "Pushed",
            &format!("{} tags to `origin`", tags.pushed.len()),
        );
    }
    Ok(())
}

fn tag_options(
    opts: &PublishOptions,
    args: &TagArgs,
    crates: Vec<(String, String)>,
) -> convoy_workflow::TagOptions {
    convoy_workflow::TagOptions {
        manifest_path: opts.manifest_path.clone(),
        format: args.tag_format.clone(),
        crates,
        push: args.push.then(|| "origin".to_owned()),
    }
}

/// The registry holds this very version: uploaded now, or skipped because
/// it was already there with the same checksum.
fn is_confirmed(c: &convoy_release::CrateResult) -> bool {
    matches!(
        c.outcome,
        convoy_release::Outcome::Published | convoy_release::Outcome::Skipped
    )
}

fn registries(
    names: Vec<String>,
    index: Option<String>,
    token: Option<String>,
) -> Vec<convoy_index_client::RegistryRequest> {
    let request =
        |registry: Option<String>, index: Option<String>| convoy_index_client::RegistryRequest {
            registry,
            index,
            token: token.clone(),
        };
    if let Some(index) = index {
        return vec![request(None, Some(index))];
    }
    names.into_iter().map(|n| request(Some(n), None)).collect()
}

/// What the renderer remembers between events: how many crates an upload
/// bar counts, and whether it is showing.
#[derive(Default)]
struct Progress {
    crates: u64,
    uploading: Option<String>,
}

fn render(status: &mut Status, progress: &mut Progress, event: ReleaseEvent) {
    match event {
        ReleaseEvent::PreviousRun(prev) => {
            let how = if prev.finished {
                "finished"
            } else {
                "stopped before finishing"
            };
            status.line(
                Tone::Note,
                "Resuming",
                &format!(
                    "the run of {} {how}: {} published, {} failed",
                    prev.run,
                    prev.published.len(),
                    prev.failures.len()
                ),
            );
            for f in &prev.failures {
                status.line(Tone::Note, "", &format!("previously failed: {f}"));
            }
        }
        ReleaseEvent::Planned {
            registry,
            packages,
            waves,
        } => {
            // Every registry gets the same crates; the upload bar counts them.
            progress.crates = packages.len() as u64;
            status.line(
                Tone::Ok,
                "Planning",
                &format!(
                    "{} crates in {waves} waves for `{registry}`",
                    packages.len()
                ),
            )
        }
        ReleaseEvent::Warning(d) => status.line(
            Tone::Warn,
            "warning",
            &format!(
                "[{}] {}: {}",
                d.code.as_str(),
                d.package.as_deref().unwrap_or("workspace"),
                d.message
            ),
        ),
        ReleaseEvent::Packaging { registry, count } => status.line(
            Tone::Ok,
            "Packaging",
            &format!("{count} crates for `{registry}`"),
        ),
        ReleaseEvent::Packaged { krate, .. } => {
            status.line(
                Tone::Ok,
                "Packaged",
                &format!("{} v{} ({})", krate.name, krate.version, &krate.cksum[..12]),
            );
            for change in &krate.changes {
                status.line(Tone::Note, "note", &format!("{}: {change}", krate.name));
            }
        }
        ReleaseEvent::Verify { event, .. } => match event {
            VerifyEvent::Started {
                name,
                version,
                index,
                total,
            } => {
                if index == 0 {
                    status.start_bar("Verifying", total as u64);
                }
                status.line(Tone::Ok, "Verifying", &format!("{name} v{version}"));
                status.bar_message(&format!("{name} v{version}"));
            }
            VerifyEvent::Testing { name, version } => {
                status.line(Tone::Ok, "Testing", &format!("{name} v{version}"))
            }
            VerifyEvent::Finished { .. } => status.bar_step(),
            _ => {}
        },
        ReleaseEvent::Upload { registry, event } => {
            upload_progress(status, progress, &registry, event, None)
        }
        ReleaseEvent::StageOpened {
            registry,
            id,
            expires_at,
        } => status.line(
            Tone::Ok,
            "Staging",
            &format!("on `{registry}` in stage `{id}` (expires {expires_at} unless extended)"),
        ),
        ReleaseEvent::StageUpload {
            registry,
            id,
            event,
        } => upload_progress(status, progress, &registry, event, Some(&id)),
        ReleaseEvent::Committing { registry, id } => {
            status.finish_bar();
            status.line(
                Tone::Ok,
                "Committing",
                &format!("stage `{id}` on `{registry}`"),
            )
        }
        ReleaseEvent::Committed { registry, release } => status.line(
            Tone::Ok,
            "Released",
            &format!(
                "{} crates on `{registry}` as release `{}`",
                release.crates.len(),
                release.id
            ),
        ),
        ReleaseEvent::StageAborted { registry, id, why } => {
            status.finish_bar();
            status.line(
                Tone::Warn,
                "Aborted",
                &format!("stage `{id}` on `{registry}`, {why}; none of it is visible"),
            )
        }
        ReleaseEvent::StageAbortFailed {
            registry,
            id,
            error,
        } => status.line(
            Tone::Warn,
            "warning",
            &format!(
                "could not abort stage `{id}` on `{registry}` ({error}); it stays invisible, expires on its own, and the next `--atomic` run aborts it"
            ),
        ),
        _ => {}
    }
}

/// An upload event, under the upload bar; `stage` is set when the upload
/// goes into a stage, where "published" means staged.
fn upload_progress(
    status: &mut Status,
    progress: &mut Progress,
    registry: &str,
    event: UploadEvent,
    stage: Option<&str>,
) {
    if progress.uploading.as_deref() != Some(registry) {
        progress.uploading = Some(registry.to_owned());
        status.start_bar("Uploading", progress.crates);
    }
    let done = matches!(
        event,
        UploadEvent::Published { .. }
            | UploadEvent::Skipped { .. }
            | UploadEvent::DryRun { .. }
            | UploadEvent::Failed { .. }
            | UploadEvent::Blocked { .. }
    );
    match (stage, event) {
        (Some(id), UploadEvent::Published { name, version }) => status.line(
            Tone::Ok,
            "Staged",
            &format!("{name} v{version} in `{id}` on `{registry}`"),
        ),
        (_, event) => render_upload(status, registry, event),
    }
    if done {
        status.bar_step();
    }
}

fn render_upload(status: &mut Status, registry: &str, event: UploadEvent) {
    match event {
        UploadEvent::Uploading {
            name,
            version,
            attempt,
        } => {
            let again = if attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            status.line(
                Tone::Ok,
                "Uploading",
                &format!("{name} v{version} to `{registry}`{again}"),
            );
        }
        UploadEvent::Published { name, version } => status.line(
            Tone::Ok,
            "Published",
            &format!("{name} v{version} at `{registry}`"),
        ),
        UploadEvent::Skipped { name, version } => status.line(
            Tone::Note,
            "Skipped",
            &format!("{name} v{version}, already on `{registry}` with identical content"),
        ),
        UploadEvent::DryRun { name, version } => status.line(
            Tone::Warn,
            "Would upload",
            &format!("{name} v{version} to `{registry}` (dry run)"),
        ),
        UploadEvent::Paced {
            name,
            version,
            wait,
        } => status.line(
            Tone::Note,
            "Pacing",
            &format!(
                "{name} v{version} for {}s (registry rate limits)",
                wait.as_secs()
            ),
        ),
        UploadEvent::Retrying {
            name,
            version,
            reason,
            after,
        } => status.line(
            Tone::Warn,
            "Retrying",
            &format!("{name} v{version} in {:.1}s: {reason}", after.as_secs_f64()),
        ),
        UploadEvent::Failed {
            name,
            version,
            reason,
        } => status.line(
            Tone::Error,
            "Failed",
            &format!("{name} v{version}: {reason}"),
        ),
        UploadEvent::Blocked { name, version, by } => status.line(
            Tone::Warn,
            "Blocked",
            &format!("{name} v{version}, waits for {}", by.join(", ")),
        ),
        _ => {}
    }
}

fn summarize(status: &Status, report: &ReleaseReport) {
    for r in &report.registries {
        if let Some(id) = &r.release {
            status.line(
                Tone::Note,
                "Release",
                &format!(
                    "`{id}` on `{}`; to yank all of it: `cargo convoy yank --release {id}`",
                    r.registry
                ),
            );
        }
        let count = |o: Outcome| r.crates.iter().filter(|c| c.outcome == o).count();
        status.line(
            Tone::Ok,
            "Finished",
            &format!(
                "`{}`: {} published, {} skipped, {} failed, {} blocked{}{}",
                r.registry,
                count(Outcome::Published),
                count(Outcome::Skipped),
                count(Outcome::Failed),
                count(Outcome::Blocked),
                if count(Outcome::Aborted) > 0 {
                    format!(", {} aborted", count(Outcome::Aborted))
                } else {
                    String::new()
                },
                if report.dry_run {
                    format!(", {} would be uploaded (dry run)", count(Outcome::DryRun))
                } else {
                    String::new()
                }
            ),
        );
    }
}
