//! READMEs: Markdown from the uploaded crate, rendered to HTML that is safe
//! to put in a page.
//!
//! pulldown-cmark renders (GFM tables, strikethrough, task lists; fenced
//! code is CommonMark), and ammonia removes everything that could run or
//! restyle: scripts, event-handler attributes, `javascript:` URLs, iframes,
//! `<style>` and `style=`, while it points relative links and images at
//! the repository.

use std::borrow::Cow;

use pulldown_cmark::{Options, Parser};

/// Where relative README URLs resolve to.
struct Base {
    /// For links: a browsable view of the file.
    links: String,
    /// For images: the raw bytes.
    images: String,
}

/// A repository URL on a forge that has `blob`/`raw` views resolves links
/// into them; any other http(s) repository URL resolves against itself.
fn base(repository: Option<&str>, readme_file: Option<&str>) -> Option<Base> {
    let repo = repository?.trim().trim_end_matches('/');
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    if !(repo.starts_with("https://") || repo.starts_with("http://")) {
        return None;
    }
    // The README's own directory inside the package.
    let dir = readme_file
        .and_then(|f| f.rsplit_once('/'))
        .map(|(dir, _)| format!("{}/", dir.trim_start_matches("./")))
        .unwrap_or_default();
    let forge = [
        "https://github.com/",
        "https://gitlab.com/",
        "https://codeberg.org/",
    ]
    .iter()
    .any(|f| repo.starts_with(f));
    Some(if forge {
        Base {
            links: format!("{repo}/blob/HEAD/{dir}"),
            images: format!("{repo}/raw/HEAD/{dir}"),
        }
    } else {
        Base {
            links: format!("{repo}/{dir}"),
            images: format!("{repo}/{dir}"),
        }
    })
}

fn is_relative(url: &str) -> bool {
    if url.is_empty() || url.starts_with('#') || url.starts_with("//") {
        return false;
    }
    // A scheme is letters, digits, `+`, `-`, `.` before the first `:`.
    match url.find(':') {
        Some(colon) => {
            let before = &url[..colon];
            before.contains('/') || before.contains('?') || before.contains('#')
        }
        None => true,
    }
}

fn resolve(url: &str, base: &str) -> Option<String> {
    if !is_relative(url) {
        return None;
    }
    let path = url.trim_start_matches("./");
    Some(match path.strip_prefix('/') {
        // Root-relative: the repository's root, not the README's directory.
        Some(rooted) => match base.find("/HEAD/") {
            Some(i) => format!("{}{rooted}", &base[..i + "/HEAD/".len()]),
            None => format!("{base}{rooted}"),
        },
        None => format!("{base}{path}"),
    })
}

/// The README as sanitized HTML.
pub(crate) fn render(
    markdown: &str,
    repository: Option<&str>,
    readme_file: Option<&str>,
) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, Parser::new_ext(markdown, options));
    let mut cleaner = ammonia::Builder::default();
    cleaner.link_rel(Some("noopener noreferrer nofollow"));
    // Links and images written in Markdown and in raw HTML alike.
    if let Some(base) = base(repository, readme_file) {
        cleaner.attribute_filter(move |element, attribute, value| {
            let resolved = match (element, attribute) {
                ("a", "href") => resolve(value, &base.links),
                ("img", "src") => resolve(value, &base.images),
                _ => None,
            };
            Some(resolved.map_or(Cow::Borrowed(value), Cow::Owned))
        });
    }
    cleaner.clean(&html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_code_render() {
        let html = render(
            "# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```rust\nfn x() {}\n```\n",
            None,
            None,
        );
        assert!(html.contains("<h1>T</h1>"), "{html}");
        assert!(
            html.contains("<table>") && html.contains("<td>2</td>"),
            "{html}"
        );
        assert!(html.contains("<pre><code"), "{html}");
    }

    #[test]
    fn dangerous_markup_is_stripped() {
        let md = "<script>alert(1)</script>\n\n<img src=x onerror=\"alert(1)\">\n\n\
                  [x](javascript:alert(1))\n\n<iframe src=\"https://e.invalid\"></iframe>\n\n\
                  <style>body{display:none}</style>\n\n<p style=\"color:red\">s</p>\n";
        let html = render(md, None, None);
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "<iframe",
            "<style",
            "style=",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
    }

    #[test]
    fn relative_urls_resolve_against_the_repository() {
        let html = render(
            "[guide](docs/guide.md) [top](/LICENSE) [abs](https://x.invalid/) [a](#frag) ![logo](./logo.png) <img src=\"raw.png\">",
            Some("https://github.com/acme/widgets.git"),
            Some("crates/w/README.md"),
        );
        assert!(
            html.contains(
                "href=\"https://github.com/acme/widgets/blob/HEAD/crates/w/docs/guide.md\""
            ),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://github.com/acme/widgets/blob/HEAD/LICENSE\""),
            "{html}"
        );
        assert!(html.contains("href=\"https://x.invalid/\""), "{html}");
        assert!(html.contains("href=\"#frag\""), "{html}");
        assert!(
            html.contains("src=\"https://github.com/acme/widgets/raw/HEAD/crates/w/logo.png\""),
            "{html}"
        );
        assert!(
            html.contains("src=\"https://github.com/acme/widgets/raw/HEAD/crates/w/raw.png\""),
            "{html}"
        );
    }
}
