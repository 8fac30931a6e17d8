//! The journal: one JSON line per step of a release, appended under
//! `target/convoy/journal.jsonl`.
//!
//! The registry is the source of truth for what is published, so a rerun
//! does not need the journal to resume; it reads it to *explain*: which run
//! stopped where, and why.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Which run wrote it (its start time, RFC 3339).
    pub run: String,
    /// When, RFC 3339.
    pub at: String,
    /// The registry, when the step concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The crate, when the step concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `started`, `packaged`, `verified`, `published`, `skipped`, `failed`,
    /// `finished`…
    pub event: String,
    /// A sentence for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    run: String,
}

/// What the previous run left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PreviousRun {
    /// When it started.
    pub run: String,
    /// Whether it reached `finished`.
    pub finished: bool,
    /// Crates it published (`name@version on registry`).
    pub published: Vec<String>,
    /// Its failures, one sentence each.
    pub failures: Vec<String>,
}

pub(crate) fn now() -> String {
    convoy_protocol::index::now_timestamp()
}

impl Journal {
    /// Opens (creating) the journal in `dir` for a new run.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            path: dir.join("journal.jsonl"),
            run: now(),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last run recorded before this one, if any.
    pub fn previous_run(&self) -> Option<PreviousRun> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let entries: Vec<JournalEntry> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let last = entries.last()?.run.clone();
        let mut prev = PreviousRun {
            run: last.clone(),
            ..PreviousRun::default()
        };
        for e in entries.iter().filter(|e| e.run == last) {
            let what = || {
                format!(
                    "{}@{} on {}",
                    e.package.as_deref().unwrap_or("?"),
                    e.version.as_deref().unwrap_or("?"),
                    e.registry.as_deref().unwrap_or("?")
                )
            };
            match e.event.as_str() {
                "published" => prev.published.push(what()),
                "failed" => prev.failures.push(match &e.detail {
                    Some(d) if e.package.is_some() => format!("{}: {d}", what()),
                    Some(d) => d.clone(),
                    None => what(),
                }),
                "finished" => prev.finished = true,
                _ => {}
            }
        }
        Some(prev)
    }

    /// Appends a line. A journal that cannot be written must not stop a
    /// release that is otherwise fine, so errors are returned for the caller
    /// to warn about rather than abort on.
    pub fn record(
        &self,
        event: &str,
        registry: Option<&str>,
        package: Option<(&str, &str)>,
        detail: Option<String>,
    ) -> std::io::Result<()> {
        let entry = JournalEntry {
            run: self.run.clone(),
            at: now(),
            registry: registry.map(str::to_owned),
            package: package.map(|(n, _)| n.to_owned()),
            version: package.map(|(_, v)| v.to_owned()),
            event: event.to_owned(),
            detail,
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_run_summarizes_the_last_run_only() {
        let dir = tempfile_dir();
        let j = Journal {
            path: dir.join("journal.jsonl"),
            run: "r1".into(),
        };
        j.record("published", Some("reg"), Some(("a", "1.0.0")), None)
            .expect("write");
        let j2 = Journal {
            path: dir.join("journal.jsonl"),
            run: "r2".into(),
        };
        j2.record("published", Some("reg"), Some(("b", "1.0.0")), None)
            .expect("write");
        j2.record(
            "failed",
            Some("reg"),
            Some(("c", "1.0.0")),
            Some("boom".into()),
        )
        .expect("write");
        let prev = j2.previous_run().expect("has a run");
        assert_eq!(prev.run, "r2");
        assert_eq!(prev.published, ["b@1.0.0 on reg"]);
        assert_eq!(prev.failures, ["c@1.0.0 on reg: boom"]);
        assert!(!prev.finished);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("convoy-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
