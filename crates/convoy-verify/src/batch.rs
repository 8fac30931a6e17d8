//! Which libraries can share one cargo invocation without changing how any
//! of them is resolved.
//!
//! A cargo invocation resolves one dependency graph: versions are unified
//! across everything it builds, and so are the features of each package.
//! Building several libraries together is therefore only the same as
//! building each alone when, for each of them, every package of its graph
//! alone appears in the joint graph at the same version with the same
//! feature sets. That is what [`batches`] checks, from cargo's own
//! resolution (`cargo tree` on the consumers that the build uses), never
//! from a model of it. A package whose graph would change is left out and
//! built on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use convoy_workspace::process::Cmd;

use crate::run::{CONSUMER, Planned, batch_consumer, consumer_dir, write_consumer};
use crate::{Overlay, VerifyError, VerifyOptions};

/// For each package of a resolved graph (`name vX.Y.Z`, plus cargo's
/// source and `(proc-macro)` notes), the feature sets it is built with:
/// one, or two when the host and target builds differ.
pub(crate) type Resolution = BTreeMap<String, BTreeSet<String>>;

/// Groups of `libraries` (each of two or more, in their order) that can
/// each be built in one cargo invocation; libraries in no group are built
/// alone. Each library's consumer alone must already be written
/// ([`write_consumer`]).
///
/// Groups are found greedily: start from every library not yet grouped,
/// resolve them jointly and drop those whose graph changed. The joint graph
/// is resolved again after every drop, because taking a package out can
/// change the versions the resolver picks for the others; a group is done
/// when nobody is dropped. The dropped libraries then try to form the next
/// group among themselves (they often conflict with the first group only,
/// say by asking for fewer features of a shared dependency). Every round
/// drops or groups at least one library, so this ends.
pub(crate) fn batches<'p, 'a>(
    libraries: &[&'p Planned<'a>],
    overlay: &Overlay,
    opts: &VerifyOptions,
) -> Result<Vec<Vec<&'p Planned<'a>>>, VerifyError> {
    let alone = resolve_alone(libraries, overlay, opts);
    let mut pool: Vec<(&'p Planned<'a>, Resolution)> = libraries
        .iter()
        .zip(alone)
        .filter_map(|(p, r)| r.map(|r| (*p, r)))
        .collect();
    let mut groups = Vec::new();
    while pool.len() >= 2 {
        let dir = opts.work_dir.join(batch_consumer(groups.len()));
        let mut set: Vec<usize> = (0..pool.len()).collect();
        while set.len() >= 2 {
            let pkgs: Vec<_> = set.iter().map(|i| pool[*i].0.pkg).collect();
            write_consumer(&dir, &pkgs, overlay, pkgs[0])?;
            let Some(joint) = resolve(&dir, overlay, opts) else {
                set.clear();
                break;
            };
            let before = set.len();
            set.retain(|i| same_graph(&pool[*i].1, &joint));
            if set.len() == before {
                break;
            }
        }
        if set.len() < 2 {
            break;
        }
        let mut group = Vec::with_capacity(set.len());
        let mut rest = Vec::with_capacity(pool.len() - set.len());
        for (i, entry) in pool.into_iter().enumerate() {
            if set.contains(&i) {
                group.push(entry.0);
            } else {
                rest.push(entry);
            }
        }
        groups.push(group);
        pool = rest;
    }
    Ok(groups)
}

/// Whether every package of `alone` is in `joint` with the same feature
/// sets. A package's features in a joint graph are the union of what every
/// dependent asks, so equal sets mean that nothing else in the batch
/// changed this library's graph; a package built for the host as well as
/// the target must match in both.
pub(crate) fn same_graph(alone: &Resolution, joint: &Resolution) -> bool {
    alone.iter().all(|(pkg, sets)| joint.get(pkg) == Some(sets))
}

/// `cargo tree` on the consumer of each library alone, a few at a time
/// (they mostly wait for index reads); `None` where cargo could not
/// resolve it, which its own build will then report.
fn resolve_alone(
    libraries: &[&Planned<'_>],
    overlay: &Overlay,
    opts: &VerifyOptions,
) -> Vec<Option<Resolution>> {
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    let parallel = (cores.max(opts.jobs.unwrap_or(1) as usize) * 2).min(8);
    let mut out = Vec::with_capacity(libraries.len());
    for chunk in libraries.chunks(parallel) {
        let results: Vec<Option<Resolution>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|p| {
                    let dir = consumer_dir(p.pkg, opts);
                    scope.spawn(move || resolve(&dir, overlay, opts))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect()
        });
        out.extend(results);
    }
    out
}

/// Cargo's resolution of the consumer in `dir`, for the host, as a build
/// sees it (normal and build dependencies, no dev-dependencies).
fn resolve(dir: &Path, overlay: &Overlay, opts: &VerifyOptions) -> Option<Resolution> {
    let mut cmd = Cmd::cargo()
        .arg("tree")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .args(["-e", "normal,build", "--prefix", "none"])
        .args(["--format", "{p}|{f}", "--color", "never"])
        .args(overlay.cargo_config_args())
        .cwd(dir);
    for (key, value) in &opts.env {
        cmd = cmd.env(key, value);
    }
    let stdout = cmd.stdout().ok()?;
    Some(parse_tree(&stdout))
}

/// Parses `cargo tree --prefix none --format '{p}|{f}'`, leaving out the
/// consumer itself.
pub(crate) fn parse_tree(stdout: &str) -> Resolution {
    let consumer = format!("{CONSUMER} v");
    let mut out = Resolution::new();
    for line in stdout.lines() {
        let line = line.trim_end();
        let line = line.strip_suffix(" (*)").unwrap_or(line);
        let Some((pkg, features)) = line.rsplit_once('|') else {
            continue;
        };
        if pkg.starts_with(&consumer) {
            continue;
        }
        out.entry(pkg.to_owned())
            .or_default()
            .insert(features.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALONE: &str = "convoy-verify-consumer v0.0.0 (/w/a.consumer)|\n\
                         a v0.1.0|\n\
                         dep v1.0.0|\n";
    const JOINT: &str = "convoy-verify-consumer v0.0.0 (/w/batch.consumer)|\n\
                         a v0.1.0|\n\
                         dep v1.0.0|extra\n\
                         b v0.1.0|\n\
                         dep v1.0.0|extra (*)\n";

    #[test]
    fn a_feature_turned_on_by_a_neighbour_changes_the_graph() {
        let alone = parse_tree(ALONE);
        let joint = parse_tree(JOINT);
        assert_eq!(alone.len(), 2, "the consumer is left out: {alone:?}");
        assert!(!same_graph(&alone, &joint));
        let b_alone = parse_tree("b v0.1.0|\ndep v1.0.0|extra\n");
        assert!(same_graph(&b_alone, &joint));
    }

    #[test]
    fn another_version_or_a_second_feature_set_changes_the_graph() {
        let alone = parse_tree("a v0.1.0|\ndep v1.1.0|\n");
        assert!(!same_graph(&alone, &parse_tree("a v0.1.0|\ndep v1.0.0|\n")));
        // `dep` also built for the host with more features, by a neighbour's
        // build script.
        let joint = parse_tree("a v0.1.0|\ndep v1.1.0|\nc v0.1.0|\ndep v1.1.0|std\n");
        assert!(!same_graph(&alone, &joint));
        assert!(same_graph(
            &alone,
            &parse_tree("a v0.1.0|\ndep v1.1.0| (*)\n")
        ));
    }
}
