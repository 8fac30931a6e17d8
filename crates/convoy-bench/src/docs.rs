//! `docs/BENCHMARKS.md`: one `## ` section per benchmark, each rewritten
//! whole by its own benchmark and left alone by the others.

use std::path::PathBuf;

use anyhow::Context;

const HEADER: &str = "# Benchmarks\n\n\
Figures measured with `cargo xtask bench …` (the `convoy-bench` crate). Each \
section is rewritten by its benchmark with `--update-docs`; the figures \
depend on the machine, so each section says which one.\n";

/// The workspace's `docs/BENCHMARKS.md`.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/BENCHMARKS.md")
}

/// Replaces the section that starts with `heading` (a `## ` line) up to the
/// next `## ` heading, or appends it.
pub fn update_section(heading: &str, body: &str) -> anyhow::Result<PathBuf> {
    let path = path();
    let old = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let section = format!("{heading}\n\n{}\n", body.trim_end());
    let new = replace_section(&old, heading, &section);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, new).with_context(|| format!("write {}", path.display()))?;
    Ok(path.canonicalize().unwrap_or(path))
}

fn replace_section(doc: &str, heading: &str, section: &str) -> String {
    let lines: Vec<&str> = doc.split_inclusive('\n').collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == heading) else {
        let mut out = doc.trim_end().to_owned();
        out.push_str("\n\n");
        out.push_str(section);
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    let mut out: String = lines[..start].concat();
    out.push_str(section);
    if end < lines.len() {
        out.push('\n');
        out.push_str(&lines[end..].concat());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::replace_section;

    #[test]
    fn replaces_only_its_section() {
        let doc = "# B\n\n## Registry\n\nold\n\n## Publish\n\nkeep\n";
        let out = replace_section(doc, "## Registry", "## Registry\n\nnew\n");
        assert_eq!(out, "# B\n\n## Registry\n\nnew\n\n## Publish\n\nkeep\n");
    }

    #[test]
    fn appends_a_missing_section() {
        let out = replace_section("# B\n", "## Registry", "## Registry\n\nnew\n");
        assert_eq!(out, "# B\n\n## Registry\n\nnew\n");
    }
}
