//! Version arithmetic: levels, Cargo's 0.x compatibility rules,
//! pre-releases, and rewriting a requirement so it admits a new version.

use std::fmt;

use semver::{Op, Prerelease, Version, VersionReq};
use serde::Serialize;

/// How far a version moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// A fix: `x.y.(z+1)`.
    Patch,
    /// A compatible feature: `x.(y+1).0`.
    Minor,
    /// A breaking change: `(x+1).0.0`, or `0.(y+1).0` on 0.x.
    Major,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Patch => "patch",
            Level::Minor => "minor",
            Level::Major => "major",
        })
    }
}

/// What `cargo convoy version` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BumpSpec {
    /// `patch`, `minor` or `major`.
    Level(Level),
    /// `X.Y.Z`: this exact version.
    Exact(Version),
    /// `auto`: the level from conventional commits (and cargo-semver-checks).
    Auto,
}

impl std::str::FromStr for BumpSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "patch" => BumpSpec::Level(Level::Patch),
            "minor" => BumpSpec::Level(Level::Minor),
            "major" => BumpSpec::Level(Level::Major),
            "auto" => BumpSpec::Auto,
            other => BumpSpec::Exact(Version::parse(other).map_err(|e| {
                format!("expected patch, minor, major, auto or a version such as 1.2.3 ({e})")
            })?),
        })
    }
}

/// `v` moved by `level`, as a release or, with `pre`, as the first
/// pre-release `-<pre>.1` of that version.
///
/// - Cargo treats `0.y` as the compatibility boundary on 0.x, so a breaking
///   bump there is a minor bump (`0.3.2` → `0.4.0`); 1.0.0 is reached by
///   asking for it exactly.
/// - A pre-release keeps its base version: without `pre` it becomes that
///   release (`1.2.0-rc.2` → `1.2.0`); with the same `pre` its counter goes
///   up (`-rc.2` → `-rc.3`); with another `pre` that series starts at 1.
pub fn bump(v: &Version, level: Level, pre: Option<&str>) -> Version {
    if !v.pre.is_empty() {
        let base = Version::new(v.major, v.minor, v.patch);
        return match pre {
            None => base,
            Some(id) => with_pre(base, id, next_pre_number(&v.pre, id)),
        };
    }
    let level = if v.major == 0 && level == Level::Major {
        Level::Minor
    } else {
        level
    };
    let next = match level {
        Level::Patch => Version::new(v.major, v.minor, v.patch + 1),
        Level::Minor => Version::new(v.major, v.minor + 1, 0),
        Level::Major => Version::new(v.major + 1, 0, 0),
    };
    match pre {
        None => next,
        Some(id) => with_pre(next, id, 1),
    }
}

/// The smallest new version for a crate bumped only because a dependency
/// moved: a patch release, or the next pre-release of a pre-release series
/// (a dependent of a release candidate stays a candidate).
pub fn dependent_bump(v: &Version, pre: Option<&str>) -> Version {
    match (pre, v.pre.is_empty()) {
        (None, false) => {
            let id = v.pre.as_str().split('.').next().unwrap_or("pre").to_owned();
            let base = Version::new(v.major, v.minor, v.patch);
            with_pre(base, &id, next_pre_number(&v.pre, &id))
        }
        _ => bump(v, Level::Patch, pre),
    }
}

fn with_pre(mut v: Version, id: &str, n: u64) -> Version {
    // `id` was validated by `validate_pre_id`; a bad one falls back to none
    // rather than panicking.
    v.pre = Prerelease::new(&format!("{id}.{n}")).unwrap_or(Prerelease::EMPTY);
    v
}

fn next_pre_number(pre: &Prerelease, id: &str) -> u64 {
    let mut parts = pre.as_str().split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(n), None) if p == id => n.parse::<u64>().map_or(1, |n| n + 1),
        (Some(p), None, None) if p == id => 1,
        _ => 1,
    }
}

/// Whether `id` can start a pre-release (`alpha`, `rc`, …).
pub fn validate_pre_id(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && Prerelease::new(&format!("{id}.1")).is_ok()
    {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not a pre-release identifier; use letters, digits and `-`, such as `rc` or `alpha`"
        ))
    }
}

/// The requirement to write in place of `old` so that it admits `new` and
/// points dependents at it, or `None` when `old` should stay. `=` pins stay
/// pins and `~` stays `~`; a caret requirement (`0.3`, `^0.3.1`) moves to
/// the new version so dependents get it; ranges that already admit `new`
/// stay.
pub fn updated_requirement(old: &str, new: &Version) -> Option<String> {
    let written = old.trim();
    let req = VersionReq::parse(written).ok();
    let single = req.as_ref().filter(|r| r.comparators.len() == 1);
    let next = match single.map(|r| r.comparators[0].op) {
        Some(Op::Exact) => format!("={new}"),
        Some(Op::Tilde) => format!("~{new}"),
        Some(Op::Caret) if written.starts_with('^') => format!("^{new}"),
        Some(Op::Caret) => new.to_string(),
        _ if req.as_ref().is_some_and(|r| r.matches(new)) => return None,
        _ => new.to_string(),
    };
    (next != written).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn levels_on_releases() {
        assert_eq!(bump(&v("1.2.3"), Level::Patch, None), v("1.2.4"));
        assert_eq!(bump(&v("1.2.3"), Level::Minor, None), v("1.3.0"));
        assert_eq!(bump(&v("1.2.3"), Level::Major, None), v("2.0.0"));
    }

    #[test]
    fn breaking_on_zero_x_is_minor() {
        assert_eq!(bump(&v("0.3.2"), Level::Major, None), v("0.4.0"));
        assert_eq!(bump(&v("0.3.2"), Level::Minor, None), v("0.4.0"));
        assert_eq!(bump(&v("0.3.2"), Level::Patch, None), v("0.3.3"));
        assert_eq!(bump(&v("0.0.7"), Level::Major, None), v("0.1.0"));
    }

    #[test]
    fn pre_releases() {
        assert_eq!(bump(&v("1.2.3"), Level::Minor, Some("rc")), v("1.3.0-rc.1"));
        assert_eq!(
            bump(&v("0.3.0"), Level::Major, Some("alpha")),
            v("0.4.0-alpha.1")
        );
        assert_eq!(
            bump(&v("1.3.0-rc.1"), Level::Minor, Some("rc")),
            v("1.3.0-rc.2")
        );
        assert_eq!(
            bump(&v("1.3.0-rc.9"), Level::Patch, Some("rc")),
            v("1.3.0-rc.10")
        );
        assert_eq!(
            bump(&v("1.3.0-alpha.4"), Level::Patch, Some("beta")),
            v("1.3.0-beta.1")
        );
        assert_eq!(bump(&v("1.3.0-rc.2"), Level::Major, None), v("1.3.0"));
        assert!(validate_pre_id("rc").is_ok());
        assert!(validate_pre_id("").is_err());
        assert!(validate_pre_id("r.c").is_err());
        assert!(
            validate_pre_id("01").is_err(),
            "numeric identifiers cannot have leading zeros"
        );
    }

    #[test]
    fn dependents_of_pre_releases_stay_pre_releases() {
        assert_eq!(dependent_bump(&v("0.3.0"), None), v("0.3.1"));
        assert_eq!(dependent_bump(&v("2.0.0-rc.1"), None), v("2.0.0-rc.2"));
        assert_eq!(dependent_bump(&v("0.3.0"), Some("rc")), v("0.3.1-rc.1"));
    }

    #[test]
    fn requirements() {
        let new = v("0.4.0");
        assert_eq!(updated_requirement("0.3.0", &new).as_deref(), Some("0.4.0"));
        assert_eq!(updated_requirement("0.3", &new).as_deref(), Some("0.4.0"));
        assert_eq!(
            updated_requirement("^0.3.1", &new).as_deref(),
            Some("^0.4.0")
        );
        assert_eq!(
            updated_requirement("=0.3.0", &new).as_deref(),
            Some("=0.4.0")
        );
        assert_eq!(
            updated_requirement("~0.3.0", &new).as_deref(),
            Some("~0.4.0")
        );
        assert_eq!(updated_requirement(">=0.1", &new), None);
        assert_eq!(
            updated_requirement(">=0.1, <0.4", &new).as_deref(),
            Some("0.4.0")
        );
        assert_eq!(updated_requirement("0.4.0", &new), None);
        assert_eq!(updated_requirement("*", &new), None);
    }
}
