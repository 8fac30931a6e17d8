//! Findings, their codes and severities.

use std::collections::BTreeMap;

use serde::Serialize;

/// How bad a finding is. `check` fails (exit 1) when any is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// The release would fail or publish something wrong.
    Error,
    /// The release would go through but could embarrass its author.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $sev:ident;)*) => {
        /// The stable identifier of a check. The kebab-case string is part of
        /// the JSON schema and of `[workspace.metadata.convoy.lints]`; never
        /// rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $(
                #[doc = concat!("`", $code, "`")]
                $variant,
            )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The kebab-case code.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The severity unless the workspace overrides it.
            pub fn default_severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev,)* }
            }

            /// The code for a kebab-case string.
            pub fn parse(s: &str) -> Option<Code> {
                match s { $($code => Some(Code::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    MissingDescription = "missing-description", Error;
    MissingLicense = "missing-license", Error;
    InvalidLicense = "invalid-license", Error;
    MissingRepository = "missing-repository", Warning;
    ReadmeNotFound = "readme-not-found", Error;
    LicenseFileNotFound = "license-file-not-found", Error;
    TooManyKeywords = "too-many-keywords", Error;
    InvalidKeyword = "invalid-keyword", Error;
    TooManyCategories = "too-many-categories", Error;
    UnknownCategory = "unknown-category", Error;
    InvalidCrateName = "invalid-crate-name", Error;
    VersionContentMismatch = "version-content-mismatch", Error;
    LocalVersionMismatch = "local-version-mismatch", Error;
    PathDependencyWithoutVersion = "path-dependency-without-version", Error;
    DependencyOnUnpublishable = "dependency-on-unpublishable", Error;
    GitDependency = "git-dependency", Error;
    GitDependencyWithVersion = "git-dependency-with-version", Warning;
    WildcardDependency = "wildcard-dependency", Error;
    RegistryNotAllowed = "registry-not-allowed", Error;
    CrossRegistryDependency = "cross-registry-dependency", Error;
    PackageTooLarge = "package-too-large", Warning;
    PackagedSecret = "packaged-secret", Error;
    PackagedJunk = "packaged-junk", Warning;
    LargeBinaryFile = "large-binary-file", Warning;
    TooManyFeatures = "too-many-features", Error;
    TooManyDependencies = "too-many-dependencies", Error;
    DependencyCycle = "dependency-cycle", Error;
    RegistryUnreachable = "registry-unreachable", Warning;
    ContentUnchecked = "content-unchecked", Warning;
    FileListUnavailable = "file-list-unavailable", Warning;
    UnknownLint = "unknown-lint", Warning;
    SublibraryParentAmbiguous = "sublibrary-parent-ambiguous", Error;
    SublibraryParentUnknown = "sublibrary-parent-unknown", Error;
    CompanionNameTaken = "companion-name-taken", Error;
    CompanionPrivacyConvention = "companion-privacy-convention", Warning;
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Which check.
    pub code: Code,
    /// After workspace overrides.
    pub severity: Severity,
    /// The package it is about; `None` for workspace-wide findings.
    pub package: Option<String>,
    /// One line, cargo style: lowercase, no trailing period, values in
    /// backticks.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl Diagnostic {
    /// A finding at the code's default severity.
    pub fn new(
        code: Code,
        package: Option<&str>,
        message: String,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            code,
            severity: code.default_severity(),
            package: package.map(str::to_owned),
            message,
            hint: hint.into(),
        }
    }
}

/// Severity overrides from `[workspace.metadata.convoy.lints]`:
/// `code = "error" | "warning" | "allow"`.
#[derive(Debug, Clone, Default)]
pub struct LintConfig {
    levels: BTreeMap<Code, Option<Severity>>,
    /// Findings about the configuration itself (unknown codes or levels).
    pub problems: Vec<Diagnostic>,
}

impl LintConfig {
    /// Reads the `lints` table of `[workspace.metadata.convoy]` (given as the
    /// `convoy` JSON value cargo metadata reports). Mistakes become
    /// `unknown-lint` warnings rather than errors, so a typo cannot block a
    /// release but is still seen.
    pub fn from_metadata(convoy: &serde_json::Value) -> Self {
        let mut config = LintConfig::default();
        let Some(lints) = convoy.get("lints").and_then(|l| l.as_object()) else {
            return config;
        };
        for (key, value) in lints {
            let Some(code) = Code::parse(key) else {
                config.problems.push(Diagnostic::new(
                    Code::UnknownLint,
                    None,
                    format!("unknown check `{key}` in `[workspace.metadata.convoy.lints]`"),
                    "see docs/PLANNING.md for the list of check codes",
                ));
                continue;
            };
            let level = match value.as_str() {
                Some("error" | "deny") => Some(Severity::Error),
                Some("warning" | "warn") => Some(Severity::Warning),
                Some("allow") => None,
                _ => {
                    config.problems.push(Diagnostic::new(
                        Code::UnknownLint,
                        None,
                        format!("invalid level `{value}` for `{key}` in `[workspace.metadata.convoy.lints]`"),
                        "use `\"error\"`, `\"warning\"` or `\"allow\"`",
                    ));
                    continue;
                }
            };
            config.levels.insert(code, level);
        }
        config
    }

    /// Applies the overrides: changes severities and drops allowed findings.
    pub fn apply(&self, diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
        diagnostics
            .into_iter()
            .filter_map(|mut d| match self.levels.get(&d.code) {
                None => Some(d),
                Some(None) => None,
                Some(Some(sev)) => {
                    d.severity = *sev;
                    Some(d)
                }
            })
            .collect()
    }
}

/// The result of `check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// How many packages were checked.
    pub packages_checked: usize,
    /// Every finding, sorted by package, severity, then code.
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    /// How many findings are errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// How many findings are warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// Whether the release may go ahead.
    pub fn passed(&self) -> bool {
        self.error_count() == 0
    }
}

impl CheckReport {
    /// Applies the workspace's `[workspace.metadata.convoy.lints]` to raw
    /// findings and sorts them: workspace-wide first, then by package,
    /// errors before warnings, then by code.
    pub fn new(
        convoy_metadata: &serde_json::Value,
        packages_checked: usize,
        diagnostics: Vec<Diagnostic>,
    ) -> Self {
        let config = LintConfig::from_metadata(convoy_metadata);
        let mut diagnostics = config.apply(diagnostics);
        diagnostics.extend(config.problems);
        diagnostics.sort_by(|a, b| {
            (&a.package, a.severity, a.code, &a.message)
                .cmp(&(&b.package, b.severity, b.code, &b.message))
        });
        Self {
            packages_checked,
            diagnostics,
        }
    }
}
