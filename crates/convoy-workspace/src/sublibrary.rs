//! Sublibraries: private helper members that ship as **companions** of a
//! published member (see `docs/SUBLIBRARIES.md`).
//!
//! Cargo cannot publish a helper that has no `version`, nor a parent that
//! depends on it by path without one. Convoy resolves each such helper to
//! one parent here, once, and rewrites the model so that everything after
//! loading (selection, order, checks, packaging, verification, upload) sees
//! an ordinary publishable member under the companion's name and the
//! parent's version. Only packaging needs to know the member's name in the
//! workspace, which [`Companion::workspace_name`] keeps.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use semver::{Version, VersionReq};

use crate::model::{DepKind, Member, Publish};

/// The description every companion gets, so a reader of the registry knows
/// not to depend on it.
pub fn companion_description(parent: &str) -> String {
    format!("Part of `{parent}`; not a public API")
}

/// Why a member is shipped as a companion, and as what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Companion {
    /// The package name in the workspace (what `cargo -p` knows).
    pub workspace_name: String,
    /// The published member it ships with.
    pub parent: String,
    /// The parent's `[package.metadata.convoy]` said nothing and the parent
    /// was derived from the dependency graph.
    pub derived: bool,
}

/// A sublibrary that could not be given a parent; `check` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SublibraryProblem {
    /// Several published members use it and none of them is the one the
    /// others all depend on.
    Ambiguous {
        /// The member.
        name: String,
        /// The published members that use it, sorted.
        users: Vec<String>,
    },
    /// `sublibrary-of` names something that is not a published member.
    UnknownParent {
        /// The member.
        name: String,
        /// The name given.
        parent: String,
    },
}

/// `[package.metadata.convoy]` keys of one member.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConvoyKeys {
    pub(crate) sublibrary_of: Option<String>,
    pub(crate) publish_as: Option<String>,
}

impl ConvoyKeys {
    pub(crate) fn from_metadata(metadata: &serde_json::Value) -> Self {
        let convoy = metadata.get("convoy");
        let get = |key: &str| {
            convoy
                .and_then(|c| c.get(key))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Self {
            sublibrary_of: get("sublibrary-of"),
            publish_as: get("publish-as"),
        }
    }
}

/// The companion name of `member` shipped with `parent`: `publish-as` when
/// given, the member's own name when it already starts with `<parent>-` or
/// `<parent>_` (`foo-macros` of `foo`), else `<parent>-<member>`.
pub fn companion_name(parent: &str, member: &str, publish_as: Option<&str>) -> String {
    if let Some(name) = publish_as {
        return name.to_owned();
    }
    let family = |sep: char| member.starts_with(&format!("{parent}{sep}"));
    if family('-') || family('_') {
        member.to_owned()
    } else {
        format!("{parent}-{member}")
    }
}

fn is_implicit_candidate(m: &Member) -> bool {
    m.publish == Publish::Never && m.version == Version::new(0, 0, 0)
}

/// Resolves sublibraries and rewrites `members` in place (renamed, versioned
/// as their parent, dependencies on them pinned with `=`). `keys` is indexed
/// like `members`. Returns the problems found; members with a problem stay
/// as they were.
pub(crate) fn resolve(members: &mut [Member], keys: &[ConvoyKeys]) -> Vec<SublibraryProblem> {
    let index: BTreeMap<String, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.clone(), i))
        .collect();
    let candidate: Vec<bool> = members
        .iter()
        .zip(keys)
        .map(|(m, k)| k.sublibrary_of.is_some() || is_implicit_candidate(m))
        .collect();
    let published = |i: usize| !candidate[i] && members[i].publish != Publish::Never;
    // Who depends on whom by path, through normal and build edges: the
    // edges that ship a helper's code inside the parent's build.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
    for (i, m) in members.iter().enumerate() {
        for d in &m.dependencies {
            if d.kind == DepKind::Dev || d.path().is_none() {
                continue;
            }
            if let Some(&j) = index.get(&d.name)
                && i != j
                && !dependents[j].contains(&i)
            {
                dependents[j].push(i);
            }
        }
    }
    let mut problems = Vec::new();
    let mut resolved: Vec<(usize, usize, bool)> = Vec::new();
    for s in (0..members.len()).filter(|&s| candidate[s]) {
        if let Some(parent) = &keys[s].sublibrary_of {
            match index.get(parent) {
                Some(&p) if published(p) => resolved.push((s, p, false)),
                _ => problems.push(SublibraryProblem::UnknownParent {
                    name: members[s].name.clone(),
                    parent: parent.clone(),
                }),
            }
            continue;
        }
        let users = users_of(s, &dependents, &candidate, &published);
        match owner(&users, members, &index) {
            Some(p) => resolved.push((s, p, true)),
            None if users.is_empty() => {}
            None => problems.push(SublibraryProblem::Ambiguous {
                name: members[s].name.clone(),
                users: users.iter().map(|&u| members[u].name.clone()).collect(),
            }),
        }
    }

    let renames: BTreeMap<String, (String, Version)> = resolved
        .iter()
        .map(|&(s, p, _)| {
            let name = companion_name(
                &members[p].name,
                &members[s].name,
                keys[s].publish_as.as_deref(),
            );
            (members[s].name.clone(), (name, members[p].version.clone()))
        })
        .collect();
    for &(s, p, derived) in &resolved {
        let parent = members[p].clone();
        let m = &mut members[s];
        let (name, version) = renames[&m.name].clone();
        m.companion = Some(Companion {
            workspace_name: m.name.clone(),
            parent: parent.name.clone(),
            derived,
        });
        m.name = name;
        m.version = version;
        m.publish = parent.publish.clone();
        m.description = Some(companion_description(&parent.name));
        if parent.license.is_some() {
            m.license = parent.license.clone();
            m.license_file = None;
        }
        m.repository = parent.repository.clone();
    }
    for m in members.iter_mut() {
        for d in &mut m.dependencies {
            let Some((name, version)) = renames.get(&d.name) else {
                continue;
            };
            if d.path().is_none() {
                continue;
            }
            if d.rename.is_none() && *name != d.name {
                d.rename = Some(d.name.clone());
            }
            d.name = name.clone();
            d.req = exact(version);
            d.has_version = true;
        }
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    problems
}

/// `=X.Y.Z`: the pin every dependent of a companion gets.
pub fn exact(version: &Version) -> VersionReq {
    VersionReq {
        comparators: vec![semver::Comparator {
            op: semver::Op::Exact,
            major: version.major,
            minor: Some(version.minor),
            patch: Some(version.patch),
            pre: version.pre.clone(),
        }],
    }
}

/// The published members that reach `s` through path edges, directly or
/// through other sublibrary candidates, sorted by index (= by name).
fn users_of(
    s: usize,
    dependents: &[Vec<usize>],
    candidate: &[bool],
    published: &dyn Fn(usize) -> bool,
) -> Vec<usize> {
    let mut seen = BTreeSet::from([s]);
    let mut users = BTreeSet::new();
    let mut queue = VecDeque::from([s]);
    while let Some(n) = queue.pop_front() {
        for &d in &dependents[n] {
            if !seen.insert(d) {
                continue;
            }
            if published(d) {
                users.insert(d);
            } else if candidate[d] {
                queue.push_back(d);
            }
        }
    }
    users.into_iter().collect()
}

/// The ownership rule: a single user owns it; among several, the one every
/// other user depends on (through published path edges), because it ships
/// first and the others reach the helper through it anyway; otherwise none.
fn owner(users: &[usize], members: &[Member], index: &BTreeMap<String, usize>) -> Option<usize> {
    match users {
        [] => None,
        [one] => Some(*one),
        _ => {
            let owners: Vec<usize> = users
                .iter()
                .copied()
                .filter(|&u| {
                    users
                        .iter()
                        .all(|&o| o == u || depends_on(o, u, members, index))
                })
                .collect();
            match owners.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        }
    }
}

fn depends_on(from: usize, to: usize, members: &[Member], index: &BTreeMap<String, usize>) -> bool {
    let mut seen = BTreeSet::from([from]);
    let mut queue = VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        for d in &members[n].dependencies {
            if d.kind == DepKind::Dev || d.path().is_none() {
                continue;
            }
            if let Some(&j) = index.get(&d.name) {
                if j == to {
                    return true;
                }
                if seen.insert(j) {
                    queue.push_back(j);
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_family_recognizable() {
        assert_eq!(companion_name("foo", "macros", None), "foo-macros");
        assert_eq!(companion_name("foo", "foo-macros", None), "foo-macros");
        assert_eq!(companion_name("foo", "foo_core", None), "foo_core");
        assert_eq!(companion_name("foo", "foobar", None), "foo-foobar");
        assert_eq!(companion_name("foo", "x", Some("foo-x-impl")), "foo-x-impl");
    }

    #[test]
    fn exact_pins_the_whole_version() {
        assert_eq!(exact(&Version::new(1, 2, 3)).to_string(), "=1.2.3");
        let pre = Version::parse("1.0.0-rc.1").unwrap_or_else(|_| Version::new(0, 0, 0));
        assert_eq!(exact(&pre).to_string(), "=1.0.0-rc.1");
    }
}
