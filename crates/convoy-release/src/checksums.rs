//! The engine's packaging as the plan's content check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use convoy_index_client::{ConfigOptions, RegistryTarget, describe};
use convoy_verify::VerifyMode;
use convoy_workspace::{PublishOrder, Selection};

use crate::options::PublishOptions;
use crate::steps::{cargo_package_once, package_for};

/// The engine's packaging as the plan's content check: packages (with
/// Convoy's manifest changes and lock files) under `target/convoy/plan/` and
/// reports each checksum, so `plan` and `check` compare the bytes a publish
/// would upload.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineChecksums;

impl convoy_plan::ops::PackageChecksums for EngineChecksums {
    fn checksums(
        &self,
        runtime: &tokio::runtime::Handle,
        ws: &convoy_workspace::Workspace,
        members: &[&convoy_workspace::Member],
        target: &RegistryTarget,
    ) -> BTreeMap<String, Result<String, String>> {
        let fail = |reason: String| {
            members
                .iter()
                .map(|m| (m.name.clone(), Err(reason.clone())))
                .collect()
        };
        let ordered: Vec<&convoy_workspace::Member> = match PublishOrder::new(members) {
            Ok(order) => order
                .packages
                .iter()
                .filter_map(|o| members.iter().copied().find(|m| m.name == o.name))
                .collect(),
            Err(e) => return fail(e.to_string()),
        };
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| ws.root.join("target"))
            .join("convoy")
            .join("plan");
        let opts = PublishOptions {
            manifest_path: None,
            selection: Selection::default(),
            registries: Vec::new(),
            verify: VerifyMode::Check,
            verify_tests: false,
            jobs: None,
            dry_run: true,
            allow_dirty: true,
            visibility_timeout: Duration::from_secs(60),
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            target_dir: Some(target_dir.clone()),
            atomic: false,
            locked: false,
            config: ConfigOptions::default(),
            // Packaging for the comparison uploads nothing, but locking
            // serves an overlay and reads the registry.
            runtime: runtime.clone(),
        };
        let label = target.label().to_owned();
        if let Err(e) = cargo_package_once(ws, &ordered, target, &target_dir, &opts) {
            return fail(describe(&e));
        }
        match package_for(
            ws,
            &ordered,
            target,
            &label,
            &target_dir,
            &opts,
            &mut |_| {},
        ) {
            Ok(packaged) => packaged
                .into_iter()
                .map(|p| (p.name, Ok(p.cksum)))
                .collect(),
            Err(e) => fail(describe(&e)),
        }
    }
}
