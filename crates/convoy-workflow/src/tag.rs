//! Tags for what the registries confirmed.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{WorkflowConfig, tag_name, validate_tag_format};
use crate::{Git, WorkflowError};

/// What to tag.
#[derive(Debug, Clone, Default)]
pub struct TagOptions {
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// `--tag-format`; `[workspace.metadata.convoy] tag-format` otherwise.
    pub format: Option<String>,
    /// `(name, version)` of every crate version confirmed on every registry
    /// of the run. The caller decides what "confirmed" means; this only
    /// tags.
    pub crates: Vec<(String, String)>,
    /// `--push`: the remote to push the tags to.
    pub push: Option<String>,
}

/// What tagging did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TagReport {
    /// Tags created now, on `HEAD`.
    pub created: Vec<String>,
    /// Tags that already existed (from an earlier run) and were left as
    /// they are: a tag is never moved.
    pub existing: Vec<String>,
    /// Tags pushed, with `push`.
    pub pushed: Vec<String>,
}

/// Checks, before a release starts, that [`tag_released`] will be able to
/// tag after it: a git work tree and a valid tag format. Finding out after
/// the uploads would leave a published release untagged.
pub fn check_tagging(opts: &TagOptions) -> Result<(), WorkflowError> {
    prepare(opts).map(drop)
}

/// The tag format in force and git, checked.
fn prepare(opts: &TagOptions) -> Result<(String, Git), WorkflowError> {
    let ws = convoy_workspace::load(opts.manifest_path.as_deref())?;
    let config = WorkflowConfig::from_metadata(&ws.convoy_metadata)?;
    let format = opts.format.clone().unwrap_or(config.tag_format);
    validate_tag_format(&format)?;
    let git = Git::new(&ws.root);
    if !git.is_repository() {
        return Err(WorkflowError::NotARepository {
            dir: ws.root.clone(),
            why: "`--tag` needs one",
        });
    }
    Ok((format, git))
}

/// Creates an annotated tag on `HEAD` for each of `opts.crates` that has
/// none, then pushes them all with `opts.push`. Running it again creates
/// only what is missing.
pub fn tag_released(opts: &TagOptions) -> Result<TagReport, WorkflowError> {
    let (format, git) = prepare(opts)?;
    let existing = git.tags().map_err(WorkflowError::Git)?;
    let mut report = TagReport::default();
    for (name, version) in &opts.crates {
        let tag = tag_name(&format, name, version);
        if existing.contains(&tag) {
            report.existing.push(tag);
            continue;
        }
        git.create_tag(&tag, &format!("{name} {version}"))
            .map_err(WorkflowError::Git)?;
        report.created.push(tag);
    }
    if let Some(remote) = &opts.push {
        let all: Vec<String> = report
            .created
            .iter()
            .chain(&report.existing)
            .cloned()
            .collect();
        git.push_tags(remote, &all).map_err(WorkflowError::Git)?;
        report.pushed = all;
    }
    Ok(report)
}
