//! Conventional commits (<https://www.conventionalcommits.org/>): the
//! header `type(scope)!: description` and the `BREAKING CHANGE:` footer.

use serde::Serialize;

use crate::bump::Level;

/// A commit as git reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Full hash.
    pub id: String,
    /// First line of the message.
    pub subject: String,
    /// The rest of the message.
    pub body: String,
}

/// The changelog group of a conventional commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// `!` or a `BREAKING CHANGE` footer.
    Breaking,
    /// `feat`.
    Features,
    /// `fix` and `perf`.
    Fixes,
}

impl Group {
    /// The changelog heading.
    pub fn heading(self) -> &'static str {
        match self {
            Group::Breaking => "Breaking",
            Group::Features => "Features",
            Group::Fixes => "Fixes",
        }
    }
}

/// A commit that follows the convention and matters for a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Short hash (7 characters).
    pub id: String,
    /// The type (`feat`, `fix`, …), lower-case.
    pub kind: String,
    /// `(scope)`, if any.
    pub scope: Option<String>,
    /// The description after `: `.
    pub description: String,
    /// Its group.
    pub group: Group,
}

impl Change {
    /// The bump this change asks for.
    pub fn level(&self) -> Level {
        match self.group {
            Group::Breaking => Level::Major,
            Group::Features => Level::Minor,
            Group::Fixes => Level::Patch,
        }
    }
}

/// The change `commit` records, or `None` when it does not follow the
/// convention or has a type that does not ask for a release (`docs`,
/// `chore`, …) and is not breaking.
pub fn parse(commit: &Commit) -> Option<Change> {
    let (head, description) = commit.subject.split_once(':')?;
    let description = description.trim();
    if description.is_empty() {
        return None;
    }
    let (head, bang) = match head.strip_suffix('!') {
        Some(h) => (h, true),
        None => (head, false),
    };
    let (kind, scope) = match head.split_once('(') {
        Some((kind, rest)) => (kind, Some(rest.strip_suffix(')')?.trim().to_owned())),
        None => (head, None),
    };
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let kind = kind.to_ascii_lowercase();
    let breaking = bang
        || commit.body.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("BREAKING CHANGE:") || l.starts_with("BREAKING-CHANGE:")
        });
    let group = if breaking {
        Group::Breaking
    } else {
        match kind.as_str() {
            "feat" => Group::Features,
            "fix" | "perf" => Group::Fixes,
            _ => return None,
        }
    };
    Some(Change {
        id: commit.id.chars().take(7).collect(),
        kind,
        scope,
        description: description.to_owned(),
        group,
    })
}

/// The highest level among `changes`, `None` when there is none.
pub fn level_of(changes: &[Change]) -> Option<Level> {
    changes.iter().map(Change::level).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(subject: &str, body: &str) -> Commit {
        Commit {
            id: "0123456789abcdef".into(),
            subject: subject.into(),
            body: body.into(),
        }
    }

    #[test]
    fn types_and_levels() {
        let c = parse(&commit("feat(parser): accept tabs", "")).unwrap();
        assert_eq!(
            (c.group, c.scope.as_deref()),
            (Group::Features, Some("parser"))
        );
        assert_eq!(c.level(), Level::Minor);
        assert_eq!(c.id, "0123456");
        assert_eq!(
            parse(&commit("fix: off by one", "")).unwrap().level(),
            Level::Patch
        );
        assert_eq!(
            parse(&commit("perf: faster", "")).unwrap().group,
            Group::Fixes
        );
        assert_eq!(
            parse(&commit("feat!: drop old API", "")).unwrap().level(),
            Level::Major
        );
        assert_eq!(
            parse(&commit("refactor(x)!: rename", "")).unwrap().group,
            Group::Breaking
        );
        let footer = commit(
            "fix: tighten",
            "Longer text.\n\nBREAKING CHANGE: rejects tabs",
        );
        assert_eq!(parse(&footer).unwrap().level(), Level::Major);
    }

    #[test]
    fn not_conventional_or_not_releasable() {
        assert_eq!(parse(&commit("Update README", "")), None);
        assert_eq!(parse(&commit("docs: typo", "")), None);
        assert_eq!(parse(&commit("chore(release): 1.0", "")), None);
        assert_eq!(parse(&commit("feat:", "")), None);
        assert_eq!(parse(&commit("feat(unclosed: x", "")), None);
        assert_eq!(parse(&commit("Merge branch 'a b': c", "")), None);
    }

    #[test]
    fn highest_level_wins() {
        let changes: Vec<Change> = ["fix: a", "feat: b", "perf: c"]
            .iter()
            .filter_map(|s| parse(&commit(s, "")))
            .collect();
        assert_eq!(level_of(&changes), Some(Level::Minor));
        assert_eq!(level_of(&[]), None);
    }
}
