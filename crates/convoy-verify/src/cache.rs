//! Results of cargo's resolutions, kept between runs of the same release.
//!
//! A rerun after a failed upload packages the same bytes again. Locking
//! and resolving them again would cost a cargo run per package (most of a
//! rerun's time once every build is `Fresh`) and, worse for a lock file,
//! could pick a dependency version published in between: the package
//! would no longer be byte-identical to the copy the failed run may have
//! uploaded. So each result is stored under the sha256 of everything that
//! went into it (the exact command, its environment, the overlay's
//! content key and the package's own bytes) and reused only for exactly
//! those inputs. The cost: within one such set of inputs, a newer upstream
//! release is not seen until the inputs change or the target directory is
//! cleaned (`cargo clean`), as with a committed `Cargo.lock`.
//!
//! Each use of a result renews its file's modification time, and results
//! unused for [`KEPT_FOR`] are removed at the end of a verification
//! ([`prune`]): a resume comes within hours, while the results of an
//! older release (other bytes, so other inputs) would only pile up.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// How long a result is kept after its last use.
pub(crate) const KEPT_FOR: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The kinds of result, each a directory under `<work_dir>/cache/`.
const KINDS: [&str; 2] = ["locks", "trees"];

/// Removes the results of every kind under `work_dir` that were last used
/// longer than `unused_for` ago. Best effort, like [`ResultCache::put`]: a
/// file that cannot be removed is tried again next time.
pub(crate) fn prune(work_dir: &Path, unused_for: Duration) {
    let Some(cutoff) = SystemTime::now().checked_sub(unused_for) else {
        return;
    };
    for kind in KINDS {
        let Ok(entries) = std::fs::read_dir(work_dir.join("cache").join(kind)) else {
            continue;
        };
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// One kind of result ([`KINDS`]) under the work directory.
pub(crate) struct ResultCache {
    dir: PathBuf,
}

impl ResultCache {
    pub(crate) fn new(work_dir: &Path, kind: &str) -> Self {
        debug_assert!(KINDS.contains(&kind), "{kind} is pruned with the others");
        Self {
            dir: work_dir.join("cache").join(kind),
        }
    }

    /// The stored result for `inputs`, if any; using it renews it.
    pub(crate) fn get(&self, inputs: &[&str]) -> Option<String> {
        let path = self.path(inputs);
        let result = std::fs::read_to_string(&path).ok()?;
        if let Ok(file) = std::fs::File::options().append(true).open(&path) {
            let _ = file.set_modified(SystemTime::now());
        }
        Some(result)
    }

    /// Stores `result` for `inputs`. Best effort: a cache that cannot be
    /// written only costs the next run its reuse.
    pub(crate) fn put(&self, inputs: &[&str], result: &str) {
        let path = self.path(inputs);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&tmp, result))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn path(&self, inputs: &[&str]) -> PathBuf {
        let mut hasher = Sha256::new();
        for input in inputs {
            hasher.update((input.len() as u64).to_le_bytes());
            hasher.update(input.as_bytes());
        }
        self.dir.join(hex::encode(hasher.finalize()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_found_only_under_its_exact_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::new(dir.path(), "trees");
        assert_eq!(cache.get(&["a", "b"]), None);
        cache.put(&["a", "b"], "graph");
        assert_eq!(cache.get(&["a", "b"]).as_deref(), Some("graph"));
        assert_eq!(cache.get(&["ab", ""]), None, "inputs are length-delimited");
        assert_eq!(cache.get(&["a", "c"]), None);
    }

    #[test]
    fn results_unused_for_a_week_are_removed_and_a_use_renews_one() {
        let dir = tempfile::tempdir().unwrap();
        let (locks, trees) = (
            ResultCache::new(dir.path(), "locks"),
            ResultCache::new(dir.path(), "trees"),
        );
        locks.put(&["old"], "lock");
        trees.put(&["old"], "graph");
        trees.put(&["used"], "graph");
        trees.put(&["new"], "graph");
        let weeks_ago = SystemTime::now() - 2 * KEPT_FOR;
        for path in [
            locks.path(&["old"]),
            trees.path(&["old"]),
            trees.path(&["used"]),
        ] {
            let file = std::fs::File::options().append(true).open(path).unwrap();
            file.set_modified(weeks_ago).unwrap();
        }
        assert!(trees.get(&["used"]).is_some());
        prune(dir.path(), KEPT_FOR);
        assert_eq!(locks.get(&["old"]), None);
        assert_eq!(trees.get(&["old"]), None);
        assert_eq!(trees.get(&["used"]).as_deref(), Some("graph"));
        assert_eq!(trees.get(&["new"]).as_deref(), Some("graph"));
        prune(&dir.path().join("nothing-here"), KEPT_FOR);
    }
}
