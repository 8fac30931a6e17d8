//! Rendered crate pages, kept per crate version.
//!
//! An entry is valid only while the crate's index file still has the etag it
//! was rendered under. The store changes that etag on every publish and yank
//! of the crate, and every node reads it from the store, so a publish on one
//! node invalidates the pages of all nodes, by the same mechanism that
//! validates cargo's index cache. What the etag does not cover (download
//! counts, dependents, owners) is refreshed by [`MAX_AGE`].

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How long an entry may serve figures that do not change the etag.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(30);
/// Entries kept at most; past it the cache starts over.
pub(crate) const MAX_ENTRIES: usize = 4096;

/// A rendered page body and its title.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) title: String,
    pub(crate) body: String,
}

struct Entry {
    etag: String,
    rendered: Instant,
    page: Arc<Page>,
}

/// Keyed by `(kind, canonical crate name, version)`.
#[derive(Default)]
pub(crate) struct PageCache {
    entries: RwLock<HashMap<(&'static str, String, String), Entry>>,
}

impl PageCache {
    /// The page under `key`, if it was rendered under `etag` recently.
    pub(crate) fn get(
        &self,
        key: &(&'static str, String, String),
        etag: &str,
    ) -> Option<Arc<Page>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(key)?;
        (entry.etag == etag && entry.rendered.elapsed() < MAX_AGE).then(|| Arc::clone(&entry.page))
    }

    pub(crate) fn put(&self, key: (&'static str, String, String), etag: String, page: Arc<Page>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                etag,
                rendered: Instant::now(),
                page,
            },
        );
    }
}
