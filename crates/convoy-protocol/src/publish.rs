//! The body of `PUT /api/v1/crates/new`.
//!
//! Cargo frames it as: a little-endian `u32` with the JSON length, the JSON
//! metadata, a little-endian `u32` with the `.crate` length, then the
//! `.crate` bytes (`crates/crates-io/lib.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::index::{DependencyKind, IndexDependency, IndexPackage};

/// The JSON metadata cargo sends with a publish (`NewCrate` in cargo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCrate {
    /// Package name.
    pub name: String,
    /// Version.
    pub vers: String,
    /// Every dependency, dev-dependencies included.
    #[serde(default)]
    pub deps: Vec<NewCrateDependency>,
    /// Normalized features, including `dep:` and `?/` syntax.
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    /// Authors, informational.
    #[serde(default)]
    pub authors: Vec<String>,
    /// One-paragraph description.
    #[serde(default)]
    pub description: Option<String>,
    /// Documentation URL.
    #[serde(default)]
    pub documentation: Option<String>,
    /// Homepage URL.
    #[serde(default)]
    pub homepage: Option<String>,
    /// README content, not its path.
    #[serde(default)]
    pub readme: Option<String>,
    /// README path within the package.
    #[serde(default)]
    pub readme_file: Option<String>,
    /// Search keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Category slugs.
    #[serde(default)]
    pub categories: Vec<String>,
    /// SPDX license expression.
    #[serde(default)]
    pub license: Option<String>,
    /// Path of a license file within the package.
    #[serde(default)]
    pub license_file: Option<String>,
    /// Source repository URL.
    #[serde(default)]
    pub repository: Option<String>,
    /// Badges; crates.io ignores them today.
    #[serde(default)]
    pub badges: BTreeMap<String, BTreeMap<String, String>>,
    /// The `links` key.
    #[serde(default)]
    pub links: Option<String>,
    /// Minimum supported Rust version.
    #[serde(default)]
    pub rust_version: Option<String>,
}

/// A dependency in the publish metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCrateDependency {
    /// The real package name, even when renamed.
    pub name: String,
    /// The version requirement.
    pub version_req: String,
    /// Features turned on.
    #[serde(default)]
    pub features: Vec<String>,
    /// Whether optional.
    #[serde(default)]
    pub optional: bool,
    /// Whether default features are on.
    #[serde(default = "default_true")]
    pub default_features: bool,
    /// `cfg(...)` or triple.
    #[serde(default)]
    pub target: Option<String>,
    /// Edge kind.
    #[serde(default = "default_kind")]
    pub kind: DependencyKind,
    /// Index URL of another registry; absent when it is the same registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The name used in the depending manifest, when renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_name_in_toml: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_kind() -> DependencyKind {
    DependencyKind::Normal
}

/// The publish body split into its two parts.
#[derive(Debug)]
pub struct PublishBody<'a> {
    /// The raw JSON metadata.
    pub metadata: &'a [u8],
    /// The `.crate` bytes.
    pub tarball: &'a [u8],
}

/// Why a publish body could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishBodyError {
    /// The body ended before a length prefix or before the bytes it announced.
    #[error(
        "publish body is truncated: expected {expected} more bytes for the {part}, found {found}"
    )]
    Truncated {
        /// Which part was cut off.
        part: &'static str,
        /// Bytes announced.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Bytes follow the `.crate`.
    #[error("publish body has {extra} unexpected bytes after the crate file")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// Splits a publish body. It only checks framing; the parts are validated by
/// their own parsers.
pub fn split_publish_body(body: &[u8]) -> Result<PublishBody<'_>, PublishBodyError> {
    let (metadata, rest) = take_framed(body, "metadata")?;
    let (tarball, rest) = take_framed(rest, "crate file")?;
    if !rest.is_empty() {
        return Err(PublishBodyError::TrailingBytes { extra: rest.len() });
    }
    Ok(PublishBody { metadata, tarball })
}

fn take_framed<'a>(
    input: &'a [u8],
    part: &'static str,
) -> Result<(&'a [u8], &'a [u8]), PublishBodyError> {
    let Some((len, rest)) = input.split_first_chunk::<4>() else {
        return Err(PublishBodyError::Truncated {
            part,
            expected: 4,
            found: input.len() as u64,
        });
    };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(PublishBodyError::Truncated {
            part,
            expected: len as u64,
            found: rest.len() as u64,
        });
    }
    Ok(rest.split_at(len))
}

/// Builds a publish body, as cargo does. Used by Convoy's own client and by
/// tests that need to send hand-made bodies.
pub fn encode_publish_body(metadata: &[u8], tarball: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + metadata.len() + tarball.len());
    body.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    body.extend_from_slice(metadata);
    body.extend_from_slice(&(tarball.len() as u32).to_le_bytes());
    body.extend_from_slice(tarball);
    body
}

/// Whether a feature value needs index schema v2 (`dep:` or weak `?/`).
fn needs_features2(values: &[String]) -> bool {
    values
        .iter()
        .any(|v| v.starts_with("dep:") || v.contains("?/"))
}

impl NewCrate {
    /// The index line for this publish, written the way crates.io writes it:
    /// renames become `name` + `package`, features using `dep:`/`?/` move to
    /// `features2` with `v: 2`, and dependencies are sorted so that the line
    /// does not depend on the order cargo happened to send them in.
    pub fn to_index_package(&self, cksum: String, pubtime: Option<String>) -> IndexPackage {
        let mut deps: Vec<IndexDependency> = self
            .deps
            .iter()
            .map(|d| {
                let (name, package) = match &d.explicit_name_in_toml {
                    Some(rename) => (rename.clone(), Some(d.name.clone())),
                    None => (d.name.clone(), None),
                };
                IndexDependency {
                    name,
                    req: d.version_req.clone(),
                    features: d.features.clone(),
                    optional: d.optional,
                    default_features: d.default_features,
                    target: d.target.clone(),
                    kind: Some(d.kind),
                    registry: d.registry.clone(),
                    package,
                }
            })
            .collect();
        deps.sort();
        let (features, features2): (BTreeMap<_, _>, BTreeMap<_, _>) = self
            .features
            .clone()
            .into_iter()
            .partition(|(_, values)| !needs_features2(values));
        let has_v2 = !features2.is_empty();
        IndexPackage {
            name: self.name.clone(),
            vers: self.vers.clone(),
            deps,
            cksum,
            features,
            features2: has_v2.then_some(features2),
            yanked: false,
            links: self.links.clone(),
            rust_version: self.rust_version.clone(),
            v: has_v2.then_some(2),
            pubtime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use insta::assert_snapshot;

    #[test]
    fn body_round_trips() {
        let body = encode_publish_body(b"{}", b"tarball");
        let parts = split_publish_body(&body).expect("valid body");
        assert_eq!(parts.metadata, b"{}");
        assert_eq!(parts.tarball, b"tarball");
    }

    #[test]
    fn truncated_bodies_are_refused() {
        let body = encode_publish_body(b"{}", b"tarball");
        let err = split_publish_body(&body[..body.len() - 2]).expect_err("truncated");
        assert_snapshot!(err, @"publish body is truncated: expected 7 more bytes for the crate file, found 5");
        let err = split_publish_body(&body[..3]).expect_err("truncated");
        assert_snapshot!(err, @"publish body is truncated: expected 4 more bytes for the metadata, found 3");
        let mut long = body.clone();
        long.push(0);
        assert_snapshot!(split_publish_body(&long).expect_err("trailing"), @"publish body has 1 unexpected bytes after the crate file");
    }

    #[test]
    fn index_line_splits_features_and_renames() {
        let meta: NewCrate = serde_json::from_str(
            r#"{"name":"a","vers":"1.0.0","deps":[
                {"name":"b","version_req":"^1","features":[],"optional":true,"default_features":true,"target":null,"kind":"normal","explicit_name_in_toml":"bee"}
            ],"features":{"x":["dep:bee"],"y":[]}}"#,
        )
        .expect("valid metadata");
        let line = meta.to_index_package("00".into(), Some("2026-01-01T00:00:00Z".into()));
        assert_snapshot!(serde_json::to_string(&line).expect("serializes"), @r#"{"name":"a","vers":"1.0.0","deps":[{"name":"bee","req":"^1","features":[],"optional":true,"default_features":true,"target":null,"kind":"normal","package":"b"}],"cksum":"00","features":{"y":[]},"features2":{"x":["dep:bee"]},"yanked":false,"v":2,"pubtime":"2026-01-01T00:00:00Z"}"#);
    }
}
