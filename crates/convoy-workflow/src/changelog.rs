//! Keep-a-changelog files (<https://keepachangelog.com/en/1.1.0/>): one
//! section per release, newest first, below `## [Unreleased]`.

use std::fmt::Write as _;

use crate::conventional::{Change, Group};

/// The header of a new changelog.
pub const HEADER: &str = "# Changelog

All notable changes to this crate are documented in this file.

The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),
and this crate adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).

## [Unreleased]
";

/// One release's section: its conventional changes grouped as Breaking,
/// Features and Fixes, and the dependency requirements that moved (so a
/// release made only for its dependencies says why it exists).
pub fn section(version: &str, date: &str, changes: &[Change], dependencies: &[String]) -> String {
    let mut s = format!("## [{version}] - {date}\n");
    for group in [Group::Breaking, Group::Features, Group::Fixes] {
        let items: Vec<&Change> = changes.iter().filter(|c| c.group == group).collect();
        if items.is_empty() {
            continue;
        }
        let _ = write!(s, "\n### {}\n\n", group.heading());
        for c in items {
            let scope = c
                .scope
                .as_deref()
                .map(|s| format!("**{s}:** "))
                .unwrap_or_default();
            let _ = writeln!(s, "- {scope}{} ({})", c.description, c.id);
        }
    }
    if !dependencies.is_empty() {
        s.push_str("\n### Dependencies\n\n");
        for d in dependencies {
            let _ = writeln!(s, "- {d}");
        }
    }
    if changes.is_empty() && dependencies.is_empty() {
        s.push_str("\nNo notable changes.\n");
    }
    s
}

/// `existing` (or a new file when `None`) with `section` as the newest
/// release: right after the `## [Unreleased]` section's heading and
/// content, else before the first release section, else at the end.
pub fn insert(existing: Option<&str>, section: &str) -> String {
    let text = existing.unwrap_or(HEADER);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let is_release =
        |l: &str| l.starts_with("## ") && !l.to_ascii_lowercase().contains("unreleased");
    let at = lines
        .iter()
        .position(|l| is_release(l))
        .unwrap_or(lines.len());
    let mut out: String = lines[..at].concat();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(section);
    if at < lines.len() {
        out.push('\n');
        out.push_str(&lines[at..].concat());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conventional::{Commit, parse};

    fn changes(subjects: &[&str]) -> Vec<Change> {
        subjects
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                parse(&Commit {
                    id: format!("{i:07}abcdef"),
                    subject: (*s).into(),
                    body: String::new(),
                })
            })
            .collect()
    }

    #[test]
    fn new_changelog() {
        let s = section(
            "0.4.0",
            "2026-12-01",
            &changes(&[
                "feat(api): add `double`",
                "fix: handle zero",
                "feat!: rename `value`",
                "docs: typo",
            ]),
            &[],
        );
        insta::assert_snapshot!(insert(None, &s), @r"
        # Changelog

        All notable changes to this crate are documented in this file.

        The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),
        and this crate adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).

        ## [Unreleased]

        ## [0.4.0] - 2026-12-01

        ### Breaking

        - rename `value` (0000002)

        ### Features

        - **api:** add `double` (0000000)

        ### Fixes

        - handle zero (0000001)
        ");
    }

    #[test]
    fn newest_release_goes_first_and_the_rest_is_kept() {
        let existing = "# Changelog\n\n## [Unreleased]\n\n- a note kept by hand\n\n## [0.3.0] - 2026-01-01\n\n### Fixes\n\n- old fix (abcdef0)\n";
        let s = section("0.3.1", "2026-12-01", &[], &["`wf-base` 0.4.0".to_owned()]);
        insta::assert_snapshot!(insert(Some(existing), &s), @r"
        # Changelog

        ## [Unreleased]

        - a note kept by hand

        ## [0.3.1] - 2026-12-01

        ### Dependencies

        - `wf-base` 0.4.0

        ## [0.3.0] - 2026-01-01

        ### Fixes

        - old fix (abcdef0)
        ");
    }
}
