//! Which libraries can share one cargo invocation without changing how any
//! of them is built.
//!
//! A cargo invocation resolves one dependency graph: versions are unified
//! across everything it builds, and so are the features of each package
//! (separately for host and target builds). Building several libraries
//! together is therefore only the same as building each alone when, for
//! each of them, the units its build compiles (every package of its graph,
//! at its version, with its features) are the same in the joint graph as
//! alone. That is what [`batches`] checks, from cargo's own resolution
//! (`cargo tree` on the consumers that the builds use), never from a model
//! of it. A library whose graph would change is left out of the batch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use convoy_workspace::process::{Cmd, map_parallel, short_run_workers};

use crate::cache::ResultCache;
use crate::consumer::{Planned, batch_consumer, consumer_dir, write_consumer};
use crate::{Overlay, VerifyError, VerifyOptions};

/// The units a library's build compiles: every package of its graph
/// (`name vX.Y.Z`, plus cargo's source and `(proc-macro)` notes) with the
/// features it is built with, as `name v…|features`. A package built for
/// the host with other features than for the target is two entries.
pub(crate) type Resolution = BTreeSet<String>;

/// Groups of `libraries` (each of two or more, in their order) that can
/// each be built in one cargo invocation; libraries in no group are built
/// alone. Each library comes with its graph on its own ([`resolve_alone`]).
///
/// Groups are found greedily, in publish order. A candidate group starts
/// from the first library not yet placed and takes every later one whose
/// graph alone agrees with all members' on the packages they share (same
/// feature sets): only those can be unchanged by building together. That
/// guess is then put to cargo: the candidates are resolved jointly, and
/// those whose graph changed are dropped. The joint graph is resolved
/// again after every drop, because taking a package out can change the
/// versions the resolver picks for the others; a group is done when nobody
/// is dropped. When fewer than two are left, the first library is built
/// alone and the next candidate group starts after it. Every round places
/// at least one library, so this ends.
pub(crate) fn batches<'p, 'a>(
    libraries: &[(&'p Planned<'a>, &Resolution)],
    overlay: &Overlay,
    opts: &VerifyOptions,
) -> Result<Vec<Vec<&'p Planned<'a>>>, VerifyError> {
    let mut pool: Vec<(&'p Planned<'a>, Resolution)> = libraries
        .iter()
        .map(|(p, graph)| (*p, (*graph).clone()))
        .collect();
    let mut groups = Vec::new();
    while pool.len() >= 2 {
        let dir = opts.work_dir.join(batch_consumer(groups.len()));
        let mut set: Vec<usize> = vec![0];
        for i in 1..pool.len() {
            if set.iter().all(|j| agree(&pool[*j].1, &pool[i].1)) {
                set.push(i);
            }
        }
        while set.len() >= 2 {
            let pkgs: Vec<_> = set.iter().map(|i| pool[*i].0.pkg).collect();
            write_consumer(&dir, &pkgs, overlay, pkgs[0])?;
            let Some(joint) = resolve(&dir, overlay, opts) else {
                set.clear();
                break;
            };
            let before = set.len();
            set.retain(|i| {
                let pkg = pool[*i].0.pkg;
                joint
                    .of(&pkg.name, &pkg.version)
                    .is_some_and(|together| together == pool[*i].1)
            });
            if set.len() == before {
                break;
            }
        }
        if set.len() < 2 {
            pool.remove(0);
            continue;
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

/// Whether two graphs give every package they share the same feature
/// sets. Building together unifies features, so a pair that disagrees
/// would change one graph or both; a pair that agrees may still change
/// (the resolver can pick other versions jointly), which only cargo's
/// joint resolution tells.
fn agree(a: &Resolution, b: &Resolution) -> bool {
    fn by_package(r: &Resolution) -> BTreeMap<&str, BTreeSet<&str>> {
        let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for node in r {
            let (id, features) = node.split_once('|').unwrap_or((node, ""));
            out.entry(id).or_default().insert(features);
        }
        out
    }
    let (a, b) = (by_package(a), by_package(b));
    a.iter()
        .all(|(id, features)| b.get(id).is_none_or(|other| other == features))
}

/// What each library's build compiles on its own, from `cargo tree` on its
/// consumer, several at a time; `None` where cargo could not resolve it,
/// which its own build will then report.
pub(crate) fn resolve_alone(
    libraries: &[&Planned<'_>],
    overlay: &Overlay,
    opts: &VerifyOptions,
) -> Vec<Option<Resolution>> {
    let workers = short_run_workers(opts.jobs.map(|j| j as usize));
    map_parallel(libraries, workers, |p| {
        resolve(&consumer_dir(p.pkg, opts), overlay, opts)?.of(&p.pkg.name, &p.pkg.version)
    })
    .into_iter()
    .map(Option::flatten)
    .collect()
}

/// Whether `node` (`name v… …|features`) is package `name` `version`.
fn is_package(node: &str, name: &str, version: &str) -> bool {
    node.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(" v"))
        .and_then(|rest| rest.strip_prefix(version))
        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('|'))
}

/// Whether the build a graph describes compiles package `name` `version`.
pub(crate) fn compiles(graph: &Resolution, name: &str, version: &str) -> bool {
    graph.iter().any(|node| is_package(node, name, version))
}

/// Cargo's resolution of the consumer in `dir`, for the host, as a build
/// sees it (normal and build dependencies, no dev-dependencies). The same
/// consumer against the same overlay reuses the last run's answer
/// ([`crate::cache`]).
fn resolve(dir: &Path, overlay: &Overlay, opts: &VerifyOptions) -> Option<Graph> {
    let manifest_path = dir.join("Cargo.toml");
    let mut cmd = Cmd::cargo()
        .arg("tree")
        .arg("--manifest-path")
        .arg(&manifest_path)
        .args(["-e", "normal,build", "--prefix", "depth"])
        .args(["--format", "{p}|{f}", "--color", "never"])
        .args(overlay.cargo_config_args())
        .cwd(dir);
    for (key, value) in &opts.env {
        cmd = cmd.env(key, value);
    }
    let manifest = std::fs::read_to_string(&manifest_path).ok()?;
    let cache = ResultCache::new(&opts.work_dir, "trees");
    let identity = cmd.identity();
    let inputs = [identity.as_str(), manifest.as_str()];
    if let Some(stdout) = cache.get(&inputs) {
        return Some(Graph::parse(&stdout));
    }
    let stdout = cmd.stdout().ok()?;
    cache.put(&inputs, &stdout);
    Some(Graph::parse(&stdout))
}

/// A consumer's dependency graph as `cargo tree` prints it. A node is a
/// package with its features (`name v…|features`): cargo builds a package
/// once per distinct feature set, and the edges of a node follow from its
/// features, so two equal nodes are the same unit wherever they appear.
#[derive(Debug, Default)]
struct Graph {
    /// The consumer's direct dependencies: the libraries.
    roots: Vec<String>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Parses `cargo tree --prefix depth --format '{p}|{f}'`: each line is
    /// its depth followed by the node; a node seen before is printed with
    /// ` (*)` and without its dependencies.
    fn parse(stdout: &str) -> Self {
        let mut graph = Self::default();
        let mut path: Vec<String> = Vec::new();
        for line in stdout.lines() {
            let line = line.trim_end();
            let digits = line.bytes().take_while(u8::is_ascii_digit).count();
            let Ok(depth) = line[..digits].parse::<usize>() else {
                continue;
            };
            let node = line[digits..]
                .strip_suffix(" (*)")
                .unwrap_or(&line[digits..]);
            if !node.contains('|') {
                continue;
            }
            path.truncate(depth);
            if let Some(parent) = path.last() {
                graph
                    .edges
                    .entry(parent.clone())
                    .or_default()
                    .insert(node.to_owned());
            }
            if depth == 1 {
                graph.roots.push(node.to_owned());
            }
            if path.len() == depth {
                path.push(node.to_owned());
            }
        }
        graph
    }

    /// Every node the build of library `name` `version` compiles, itself
    /// included; `None` if it is not a direct dependency of the consumer.
    fn of(&self, name: &str, version: &str) -> Option<Resolution> {
        let root = self.roots.iter().find(|r| is_package(r, name, version))?;
        let mut seen = Resolution::new();
        let mut stack = vec![root.clone()];
        while let Some(node) = stack.pop() {
            if !seen.insert(node.clone()) {
                continue;
            }
            if let Some(next) = self.edges.get(&node) {
                stack.extend(next.iter().filter(|n| !seen.contains(*n)).cloned());
            }
        }
        Some(seen)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ALONE: &str = "0convoy-verify-consumer v0.0.0 (/w/a.consumer)|\n\
                         1a v0.1.0|\n\
                         2dep v1.0.0|\n";
    const JOINT: &str = "0convoy-verify-consumer v0.0.0 (/w/batch-0.consumer)|\n\
                         1a v0.1.0|\n\
                         2dep v1.0.0|extra\n\
                         1b v0.1.0|\n\
                         2dep v1.0.0|extra (*)\n\
                         1c v0.1.0|\n";

    fn graph(text: &str) -> Graph {
        Graph::parse(text)
    }

    #[test]
    fn graphs_agree_when_shared_packages_have_the_same_features() {
        let a = graph(ALONE).of("a", "0.1.0").unwrap();
        let b = graph("0x|\n1b v0.1.0|\n2dep v1.0.0|extra\n")
            .of("b", "0.1.0")
            .unwrap();
        let c = graph("0x|\n1c v0.1.0|\n2other v1.0.0|\n")
            .of("c", "0.1.0")
            .unwrap();
        assert!(!agree(&a, &b), "`dep` with and without `extra`");
        assert!(agree(&a, &c) && agree(&b, &c), "nothing shared");
        assert!(agree(&a, &a));
    }

    #[test]
    fn a_feature_turned_on_by_a_neighbour_changes_the_graph() {
        let alone = graph(ALONE).of("a", "0.1.0").unwrap();
        assert_eq!(alone.len(), 2, "the consumer is left out: {alone:?}");
        let joint = graph(JOINT);
        assert_ne!(joint.of("a", "0.1.0").unwrap(), alone);
        let b_alone = graph("0x|\n1b v0.1.0|\n2dep v1.0.0|extra\n");
        assert_eq!(joint.of("b", "0.1.0"), b_alone.of("b", "0.1.0"));
        assert_eq!(
            joint
                .of("c", "0.1.0")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["c v0.1.0|"]
        );
        assert!(joint.of("d", "0.1.0").is_none());
    }

    /// A proc-macro's dependencies are built for the host and a library's
    /// for the target, with different features; neither build changes the
    /// other, so they can share a batch.
    #[test]
    fn host_and_target_builds_of_one_package_are_told_apart() {
        let joint = graph(
            "0c|\n\
             1derive v1.0.0 (proc-macro)|\n\
             2syn v2.0.0|default,proc-macro\n\
             3unicode-ident v1.0.0|\n\
             1internals v0.29.1|\n\
             2syn v2.0.0|parsing\n\
             3unicode-ident v1.0.0| (*)\n",
        );
        let derive = graph(
            "0c|\n1derive v1.0.0 (proc-macro)|\n2syn v2.0.0|default,proc-macro\n3unicode-ident v1.0.0|\n",
        );
        let internals =
            graph("0c|\n1internals v0.29.1|\n2syn v2.0.0|parsing\n3unicode-ident v1.0.0|\n");
        assert_eq!(joint.of("derive", "1.0.0"), derive.of("derive", "1.0.0"));
        assert_eq!(
            joint.of("internals", "0.29.1"),
            internals.of("internals", "0.29.1")
        );
        // Another version is another graph.
        let newer =
            graph("0c|\n1internals v0.29.1|\n2syn v2.0.1|parsing\n3unicode-ident v1.0.0|\n");
        assert_ne!(
            joint.of("internals", "0.29.1"),
            newer.of("internals", "0.29.1")
        );
    }
}
