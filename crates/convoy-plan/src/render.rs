//! Output formats. Human text carries ANSI styles; the caller writes it
//! through a stream that strips them when stdout is not a terminal (such as
//! `anstream::stdout()`), so there is one renderer, not two.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use crate::diagnostic::{CheckReport, Diagnostic, Severity};
use crate::plan::{Action, Plan};

const STATUS: Style = AnsiColor::Green.on_default().bold();
const SKIP: Style = AnsiColor::Cyan.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const BOLD: Style = Style::new().bold();

/// A cargo-style status line: the word right-aligned in 12 columns.
fn status(out: &mut String, style: Style, word: &str, rest: &str) {
    let _ = writeln!(out, "{style}{word:>12}{style:#} {rest}");
}

/// Diagnostics as cargo prints them: `error[code]: message` then the hint.
pub fn diagnostics_human(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let (style, word) = match d.severity {
            Severity::Error => (ERROR, "error"),
            Severity::Warning => (WARNING, "warning"),
        };
        let pkg = d
            .package
            .as_deref()
            .map(|p| format!(" `{p}`:"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{style}{word}[{}]{style:#}{BOLD}:{BOLD:#}{pkg} {}",
            d.code, d.message
        );
        let _ = writeln!(out, "  {BOLD}= help:{BOLD:#} {}", d.hint);
    }
    out
}

/// The plan for people.
pub fn plan_human(plan: &Plan) -> String {
    let mut out = String::new();
    let registry = match &plan.registry.name {
        Some(n) => format!("`{n}` ({})", plan.registry.index),
        None => format!("`{}`", plan.registry.index),
    };
    let n = plan.packages.len();
    status(
        &mut out,
        STATUS,
        "Planning",
        &format!(
            "{n} package{} for {registry} in {} wave{}",
            if n == 1 { "" } else { "s" },
            plan.waves,
            if plan.waves == 1 { "" } else { "s" }
        ),
    );
    // Companions are listed under their parent, whose release they are
    // part of, rather than in their own place in the order.
    fn listed_under<'p>(plan: &Plan, p: &'p crate::PlannedPackage) -> Option<&'p str> {
        p.sublibrary_of
            .as_deref()
            .filter(|parent| plan.package(parent).is_some())
    }
    for p in &plan.packages {
        if listed_under(plan, p).is_some() {
            continue;
        }
        package_line(&mut out, p, None);
        for c in plan
            .packages
            .iter()
            .filter(|c| listed_under(plan, c) == Some(p.name.as_str()))
        {
            package_line(&mut out, c, Some(&p.name));
        }
    }
    if !plan.critical_path.is_empty() {
        status(
            &mut out,
            STATUS,
            "Critical",
            &format!("path {}", plan.critical_path.join(" → ")),
        );
    }
    out.push_str(&diagnostics_human(&plan.diagnostics));
    out
}

/// One package of the plan; a companion is indented under `parent`.
fn package_line(out: &mut String, p: &crate::PlannedPackage, parent: Option<&str>) {
    {
        let mut notes = vec![format!("wave {}", p.wave)];
        if !p.depends_on.is_empty() {
            notes.push(format!("after {}", p.depends_on.join(", ")));
        }
        if !p.strip_dev_dependencies.is_empty() {
            notes.push(format!(
                "dev-dependencies stripped: {}",
                p.strip_dev_dependencies.join(", ")
            ));
        }
        let (style, word) = match p.action {
            Action::Publish => (STATUS, "Publish"),
            Action::Skip => {
                notes.push("already published".to_owned());
                (SKIP, "Skip")
            }
            Action::Unknown => {
                notes.push("registry not checked".to_owned());
                (WARNING, "Unknown")
            }
        };
        let text = format!("{} v{} ({})", p.name, p.version, notes.join("; "));
        match parent {
            Some(parent) => status(
                out,
                style,
                word,
                &format!("  └ {text}, companion of {parent}"),
            ),
            None => status(out, style, word, &text),
        }
    }
}

/// The check report for people.
pub fn check_human(report: &CheckReport) -> String {
    let mut out = diagnostics_human(&report.diagnostics);
    let (e, w) = (report.error_count(), report.warning_count());
    let summary = format!(
        "{} package{}: {e} error{}, {w} warning{}",
        report.packages_checked,
        if report.packages_checked == 1 {
            ""
        } else {
            "s"
        },
        if e == 1 { "" } else { "s" },
        if w == 1 { "" } else { "s" },
    );
    status(
        &mut out,
        if e == 0 { STATUS } else { ERROR },
        "Checked",
        &summary,
    );
    out
}

/// The plan as JSON (schema in `docs/PLANNING.md`).
pub fn plan_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default()
}

/// The check report as JSON (schema in `docs/PLANNING.md`).
pub fn check_json(report: &CheckReport) -> String {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        format_version: u32,
        packages_checked: usize,
        errors: usize,
        warnings: usize,
        diagnostics: &'a [Diagnostic],
    }
    serde_json::to_string_pretty(&Out {
        format_version: 1,
        packages_checked: report.packages_checked,
        errors: report.error_count(),
        warnings: report.warning_count(),
        diagnostics: &report.diagnostics,
    })
    .unwrap_or_default()
}

fn action_colour(a: Action) -> &'static str {
    match a {
        Action::Publish => "palegreen",
        Action::Skip => "lightgrey",
        Action::Unknown => "khaki",
    }
}

/// The publish graph for Graphviz: one cluster per wave, nodes coloured by
/// action, edges from a package to what it waits for.
pub fn plan_dot(plan: &Plan) -> String {
    let mut out =
        String::from("digraph convoy {\n  rankdir=BT;\n  node [shape=box, style=filled];\n");
    for wave in 0..plan.waves {
        let _ = writeln!(
            out,
            "  subgraph cluster_wave_{wave} {{\n    label=\"wave {wave}\";"
        );
        for p in plan.packages.iter().filter(|p| p.wave == wave) {
            let _ = writeln!(
                out,
                "    \"{}\" [label=\"{}\\n{}\\n{}\", fillcolor={}];",
                p.name,
                p.name,
                p.version,
                p.action.as_str(),
                action_colour(p.action)
            );
        }
        out.push_str("  }\n");
    }
    for p in &plan.packages {
        for d in &p.depends_on {
            let _ = writeln!(out, "  \"{}\" -> \"{d}\";", p.name);
        }
    }
    out.push_str("}\n");
    out
}

/// The publish graph for Mermaid (renders in GitHub Markdown).
pub fn plan_mermaid(plan: &Plan) -> String {
    let id = |name: &str| name.replace('-', "_");
    let mut out = String::from("flowchart BT\n");
    for wave in 0..plan.waves {
        let _ = writeln!(out, "  subgraph wave{wave}[\"wave {wave}\"]");
        for p in plan.packages.iter().filter(|p| p.wave == wave) {
            let _ = writeln!(
                out,
                "    {}[\"{} {}<br/>{}\"]:::{}",
                id(&p.name),
                p.name,
                p.version,
                p.action.as_str(),
                p.action.as_str()
            );
        }
        out.push_str("  end\n");
    }
    for p in &plan.packages {
        for d in &p.depends_on {
            let _ = writeln!(out, "  {} --> {}", id(&p.name), id(d));
        }
    }
    out.push_str("  classDef publish fill:#b5f5b5\n  classDef skip fill:#dddddd\n  classDef unknown fill:#f0e68c\n");
    out
}
