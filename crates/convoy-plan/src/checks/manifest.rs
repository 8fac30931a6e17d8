//! Package metadata: what crates.io requires or refuses in `[package]`.

use std::collections::HashSet;
use std::sync::OnceLock;

use convoy_workspace::Member;

use crate::diagnostic::{Code, Diagnostic};

/// crates.io's limits (`crates_io_validation`, `publish_limits.rs`).
const MAX_KEYWORDS: usize = 5;
const MAX_KEYWORD_LEN: usize = 20;
const MAX_CATEGORIES: usize = 5;
const MAX_FEATURES: usize = 300;
const MAX_DEPENDENCIES: usize = 500;

/// crates.io's category slugs, shipped as data because crates.io refuses an
/// unknown slug and cargo no longer warns about it.
fn categories() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        include_str!("../../data/categories.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// crates.io accepts `/` for OR, deprecated identifiers and `GPL-2.0+`, and
/// refuses unknown identifiers and loose names such as `Apache 2.0`.
const LICENSE_MODE: spdx::ParseMode = spdx::ParseMode {
    allow_slash_as_or_operator: true,
    allow_imprecise_license_names: false,
    allow_postfix_plus_on_gpl: true,
    allow_deprecated: true,
    allow_unknown: false,
};

fn keyword_is_valid(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
}

pub(super) fn check(m: &Member, out: &mut Vec<Diagnostic>) {
    let name = Some(m.name.as_str());
    let manifest = format!("`{}`", m.manifest_path.display());
    if let Err(e) = convoy_protocol::CrateName::new(m.name.clone()) {
        out.push(Diagnostic::new(
            Code::InvalidCrateName,
            name,
            e.to_string(),
            "rename the package, registries refuse this name",
        ));
    }
    if m.description.as_deref().is_none_or(|d| d.trim().is_empty()) {
        out.push(Diagnostic::new(
            Code::MissingDescription,
            name,
            format!("`{}` has no `description`", m.name),
            format!("add `description = \"…\"` to `[package]` in {manifest}"),
        ));
    }
    match (&m.license, &m.license_file) {
        (None, None) => out.push(Diagnostic::new(
            Code::MissingLicense,
            name,
            format!("`{}` has neither `license` nor `license-file`", m.name),
            format!("add `license = \"MIT OR Apache-2.0\"` (an SPDX expression) to `[package]` in {manifest}"),
        )),
        (Some(license), _) => {
            if let Err(e) = spdx::Expression::parse_mode(license, LICENSE_MODE) {
                out.push(Diagnostic::new(
                    Code::InvalidLicense,
                    name,
                    format!("`license = \"{license}\"` is not a valid SPDX expression, {}", e.reason),
                    "use SPDX identifiers joined by `OR`/`AND`, see https://spdx.org/licenses/, or use `license-file`",
                ));
            }
        }
        (None, Some(_)) => {}
    }
    if let Some(file) = &m.license_file {
        let path = m.dir().join(file);
        if !path.is_file() {
            out.push(Diagnostic::new(
                Code::LicenseFileNotFound,
                name,
                format!("`license-file = \"{}\"` does not exist", file.display()),
                "fix the path (relative to the package) or add the file",
            ));
        }
    }
    if let Some(readme) = &m.readme {
        let path = m.dir().join(readme);
        if !path.is_file() {
            out.push(Diagnostic::new(
                Code::ReadmeNotFound,
                name,
                format!("`readme = \"{}\"` does not exist", readme.display()),
                "fix the path (relative to the package), add the file, or set `readme = false`",
            ));
        }
    }
    if m.repository.as_deref().is_none_or(|r| r.trim().is_empty()) {
        out.push(Diagnostic::new(
            Code::MissingRepository,
            name,
            format!("`{}` has no `repository`", m.name),
            format!("add `repository = \"https://…\"` to `[package]` in {manifest} so users can find the source"),
        ));
    }
    if m.keywords.len() > MAX_KEYWORDS {
        out.push(Diagnostic::new(
            Code::TooManyKeywords,
            name,
            format!(
                "`{}` has {} keywords, the limit is {MAX_KEYWORDS}",
                m.name,
                m.keywords.len()
            ),
            "keep the five that people search for",
        ));
    }
    for k in &m.keywords {
        if k.len() > MAX_KEYWORD_LEN || !keyword_is_valid(k) {
            out.push(Diagnostic::new(
                Code::InvalidKeyword,
                name,
                format!("keyword `{k}` is invalid, keywords have at most {MAX_KEYWORD_LEN} characters, start with a letter or digit and hold only letters, digits, `_`, `-` and `+`"),
                "shorten or respell the keyword",
            ));
        }
    }
    if m.categories.len() > MAX_CATEGORIES {
        out.push(Diagnostic::new(
            Code::TooManyCategories,
            name,
            format!(
                "`{}` has {} categories, the limit is {MAX_CATEGORIES}",
                m.name,
                m.categories.len()
            ),
            "keep the five that fit best",
        ));
    }
    for c in &m.categories {
        if !categories().contains(c.as_str()) {
            out.push(Diagnostic::new(
                Code::UnknownCategory,
                name,
                format!("category `{c}` is not a crates.io category slug"),
                "pick a slug from https://crates.io/category_slugs",
            ));
        }
    }
    if m.features.len() > MAX_FEATURES {
        out.push(Diagnostic::new(
            Code::TooManyFeatures,
            name,
            format!(
                "`{}` has {} features, crates.io accepts at most {MAX_FEATURES}",
                m.name,
                m.features.len()
            ),
            "merge features, or ask the registry for a higher limit",
        ));
    }
    if m.dependencies.len() > MAX_DEPENDENCIES {
        out.push(Diagnostic::new(
            Code::TooManyDependencies,
            name,
            format!(
                "`{}` has {} dependencies, crates.io accepts at most {MAX_DEPENDENCIES}",
                m.name,
                m.dependencies.len()
            ),
            "split the crate, or ask the registry for a higher limit",
        ));
    }
}
