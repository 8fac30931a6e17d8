//! The journal: one JSON line per step of a release, appended under
//! `target/convoy/journal.jsonl`.
//!
//! The registry is the source of truth for what is published, so a rerun
//! does not need the journal to resume; it reads it to *explain*: which run
//! stopped where, and why.

use std::io::Write;
use std::path::{Path, PathBuf};

use convoy_upload::UploadEvent;
use serde::{Deserialize, Serialize};

/// What a journal line records. The JSON spelling is the journal's format;
/// lines from a newer Convoy read back as [`JournalEvent::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalEvent {
    /// A run began.
    Started,
    /// A crate was packaged (detail: its cksum).
    Packaged,
    /// A crate is published.
    Published,
    /// A crate was already published with the same checksum.
    Skipped,
    /// A crate, or the run, failed (detail: why).
    Failed,
    /// A crate waits for a failed dependency.
    Blocked,
    /// The run reached its end.
    Finished,
    /// `--atomic`: a stage was opened (detail: its id).
    StageOpened,
    /// `--atomic`: a crate was uploaded into a stage (detail: its id).
    Staged,
    /// `--atomic`: a stage was committed (detail: the release id).
    Committed,
    /// `--atomic`: a stage was discarded (detail: why).
    StageAborted,
    /// An event this Convoy does not know.
    #[serde(other)]
    Other,
}

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
    /// What happened.
    pub event: JournalEvent,
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
            match e.event {
                JournalEvent::Published => prev.published.push(what()),
                JournalEvent::Failed => prev.failures.push(match &e.detail {
                    Some(d) if e.package.is_some() => format!("{}: {d}", what()),
                    Some(d) => d.clone(),
                    None => what(),
                }),
                JournalEvent::Finished => prev.finished = true,
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
        event: JournalEvent,
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
            event,
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

/// The release's writer of the journal. The journal explains; it never
/// decides: a run whose journal cannot be opened or written goes on.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    journal: Option<Journal>,
}

impl Recorder {
    /// Records into `journal`, when there is one.
    pub(crate) fn new(journal: Option<Journal>) -> Self {
        Self { journal }
    }

    /// The journal, for reading the previous run.
    pub(crate) fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Appends one line.
    pub(crate) fn record(
        &self,
        event: JournalEvent,
        registry: Option<&str>,
        package: Option<(&str, &str)>,
        detail: Option<String>,
    ) {
        if let Some(j) = &self.journal {
            let _ = j.record(event, registry, package, detail);
        }
    }

    /// A failure of the run (or of one registry) as a whole.
    pub(crate) fn failed(&self, registry: Option<&str>, error: &(dyn std::error::Error + 'static)) {
        self.record(
            JournalEvent::Failed,
            registry,
            None,
            Some(convoy_index_client::describe(error)),
        );
    }

    /// The journal line of an upload event on `registry`, if it has one.
    /// With `stage`, a published crate is only staged, in that stage.
    pub(crate) fn upload(&self, registry: &str, event: &UploadEvent, stage: Option<&str>) {
        let registry = Some(registry);
        match event {
            UploadEvent::Published { name, version } => match stage {
                Some(id) => self.record(
                    JournalEvent::Staged,
                    registry,
                    Some((name, version)),
                    Some(id.to_owned()),
                ),
                None => self.record(
                    JournalEvent::Published,
                    registry,
                    Some((name, version)),
                    None,
                ),
            },
            UploadEvent::Skipped { name, version } => {
                self.record(JournalEvent::Skipped, registry, Some((name, version)), None)
            }
            UploadEvent::Failed {
                name,
                version,
                reason,
            } => self.record(
                JournalEvent::Failed,
                registry,
                Some((name, version)),
                Some(reason.clone()),
            ),
            UploadEvent::Blocked { name, version, by } => self.record(
                JournalEvent::Blocked,
                registry,
                Some((name, version)),
                Some(format!("waits for {}", by.join(", "))),
            ),
            _ => {}
        }
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
        j.record(
            JournalEvent::Published,
            Some("reg"),
            Some(("a", "1.0.0")),
            None,
        )
        .expect("write");
        let j2 = Journal {
            path: dir.join("journal.jsonl"),
            run: "r2".into(),
        };
        j2.record(
            JournalEvent::Published,
            Some("reg"),
            Some(("b", "1.0.0")),
            None,
        )
        .expect("write");
        j2.record(
            JournalEvent::Failed,
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
        // The line format is unchanged: events are kebab-case strings, and
        // an unknown one still reads.
        let text = std::fs::read_to_string(dir.join("journal.jsonl")).expect("read");
        assert!(text.contains("\"event\":\"published\""), "{text}");
        let odd: JournalEntry =
            serde_json::from_str(r#"{"run":"r","at":"t","event":"from-the-future"}"#)
                .expect("parse");
        assert_eq!(odd.event, JournalEvent::Other);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("convoy-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
