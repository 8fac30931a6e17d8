//! Publish order: waves over normal and build edges between selected members.

use std::collections::HashMap;

use crate::model::{Dependency, Member};

/// Why no order exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// Normal or build dependencies form a cycle. Cargo itself refuses these
    /// when building, but `cargo metadata --no-deps` does not resolve, so it
    /// is caught here.
    #[error("dependency cycle through normal or build dependencies between {}", packages.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "))]
    Cycle {
        /// Members on or behind the cycle, sorted.
        packages: Vec<String>,
    },
}

/// One selected member in publish order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    /// Package name.
    pub name: String,
    /// Wave, counted from 0: a member with no selected local dependency is in
    /// wave 0, any other is one more than its deepest such dependency. All
    /// members of a wave can be uploaded together.
    pub wave: usize,
    /// The selected members it must wait for (its ordering edges), sorted.
    pub depends_on: Vec<String>,
}

/// The selection in publish order: by wave, then by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOrder {
    /// Every selected member, in an order that uploads each dependency
    /// before its dependents.
    pub packages: Vec<Ordered>,
}

/// Whether `dep` of a member forces `target` to be published first.
///
/// Dev-dependencies never do: cargo does not need them to build the
/// published crate, and Convoy strips the ones the registry cannot resolve
/// yet (see `docs/PLANNING.md`). A path dependency always does. A registry
/// dependency on a name that a member also has does when the member's
/// version satisfies it, because then the registry copy the dependent will
/// resolve to is the one this run uploads.
pub fn is_ordering_edge(dep: &Dependency, target: &Member) -> bool {
    dep.kind.orders()
        && dep.name == target.name
        && (dep.path().is_some() || (dep.registry.is_none() && dep.req.matches(&target.version)))
}

impl PublishOrder {
    /// Orders `selected` (members of one workspace). Runs in time linear in
    /// members plus dependency entries.
    pub fn new(selected: &[&Member]) -> Result<Self, OrderError> {
        let index: HashMap<&str, usize> = selected
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_str(), i))
            .collect();
        let n = selected.len();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, m) in selected.iter().enumerate() {
            for d in &m.dependencies {
                let Some(&j) = index.get(d.name.as_str()) else {
                    continue;
                };
                if i != j && is_ordering_edge(d, selected[j]) && !deps[i].contains(&j) {
                    deps[i].push(j);
                    dependents[j].push(i);
                }
            }
        }
        // Kahn's algorithm; a node's wave is fixed once all its dependencies
        // are, as one more than the largest of theirs.
        let mut missing: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut wave = vec![0usize; n];
        let mut ready: Vec<usize> = (0..n).filter(|&i| missing[i] == 0).collect();
        let mut done = 0;
        while let Some(i) = ready.pop() {
            done += 1;
            for &k in &dependents[i] {
                wave[k] = wave[k].max(wave[i] + 1);
                missing[k] -= 1;
                if missing[k] == 0 {
                    ready.push(k);
                }
            }
        }
        if done < n {
            let mut packages: Vec<String> = (0..n)
                .filter(|&i| missing[i] > 0)
                .map(|i| selected[i].name.clone())
                .collect();
            packages.sort();
            return Err(OrderError::Cycle { packages });
        }
        let mut packages: Vec<Ordered> = (0..n)
            .map(|i| {
                let mut depends_on: Vec<String> =
                    deps[i].iter().map(|&j| selected[j].name.clone()).collect();
                depends_on.sort();
                Ordered {
                    name: selected[i].name.clone(),
                    wave: wave[i],
                    depends_on,
                }
            })
            .collect();
        packages.sort_by(|a, b| a.wave.cmp(&b.wave).then_with(|| a.name.cmp(&b.name)));
        Ok(Self { packages })
    }

    /// How many waves there are (0 for an empty selection).
    pub fn wave_count(&self) -> usize {
        self.packages.last().map_or(0, |p| p.wave + 1)
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&Ordered> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// The longest chain of ordering edges, from the first crate to upload to
    /// the last: the part of the release that cannot go faster by uploading
    /// in parallel. Ties go to the alphabetically first crate.
    pub fn critical_path(&self) -> Vec<String> {
        let by_name: HashMap<&str, &Ordered> =
            self.packages.iter().map(|p| (p.name.as_str(), p)).collect();
        let Some(last_wave) = self.packages.last().map(|p| p.wave) else {
            return Vec::new();
        };
        let mut current = self.packages.iter().find(|p| p.wave == last_wave);
        let mut path = Vec::new();
        while let Some(p) = current {
            path.push(p.name.clone());
            current = p
                .depends_on
                .iter()
                .filter_map(|d| by_name.get(d.as_str()).copied())
                .find(|d| d.wave + 1 == p.wave);
        }
        path.reverse();
        path
    }
}
