//! The publish JSON, read from the final packaged manifest.
//!
//! crates.io trusts only the manifest inside the tarball, and the index line
//! is built from this JSON; deriving the JSON from that same manifest keeps
//! the two from ever disagreeing.

use std::collections::BTreeMap;

use convoy_protocol::index::DependencyKind;
use convoy_protocol::publish::{NewCrate, NewCrateDependency};
use toml::Value;

use crate::TargetRegistry;

/// The `package.readme` path, when it is a path.
pub(crate) fn readme_of(manifest: &str) -> Option<String> {
    let doc: Value = toml::from_str(manifest).ok()?;
    doc.get("package")?
        .get("readme")?
        .as_str()
        .map(str::to_owned)
}

fn string(table: &Value, key: &str) -> Option<String> {
    table.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn strings(table: &Value, key: &str) -> Vec<String> {
    table
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn new_crate(
    manifest: &str,
    readme: Option<String>,
    target: &TargetRegistry,
) -> Result<NewCrate, String> {
    let doc: Value = toml::from_str(manifest).map_err(|e| e.to_string())?;
    let package = doc.get("package").ok_or("missing `[package]`")?;
    let name = string(package, "name").ok_or("missing `package.name`")?;
    let vers = string(package, "version").unwrap_or_else(|| "0.0.0".into());

    let mut deps = Vec::new();
    let mut collect = |tables: &Value, target_spec: Option<&str>| {
        for (table_name, kind) in [
            ("dependencies", DependencyKind::Normal),
            ("build-dependencies", DependencyKind::Build),
            ("dev-dependencies", DependencyKind::Dev),
        ] {
            let Some(table) = tables.get(table_name).and_then(Value::as_table) else {
                continue;
            };
            for (key, spec) in table {
                deps.push(dependency(key, spec, kind, target_spec, target));
            }
        }
    };
    collect(&doc, None);
    if let Some(targets) = doc.get("target").and_then(Value::as_table) {
        for (spec, tables) in targets {
            collect(tables, Some(spec));
        }
    }

    let features: BTreeMap<String, Vec<String>> = doc
        .get("features")
        .and_then(Value::as_table)
        .map(|t| {
            t.iter()
                .map(|(k, v)| {
                    let values = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    (k.clone(), values)
                })
                .collect()
        })
        .unwrap_or_default();

    Ok(NewCrate {
        name,
        vers,
        deps,
        features,
        authors: strings(package, "authors"),
        description: string(package, "description"),
        documentation: string(package, "documentation"),
        homepage: string(package, "homepage"),
        readme,
        readme_file: string(package, "readme"),
        keywords: strings(package, "keywords"),
        categories: strings(package, "categories"),
        license: string(package, "license"),
        license_file: string(package, "license-file"),
        repository: string(package, "repository"),
        badges: BTreeMap::new(),
        links: string(package, "links"),
        rust_version: string(package, "rust-version"),
    })
}

fn dependency(
    key: &str,
    spec: &Value,
    kind: DependencyKind,
    target_spec: Option<&str>,
    target: &TargetRegistry,
) -> NewCrateDependency {
    let (version_req, table) = match spec {
        Value::String(v) => (v.clone(), None),
        other => (
            string(other, "version").unwrap_or_else(|| "*".into()),
            Some(other),
        ),
    };
    let get_bool = |k: &str, alt: &str, default: bool| {
        table
            .and_then(|t| t.get(k).or_else(|| t.get(alt)))
            .and_then(Value::as_bool)
            .unwrap_or(default)
    };
    let package = table.and_then(|t| string(t, "package"));
    let registry_index = table.and_then(|t| string(t, "registry-index"));
    // The JSON names another registry only when the dependency is not in the
    // one being published to; a manifest without `registry-index` means
    // crates.io.
    let registry = match registry_index {
        Some(index) if index == target.index_url => None,
        Some(index) => Some(index),
        None if target.is_crates_io => None,
        // cargo names crates.io by its git URL in a dependency's `registry`.
        None => Some(convoy_protocol::crates_io::GIT_INDEX.to_owned()),
    };
    NewCrateDependency {
        name: package.clone().unwrap_or_else(|| key.to_owned()),
        version_req,
        features: table.map(|t| strings(t, "features")).unwrap_or_default(),
        optional: get_bool("optional", "optional", false),
        default_features: get_bool("default-features", "default_features", true),
        target: target_spec.map(str::to_owned),
        kind,
        registry,
        explicit_name_in_toml: package.map(|_| key.to_owned()),
    }
}
