//! The sparse index: `config.json`, the per-crate files, and their lines.
//!
//! Field names and defaults follow `cargo-util-schemas/src/index.rs` in cargo
//! 1.95, because cargo is the reader that matters: a line it cannot parse
//! makes the version invisible to every user.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `config.json` at the root of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// Download URL template. Without markers cargo appends
    /// `/{crate}/{version}/download`.
    pub dl: String,
    /// Web API root. Without it cargo can only read: no publish, yank, owner,
    /// search or login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Whether every read needs a token. Cargo then sends `Authorization` on
    /// index and download requests too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    /// Convoy's staged-release extension. Cargo ignores keys it does not
    /// know, so advertising it here costs plain cargo nothing.
    #[serde(
        rename = "convoy-staging",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub convoy_staging: Option<StagingAdvert>,
    /// Convoy's companion extension (private sublibraries shipped with a
    /// parent, see `docs/SUBLIBRARIES.md`): the registry hides companions
    /// and keeps them owned with their parent. Without it a companion is an
    /// ordinary crate.
    #[serde(
        rename = "convoy-companions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub convoy_companions: Option<crate::companion::CompanionAdvert>,
}

impl RegistryConfig {
    /// The file's name inside the index.
    pub const NAME: &'static str = "config.json";

    /// Where to download `name` `vers`: cargo's `dl` markers expanded, or,
    /// when the template has none, `/{crate}/{version}/download` appended,
    /// as cargo does.
    pub fn download_url(&self, name: &str, vers: &str, cksum: &str) -> String {
        const MARKERS: [&str; 5] = [
            "{crate}",
            "{version}",
            "{prefix}",
            "{lowerprefix}",
            "{sha256-checksum}",
        ];
        let template = &self.dl;
        if !MARKERS.iter().any(|m| template.contains(m)) {
            return format!("{}/{name}/{vers}/download", template.trim_end_matches('/'));
        }
        // `{prefix}` keeps the name's case, `{lowerprefix}` does not.
        let prefix = prefix_dir(name);
        template
            .replace("{crate}", name)
            .replace("{version}", vers)
            .replace("{lowerprefix}", &prefix.to_ascii_lowercase())
            .replace("{prefix}", &prefix)
            .replace("{sha256-checksum}", cksum)
    }
}

/// `1`, `2`, `3/{c}` or `{ab}/{cd}` for `name`, in the name's own case.
fn prefix_dir(name: &str) -> String {
    match name.len() {
        0 => String::new(),
        1 => "1".to_owned(),
        2 => "2".to_owned(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[0..2], &name[2..4]),
    }
}

/// A Unix time as `YYYY-MM-DDTHH:MM:SSZ`: the exact shape cargo parses in
/// `pubtime`, and the one Convoy uses for every timestamp it shows.
pub fn format_timestamp(unix_secs: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The current time as [`format_timestamp`] writes it.
pub fn now_timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_timestamp(secs)
}

/// How a registry advertises staged releases in `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingAdvert {
    /// Version of the staging extension.
    pub v: u32,
    /// URL of the staging API root (`POST {api}/stages` and so on).
    pub api: String,
}

/// One line of an index file: one published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPackage {
    /// The crate's name, in its original case.
    pub name: String,
    /// The version, as published.
    pub vers: String,
    /// Every dependency, including dev-dependencies. Required by cargo (no
    /// serde default there), so it is always written, even when empty.
    pub deps: Vec<IndexDependency>,
    /// sha256 of the `.crate` file, lower-case hex.
    pub cksum: String,
    /// Features that cargo older than 1.60 can read.
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    /// Features that use `dep:` or `?/` syntax. Kept apart so that older
    /// cargo, which would choke on them, skips only these. Present only with
    /// `v: 2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features2: Option<BTreeMap<String, Vec<String>>>,
    /// Whether the version is yanked: hidden from new resolutions.
    #[serde(default)]
    pub yanked: bool,
    /// The `links` key of the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// Minimum supported Rust version, read by cargo's MSRV-aware resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_version: Option<String>,
    /// Schema version: 2 when `features2` is present. Older lines leave it
    /// out, which means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<u32>,
    /// When the version was published, `YYYY-MM-DDTHH:MM:SSZ` exactly. Added
    /// in cargo 1.94 for `--publish-time`-style resolution; older lines lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubtime: Option<String>,
}

/// A dependency as the index records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IndexDependency {
    /// The name the depending crate uses: the rename when there is one.
    pub name: String,
    /// The version requirement.
    pub req: String,
    /// Features turned on.
    pub features: Vec<String>,
    /// Whether the dependency is optional.
    pub optional: bool,
    /// Whether default features are on.
    pub default_features: bool,
    /// A `cfg(...)` or target triple, or none.
    pub target: Option<String>,
    /// `normal`, `build` or `dev`; cargo reads none as normal.
    pub kind: Option<DependencyKind>,
    /// Index URL of another registry; none means this registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The real package name when `name` is a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// The kind of a dependency edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    /// `[dependencies]`.
    Normal,
    /// `[build-dependencies]`.
    Build,
    /// `[dev-dependencies]`, stripped of `version`-less local paths by cargo.
    Dev,
}

/// The path of a crate's file inside the index, from cargo's layout in
/// `cargo-util/src/registry.rs`: `1/{n}`, `2/{n}`, `3/{c}/{n}` or
/// `{ab}/{cd}/{n}`, all lower case.
pub fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        0 => String::new(),
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[0..2], &name[2..4]),
    }
}

/// The directory part of [`index_path`], which is what cargo substitutes for
/// `{prefix}` in `dl` templates.
pub fn index_prefix(name: &str) -> String {
    let path = index_path(name);
    match path.rsplit_once('/') {
        Some((dir, _)) => dir.to_owned(),
        None => String::new(),
    }
}

/// Renders an index file: one JSON object a line, each ending in `\n`.
pub fn render_index_file<'a>(lines: impl IntoIterator<Item = &'a IndexPackage>) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        // Serializing plain data with string keys cannot fail.
        if serde_json::to_writer(&mut out, line).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_cargo_layout() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("Serde"), "se/rd/serde");
        assert_eq!(index_prefix("abc"), "3/a");
        assert_eq!(index_prefix("aa"), "2");
    }

    #[test]
    fn download_urls_follow_cargo() {
        let cfg = |dl: &str| RegistryConfig {
            dl: dl.into(),
            api: None,
            auth_required: false,
            convoy_staging: None,
            convoy_companions: None,
        };
        assert_eq!(
            cfg("http://h/dl/").download_url("Serde", "1.0.0", "ab"),
            "http://h/dl/Serde/1.0.0/download"
        );
        assert_eq!(
            cfg("http://h/{prefix}/{lowerprefix}/{crate}-{version}-{sha256-checksum}")
                .download_url("Serde", "1.0.0", "ab"),
            "http://h/Se/rd/se/rd/Serde-1.0.0-ab"
        );
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn config_keeps_staging_out_unless_set() {
        let cfg = RegistryConfig {
            dl: "http://h/dl".into(),
            api: Some("http://h".into()),
            auth_required: false,
            convoy_staging: None,
            convoy_companions: None,
        };
        assert_eq!(
            serde_json::to_string(&cfg).expect("serializes"),
            r#"{"dl":"http://h/dl","api":"http://h"}"#
        );
    }
}
