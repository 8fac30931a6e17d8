//! The git CLI, through the subprocess wrapper so that a failure says
//! which command ran and what git printed.

use std::path::{Path, PathBuf};

use convoy_workspace::process::{Cmd, ProcessError};

use crate::conventional::Commit;

/// A git work tree.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
}

const RECORD: char = '\u{1e}';
const FIELD: char = '\u{1f}';

impl Git {
    /// Git run in `dir` (any directory inside the work tree).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn cmd(&self) -> Cmd {
        // A fixed, English-speaking git: its output is parsed.
        Cmd::new("git")
            .arg("-C")
            .arg(&self.dir)
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
    }

    /// Whether `dir` is inside a git work tree at all.
    pub fn is_repository(&self) -> bool {
        self.cmd()
            .args(["rev-parse", "--is-inside-work-tree"])
            .stdout()
            .is_ok_and(|s| s.trim() == "true")
    }

    /// Every tag name.
    pub fn tags(&self) -> Result<Vec<String>, ProcessError> {
        Ok(self
            .cmd()
            .args(["tag", "--list"])
            .stdout()?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// The commit `tag` points at.
    pub fn tag_target(&self, tag: &str) -> Result<String, ProcessError> {
        Ok(self
            .cmd()
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/tags/{tag}^{{commit}}"))
            .stdout()?
            .trim()
            .to_owned())
    }

    /// The commit `HEAD` points at.
    pub fn head(&self) -> Result<String, ProcessError> {
        Ok(self
            .cmd()
            .args(["rev-parse", "--verify", "HEAD"])
            .stdout()?
            .trim()
            .to_owned())
    }

    /// Creates the annotated tag `name` on `HEAD`.
    pub fn create_tag(&self, name: &str, message: &str) -> Result<(), ProcessError> {
        self.cmd()
            .args(["tag", "--annotate", "--message", message, name, "HEAD"])
            .output()
            .map(drop)
    }

    /// Pushes `tags` to `remote`, leaving every other ref alone.
    pub fn push_tags(&self, remote: &str, tags: &[String]) -> Result<(), ProcessError> {
        if tags.is_empty() {
            return Ok(());
        }
        let mut cmd = self.cmd().args(["push", "--quiet", remote]);
        for tag in tags {
            cmd = cmd.arg(format!("refs/tags/{tag}:refs/tags/{tag}"));
        }
        cmd.output().map(drop)
    }

    /// Commits reachable from `HEAD` but not from `since` (all of them
    /// without it) that touched `paths`, newest first. Merge commits are left
    /// out: their changes are in the commits they merge.
    pub fn log(&self, since: Option<&str>, paths: &[&Path]) -> Result<Vec<Commit>, ProcessError> {
        let mut cmd = self.cmd().args([
            "log",
            "--no-merges",
            "--no-color",
            &format!("--format=%H{FIELD}%s{FIELD}%b{RECORD}"),
        ]);
        cmd = match since {
            Some(since) => cmd.arg(format!("{since}..HEAD")),
            None => cmd.arg("HEAD"),
        };
        cmd = cmd.arg("--");
        for p in paths {
            cmd = cmd.arg(p);
        }
        let out = cmd.stdout()?;
        Ok(out
            .split(RECORD)
            .filter_map(|record| {
                let mut fields = record.trim_start_matches('\n').splitn(3, FIELD);
                let id = fields.next()?.trim();
                if id.is_empty() {
                    return None;
                }
                Some(Commit {
                    id: id.to_owned(),
                    subject: fields.next().unwrap_or("").trim().to_owned(),
                    body: fields.next().unwrap_or("").trim().to_owned(),
                })
            })
            .collect())
    }
}
