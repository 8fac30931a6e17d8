//! The two manifest changes Convoy makes, and the matching lock-file fix.

use std::collections::{BTreeMap, BTreeSet};

use toml_edit::{DocumentMut, Item, Table, Value};

const DEP_TABLES: [&str; 3] = ["dependencies", "build-dependencies", "dev-dependencies"];

pub(crate) struct ManifestRewrite<'a> {
    /// Real names of the path dependencies that are workspace members.
    pub(crate) siblings: &'a BTreeSet<String>,
    /// Sublibraries' workspace names → their companions' names.
    pub(crate) renames: &'a BTreeMap<String, String>,
    /// The target registry's index, or `None` for crates.io.
    pub(crate) target_index: Option<&'a str>,
}

pub(crate) struct Rewritten {
    pub(crate) text: String,
    pub(crate) changes: Vec<String>,
}

/// Applies Convoy's manifest changes to a packaged (normalized) manifest.
pub(crate) fn rewrite_manifest(
    text: &str,
    rw: &ManifestRewrite<'_>,
) -> Result<Rewritten, toml_edit::TomlError> {
    let mut doc: DocumentMut = text.parse()?;
    let mut changes = Vec::new();
    for table_name in DEP_TABLES {
        if let Some(table) = doc.get_mut(table_name).and_then(Item::as_table_mut) {
            rewrite_table(table, table_name, None, rw, &mut changes);
        }
    }
    if let Some(targets) = doc.get_mut("target").and_then(Item::as_table_mut) {
        for (spec, item) in targets.iter_mut() {
            let Some(target) = item.as_table_mut() else {
                continue;
            };
            for table_name in DEP_TABLES {
                if let Some(table) = target.get_mut(table_name).and_then(Item::as_table_mut) {
                    rewrite_table(table, table_name, Some(spec.get()), rw, &mut changes);
                }
            }
        }
    }
    Ok(Rewritten {
        text: doc.to_string(),
        changes,
    })
}

fn real_name(key: &str, item: &Item) -> String {
    item.get("package")
        .and_then(Item::as_str)
        .unwrap_or(key)
        .to_owned()
}

fn rewrite_table(
    table: &mut Table,
    table_name: &str,
    target: Option<&str>,
    rw: &ManifestRewrite<'_>,
    changes: &mut Vec<String>,
) {
    let place = match target {
        Some(spec) => format!("[target.'{spec}'.{table_name}]"),
        None => format!("[{table_name}]"),
    };
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    for key in keys {
        let Some(item) = table.get(&key) else {
            continue;
        };
        let mut real = real_name(&key, item);
        if let Some(companion) = rw.renames.get(&real)
            && let Some(item) = table.get_mut(&key)
        {
            if let Some(version) = item.as_str().map(str::to_owned) {
                let mut inline = toml_edit::InlineTable::new();
                inline.insert("version", Value::from(version));
                *item = Item::Value(Value::InlineTable(inline));
            }
            // The same key keeps `use helper::…` compiling; `package` names
            // the crate it now is, unless that is the key's own name.
            if *companion != real
                && let Some(t) = item.as_table_like_mut()
            {
                t.insert("package", toml_edit::value(companion));
                changes.push(format!(
                    "{place}: `{key}` is the companion `{companion}`, pinned to its version"
                ));
            }
            real = companion.clone();
        }
        if !rw.siblings.contains(&real) {
            continue;
        }
        if table_name == "dev-dependencies" {
            table.remove(&key);
            changes.push(format!(
                "{place}: removed dev-dependency `{real}` on a workspace member, so dev-dependency cycles cannot block publishing"
            ));
            continue;
        }
        let Some(index) = rw.target_index else {
            continue;
        };
        let Some(item) = table.get_mut(&key) else {
            continue;
        };
        if item.get("registry-index").and_then(Item::as_str) == Some(index) {
            continue;
        }
        if let Some(version) = item.as_str().map(str::to_owned) {
            let mut inline = toml_edit::InlineTable::new();
            inline.insert("version", Value::from(version));
            *item = Item::Value(Value::InlineTable(inline));
        }
        if let Some(t) = item.as_table_like_mut() {
            t.insert("registry-index", toml_edit::value(index));
            changes.push(format!(
                "{place}: `{real}` points at the target registry, not crates.io"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[package]
name = "app"
version = "0.1.0"

[dependencies.b]
version = "0.1.0"
package = "base"

[dependencies.serde]
version = "1"

[dev-dependencies.helper]
version = "0.1.0"

[target."cfg(unix)".dependencies.unixy]
version = "0.1.0"
"#;

    fn siblings() -> BTreeSet<String> {
        ["base", "helper", "unixy"].map(String::from).into()
    }

    #[test]
    fn alt_registry_gets_registry_index_and_loses_sibling_dev_deps() {
        let siblings = siblings();
        let out = rewrite_manifest(
            MANIFEST,
            &ManifestRewrite {
                siblings: &siblings,
                renames: &BTreeMap::new(),
                target_index: Some("sparse+http://r/index/"),
            },
        )
        .expect("valid toml");
        let doc: toml::Value = toml::from_str(&out.text).expect("valid toml");
        assert_eq!(
            doc["dependencies"]["b"]["registry-index"].as_str(),
            Some("sparse+http://r/index/")
        );
        assert!(doc["dependencies"]["serde"].get("registry-index").is_none());
        assert!(
            doc.get("dev-dependencies")
                .and_then(|t| t.get("helper"))
                .is_none()
        );
        assert_eq!(
            doc["target"]["cfg(unix)"]["dependencies"]["unixy"]["registry-index"].as_str(),
            Some("sparse+http://r/index/")
        );
        assert_eq!(out.changes.len(), 3, "{:?}", out.changes);
    }

    #[test]
    fn crates_io_only_loses_sibling_dev_deps() {
        let siblings = siblings();
        let out = rewrite_manifest(
            MANIFEST,
            &ManifestRewrite {
                siblings: &siblings,
                renames: &BTreeMap::new(),
                target_index: None,
            },
        )
        .expect("valid toml");
        assert!(!out.text.contains("registry-index"));
        assert!(!out.text.contains("helper"));
        assert_eq!(out.changes.len(), 1);
    }
}
