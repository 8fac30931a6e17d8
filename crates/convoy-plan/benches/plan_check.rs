//! `plan` + `check` on generated workspaces of growing size, without
//! `cargo metadata`, `cargo package` or the network: the model is built in
//! memory and the registry state is given, so what is timed is Convoy's own
//! work. Run with `cargo bench -p convoy-plan`; figures go in
//! `docs/BENCHMARKS.md`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use convoy_index_client::RegistryTarget;
use convoy_plan::{
    CheckContext, CheckReport, FileEntry, FileList, RegistryInfo, RegistryState, RegistryView,
    build_plan, run_checks,
};
use convoy_protocol::crates_io::INDEX as CRATES_IO_INDEX;
use convoy_protocol::index::IndexPackage;
use convoy_workspace::{
    DepKind, DepSource, Dependency, Member, Publish, Selection, Workspace, select,
};

/// `n` crates; crate `i` depends on up to three earlier crates (a deep,
/// branching graph), dev-depends on a later one (dev cycles), and has one
/// registry dependency, ten features, three keywords and twenty files.
fn workspace(n: usize) -> Workspace {
    let members = (0..n)
        .map(|i| {
            let mut deps = Vec::new();
            for k in [1usize, 7, 31] {
                if i >= k {
                    deps.push(local(&format!("c{:05}", i - k), DepKind::Normal));
                }
            }
            if i + 1 < n {
                deps.push(local(&format!("c{:05}", i + 1), DepKind::Dev));
            }
            deps.push(Dependency {
                name: "serde".into(),
                rename: None,
                kind: DepKind::Normal,
                req: "1".parse().unwrap(),
                has_version: true,
                source: DepSource::Registry(None),
                registry: None,
                target: None,
                optional: false,
            });
            Member {
                name: format!("c{i:05}"),
                version: "1.0.0".parse().unwrap(),
                manifest_path: PathBuf::from(format!("/ws/c{i:05}/Cargo.toml")),
                publish: Publish::Anywhere,
                description: Some("d".into()),
                license: Some("MIT OR Apache-2.0".into()),
                license_file: None,
                repository: Some("https://example.invalid".into()),
                readme: None,
                keywords: vec!["a".into(), "b".into(), "c".into()],
                categories: vec!["development-tools".into()],
                features: (0..10).map(|f| (format!("f{f}"), Vec::new())).collect(),
                dependencies: deps,
                companion: None,
            }
        })
        .collect();
    Workspace {
        root: "/ws".into(),
        members,
        convoy_metadata: serde_json::Value::Null,
        sublibrary_problems: Vec::new(),
    }
}

fn local(name: &str, kind: DepKind) -> Dependency {
    Dependency {
        name: name.into(),
        rename: None,
        kind,
        req: "1.0.0".parse().unwrap(),
        has_version: true,
        source: DepSource::Path(format!("/ws/{name}").into()),
        registry: None,
        target: None,
        optional: false,
    }
}

fn run(n: usize) -> f64 {
    let ws = workspace(n);
    let files: BTreeMap<String, FileList> = ws
        .members
        .iter()
        .map(|m| {
            let list = (0..20)
                .map(|f| FileEntry {
                    path: format!("src/m{f}.rs"),
                    size: 1000,
                    binary: false,
                })
                .collect();
            (m.name.clone(), Ok(list))
        })
        .collect();
    // Half the crates are already published.
    let registry: BTreeMap<String, Vec<IndexPackage>> = ws
        .members
        .iter()
        .step_by(2)
        .map(|m| {
            let line = serde_json::from_str(&format!(
                r#"{{"name":"{}","vers":"1.0.0","deps":[],"cksum":"00"}}"#,
                m.name
            ))
            .unwrap();
            (m.name.clone(), vec![line])
        })
        .collect();
    let view = RegistryView {
        info: RegistryInfo {
            name: None,
            index: CRATES_IO_INDEX.into(),
            checked: true,
            error: None,
        },
        state: RegistryState::Known(registry),
    };
    let target = RegistryTarget {
        name: Some("crates-io".into()),
        index: CRATES_IO_INDEX.into(),
        token: None,
        http: Default::default(),
    };
    let start = Instant::now();
    let selected = select(&ws, &Selection::default()).unwrap();
    let plan = build_plan(&ws, &selected, &view, &BTreeMap::new()).unwrap();
    let raw = run_checks(&CheckContext {
        workspace: &ws,
        selected: &selected,
        target: &target,
        files: &files,
    });
    let report = CheckReport::new(&ws.convoy_metadata, selected.len(), raw);
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(plan.packages.len(), n);
    assert!(report.passed());
    elapsed
}

fn main() {
    println!("| crates | plan + check (ms, best of 5) | per crate (µs) |");
    println!("|---:|---:|---:|");
    for n in [125, 250, 500, 1000, 2000] {
        let best = (0..5).map(|_| run(n)).fold(f64::INFINITY, f64::min);
        println!("| {n} | {:.2} | {:.1} |", best * 1e3, best * 1e6 / n as f64);
    }
}
