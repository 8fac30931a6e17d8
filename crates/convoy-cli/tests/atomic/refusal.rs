//! Registries that do not offer staged releases.

use convoy_index_client::testing::StaticIndex;
use convoy_workspace::testing::WorkspaceBuilder;

use crate::{Fixture, member};

/// Acceptance (client side): `--atomic` against a registry whose
/// `config.json` has no `convoy-staging` is refused with one clear
/// sentence, before anything is packaged.
#[test]
fn registry_without_staging_is_refused_before_packaging() {
    let fx = Fixture::new(&[]);
    let index = StaticIndex::start().unwrap();
    let ws = WorkspaceBuilder::new()
        .package(member("ar-a", &[]))
        .package(member("ar-b", &["ar-a"]));
    let root = fx.workspace("refusal", &ws);
    let url = index.index_url();
    let out = fx.convoy(
        &root,
        &[
            "publish",
            "--atomic",
            "--index",
            &url,
            "--token",
            "cvy_unused_secret",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: registry `{url}` does not offer staged releases (no `convoy-staging` in its config.json); publish without `--atomic`"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("Packaging"), "{stderr}");
    assert!(!stderr.contains("cvy_unused_secret"), "{stderr}");
    // Nothing was packaged: the only thing under target/convoy is the
    // journal.
    let convoy_dir = fx.cargo.target_dir().join("convoy");
    let entries: Vec<String> = std::fs::read_dir(&convoy_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(entries.iter().all(|e| e == "journal.jsonl"), "{entries:?}");
}
