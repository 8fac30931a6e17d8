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

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One kind of result (`locks`, `trees`) under the work directory.
pub(crate) struct ResultCache {
    dir: PathBuf,
}

impl ResultCache {
    pub(crate) fn new(work_dir: &Path, kind: &str) -> Self {
        Self {
            dir: work_dir.join("cache").join(kind),
        }
    }

    /// The stored result for `inputs`, if any.
    pub(crate) fn get(&self, inputs: &[&str]) -> Option<String> {
        std::fs::read_to_string(self.path(inputs)).ok()
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
}
