//! What a token may do: crates.io's endpoint scopes and crate-name globs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An action a token may be allowed to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointScope {
    /// Publish the first version of a crate.
    PublishNew,
    /// Publish a further version of an existing crate.
    PublishUpdate,
    /// Yank or unyank.
    Yank,
    /// Add or remove owners.
    ChangeOwners,
}

impl EndpointScope {
    /// Every scope; a token created without `--scope` has all of them.
    pub const ALL: [EndpointScope; 4] = [
        EndpointScope::PublishNew,
        EndpointScope::PublishUpdate,
        EndpointScope::Yank,
        EndpointScope::ChangeOwners,
    ];

    /// The kebab-case name used on the command line and at rest.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointScope::PublishNew => "publish-new",
            EndpointScope::PublishUpdate => "publish-update",
            EndpointScope::Yank => "yank",
            EndpointScope::ChangeOwners => "change-owners",
        }
    }
}

impl fmt::Display for EndpointScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown scope name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown token scope `{0}`, expected one of `publish-new`, `publish-update`, `yank`, `change-owners`"
)]
pub struct UnknownScope(pub String);

impl FromStr for EndpointScope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// A crate-name pattern: an exact name, or a prefix followed by one trailing
/// `*`, as crates.io's crate scopes allow. Matching uses the canonical form,
/// so `my-crate` and `my_crate` are covered by the same pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CrateGlob(String);

/// A crate glob that is not an exact name or a prefix with one trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid crate pattern `{0}`, use a crate name optionally ending in `*`")]
pub struct InvalidCrateGlob(pub String);

impl CrateGlob {
    /// Validates a pattern.
    pub fn new(pattern: &str) -> Result<Self, InvalidCrateGlob> {
        let stem = pattern.strip_suffix('*').unwrap_or(pattern);
        let valid_stem = stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_stem || (stem.is_empty() && pattern != "*") {
            return Err(InvalidCrateGlob(pattern.to_owned()));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` is covered.
    pub fn matches(&self, name: &str) -> bool {
        let name = crate::name::canonical_name(name);
        match self.0.strip_suffix('*') {
            Some(prefix) => name.starts_with(&crate::name::canonical_name(prefix)),
            None => name == crate::name::canonical_name(&self.0),
        }
    }

    /// Whether every name `other` matches is also matched by `self`, so a
    /// token limited to `self` may hand out a token limited to `other`.
    pub fn covers(&self, other: &CrateGlob) -> bool {
        match other.0.strip_suffix('*') {
            // A prefix is covered only by a prefix at least as wide.
            Some(stem) => self.0.strip_suffix('*').is_some_and(|own| {
                crate::name::canonical_name(stem).starts_with(&crate::name::canonical_name(own))
            }),
            None => self.matches(&other.0),
        }
    }
}

impl FromStr for CrateGlob {
    type Err = InvalidCrateGlob;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_canonically() {
        let glob = CrateGlob::new("tokio-*").expect("valid");
        assert!(glob.matches("tokio_util"));
        assert!(glob.matches("Tokio-Stream"));
        assert!(!glob.matches("tokio"));
        assert!(CrateGlob::new("serde").expect("valid").matches("Serde"));
        assert!(CrateGlob::new("*").expect("valid").matches("anything"));
        assert!(CrateGlob::new("a*b").is_err());
        assert!(CrateGlob::new("").is_err());
    }

    #[test]
    fn globs_cover_narrower_globs() {
        let g = |p: &str| CrateGlob::new(p).expect("valid");
        assert!(g("tokio-*").covers(&g("tokio-util")));
        assert!(g("tokio-*").covers(&g("tokio_util*")));
        assert!(!g("tokio-*").covers(&g("tok*")));
        assert!(!g("serde").covers(&g("serde*")));
        assert!(g("*").covers(&g("anything*")));
    }

    #[test]
    fn scopes_parse() {
        assert_eq!("yank".parse::<EndpointScope>(), Ok(EndpointScope::Yank));
        assert!("read".parse::<EndpointScope>().is_err());
    }
}
