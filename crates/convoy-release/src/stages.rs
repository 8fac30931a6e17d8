//! `target/convoy/stages.json`: the stages a `--atomic` run has opened and
//! not yet committed or aborted.
//!
//! Written before the first upload into a stage, so that a run killed at
//! any point leaves a record; the next `--atomic` run aborts what it finds
//! and starts fresh (`docs/STAGING.md`, "Client"). Only the stage id is
//! kept: the stage token is never written to disk, and the stage's creator
//! may abort it with the ordinary token.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One open stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenStage {
    /// The registry's label, for messages.
    pub registry: String,
    /// The target's index URL: the key a rerun looks stages up by.
    pub index: String,
    /// `stg_…`.
    pub id: String,
    /// When it was opened, RFC 3339.
    pub opened_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerFile {
    stages: Vec<OpenStage>,
}

/// The file, read and rewritten whole on every change (it holds a handful
/// of entries).
#[derive(Debug, Clone)]
pub struct StageLedger {
    path: PathBuf,
}

impl StageLedger {
    /// The ledger in `dir` (`target/convoy`); nothing is read or created yet.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("stages.json"),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every recorded stage. A missing or unreadable file holds none: the
    /// worst a lost entry does is leave a stage to expire on its own.
    pub fn all(&self) -> Vec<OpenStage> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<LedgerFile>(&bytes).ok())
            .map(|f| f.stages)
            .unwrap_or_default()
    }

    /// The recorded stages on the registry with index URL `index`.
    pub fn for_index(&self, index: &str) -> Vec<OpenStage> {
        self.all()
            .into_iter()
            .filter(|s| s.index == index)
            .collect()
    }

    /// Records an open stage, durably, before anything is uploaded into it.
    pub fn add(&self, stage: OpenStage) -> std::io::Result<()> {
        let mut stages = self.all();
        stages.retain(|s| s.id != stage.id);
        stages.push(stage);
        self.write(stages)
    }

    /// Forgets a stage once it is committed, aborted or gone.
    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        let mut stages = self.all();
        let before = stages.len();
        stages.retain(|s| s.id != id);
        if stages.len() == before {
            return Ok(());
        }
        self.write(stages)
    }

    /// Temp file, fsync, rename: a crash leaves the old or the new list.
    fn write(&self, stages: Vec<OpenStage>) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut bytes =
            serde_json::to_vec_pretty(&LedgerFile { stages }).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = std::fs::File::open(dir)
        {
            // Best effort: not every platform can fsync a directory.
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, index: &str) -> OpenStage {
        OpenStage {
            registry: "reg".into(),
            index: index.into(),
            id: id.into(),
            opened_at: "2025-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn entries_are_added_found_by_index_and_removed() {
        let dir = std::env::temp_dir().join(format!("convoy-stages-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ledger = StageLedger::new(&dir);
        assert!(ledger.all().is_empty(), "a missing file holds nothing");
        ledger.add(entry("stg_a", "sparse+http://a/")).expect("add");
        ledger.add(entry("stg_b", "sparse+http://b/")).expect("add");
        ledger
            .add(entry("stg_a", "sparse+http://a/"))
            .expect("re-add");
        assert_eq!(ledger.all().len(), 2);
        assert_eq!(ledger.for_index("sparse+http://a/")[0].id, "stg_a");
        ledger.remove("stg_a").expect("remove");
        ledger.remove("stg_missing").expect("no-op");
        assert!(ledger.for_index("sparse+http://a/").is_empty());
        let text = std::fs::read_to_string(ledger.path()).expect("written");
        assert!(text.contains("stg_b") && !text.contains("token"));
        std::fs::write(ledger.path(), "not json").expect("corrupt");
        assert!(ledger.all().is_empty(), "a corrupt file holds nothing");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
