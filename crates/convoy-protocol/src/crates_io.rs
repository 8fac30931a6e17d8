//! crates.io's identity: the one place that says which URLs and which name
//! mean crates.io, so that the resolver, the packager and the overlay agree.
//!
//! cargo spells crates.io three ways: the sparse index it reads, the git
//! index URL it records in lock files and in the `registry` field of
//! cross-registry dependencies, and the `registry+` source id of the git URL.

/// crates.io's sparse index, the one cargo reads since 1.70.
pub const INDEX: &str = "sparse+https://index.crates.io/";

/// crates.io's git index URL, as cargo writes it in lock files and in the
/// `registry` of a dependency published to another registry.
pub const GIT_INDEX: &str = "https://github.com/rust-lang/crates.io-index";

/// The name cargo gives crates.io in `publish` lists and config.
pub const NAME: &str = "crates-io";

/// Whether `url` names crates.io, however cargo spells it: the sparse index,
/// the git index, or its `registry+` source id, with or without the
/// trailing `/`.
pub fn is_crates_io(url: &str) -> bool {
    let url = url.trim_end_matches('/');
    url == INDEX.trim_end_matches('/')
        || url == GIT_INDEX
        || url.strip_prefix("registry+") == Some(GIT_INDEX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_crates_io() {
        for url in [
            INDEX,
            "sparse+https://index.crates.io",
            GIT_INDEX,
            "https://github.com/rust-lang/crates.io-index/",
            "registry+https://github.com/rust-lang/crates.io-index",
        ] {
            assert!(is_crates_io(url), "{url}");
        }
        for url in [
            "sparse+https://index.crates.io.example/",
            "sparse+http://127.0.0.1:8000/index/",
            "https://github.com/rust-lang/crates.io-index2",
        ] {
            assert!(!is_crates_io(url), "{url}");
        }
    }
}
