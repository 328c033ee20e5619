//! `readme.txt`, the WordPress.org format: a `=== Name ===` title, header lines
//! (`Tested up to: 6.5`, `Stable tag: 1.2.0`, …) before the first section, then
//! `== Section ==` blocks whose bodies are Markdown with `= Sub =` sub-headings.
//!
//! The five sections upkeep keeps are rendered to HTML (pulldown-cmark, `= Sub =` as
//! `<h4>`) and then sanitized by ammonia, whatever the Markdown produced: raw HTML in a
//! readme survives only as ammonia's allow-list permits — no `<script>` (nor its text), no
//! event attributes, no `style`, no `javascript:` or other non-web URL schemes; links get
//! `rel="nofollow noopener noreferrer"`.

use std::collections::BTreeMap;

/// What upkeep keeps of a readme.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Readme {
    pub tested: Option<String>,
    pub stable_tag: Option<String>,
    pub requires: Option<String>,
    pub requires_php: Option<String>,
    /// Keyed as the WordPress plugin API keys them: `description`, `installation`, `faq`,
    /// `changelog`, `upgrade_notice`.
    pub sections: BTreeMap<String, String>,
}

/// The section key for a `== Heading ==`, or `None` for sections upkeep does not keep.
fn section_key(heading: &str) -> Option<&'static str> {
    let h = heading.trim().to_ascii_lowercase();
    match h.as_str() {
        "description" => Some("description"),
        "installation" => Some("installation"),
        "changelog" | "change log" => Some("changelog"),
        "frequently asked questions" | "faq" => Some("faq"),
        "upgrade notice" => Some("upgrade_notice"),
        _ => None,
    }
}

/// `Some((level, text))` for `= x =` (1), `== x ==` (2), `=== x ===` (3 or more).
fn heading(line: &str) -> Option<(usize, &str)> {
    let t = line.trim();
    let level = t.bytes().take_while(|&b| b == b'=').count();
    if level == 0 || level == t.len() {
        return None;
    }
    let inner = t[level..].trim_end_matches('=').trim();
    if inner.is_empty() || !t.ends_with('=') {
        return None;
    }
    Some((level, inner))
}

/// Parses a readme (already cut to its size limit; invalid UTF-8 replaced).
pub fn parse(text: &str) -> Readme {
    let text = text
        .trim_start_matches('\u{feff}')
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut readme = Readme::default();
    let mut current: Option<(&'static str, Vec<&str>)> = None;
    let mut in_header = true;
    let mut bodies: Vec<(&'static str, Vec<&str>)> = Vec::new();
    for line in text.split('\n') {
        match heading(line) {
            Some((2, name)) => {
                in_header = false;
                if let Some(done) = current.take() {
                    bodies.push(done);
                }
                current = section_key(name).map(|key| (key, Vec::new()));
                // A section named twice: the first one counts.
                if current
                    .as_ref()
                    .is_some_and(|(key, _)| bodies.iter().any(|(k, _)| k == key))
                {
                    current = None;
                }
                continue;
            }
            Some((level, _)) if level >= 3 && in_header => continue,
            _ => {}
        }
        if in_header {
            header_line(&mut readme, line);
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    bodies.extend(current);
    for (key, lines) in bodies {
        let html = render(&lines);
        if !html.trim().is_empty() {
            readme.sections.insert(key.to_string(), html);
        }
    }
    readme
}

fn header_line(readme: &mut Readme, line: &str) {
    let Some((name, value)) = line.split_once(':') else {
        return;
    };
    let value = value.trim();
    if value.is_empty() {
        return;
    }
    let slot = match name.trim().to_ascii_lowercase().as_str() {
        "tested up to" => &mut readme.tested,
        "stable tag" => &mut readme.stable_tag,
        "requires at least" => &mut readme.requires,
        "requires php" => &mut readme.requires_php,
        _ => return,
    };
    if slot.is_none() {
        *slot = Some(value.to_string());
    }
}

/// A section body (readme Markdown) to sanitized HTML.
pub fn render(lines: &[&str]) -> String {
    let mut markdown = String::new();
    for line in lines {
        match heading(line) {
            Some((1, sub)) => {
                markdown.push_str("\n#### ");
                markdown.push_str(sub);
                markdown.push_str("\n\n");
            }
            _ => {
                markdown.push_str(line);
                markdown.push('\n');
            }
        }
    }
    let parser = pulldown_cmark::Parser::new(markdown.trim());
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    sanitize(&html)
}

/// The one sanitizer every rendered section goes through.
pub fn sanitize(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("nofollow noopener noreferrer"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "=== My Plugin ===\r\nContributors: me\r\nRequires at least: 6.0\r\nTested up to: 6.5\r\nStable tag: 1.2.0\r\n\r\nShort.\r\n\r\n== Description ==\r\n\r\nIt does *things*. See [the site](https://example.com/).\r\n\r\n* one\r\n* two\r\n\r\n== Screenshots ==\r\n\r\n1. a shot\r\n\r\n== Frequently Asked Questions ==\r\n\r\n= Does it? =\r\n\r\nYes.\r\n\r\n== Changelog ==\r\n\r\n= 1.2.0 =\r\n* Fixed: a bug\r\n";

    #[test]
    fn header_fields_and_sections() {
        let r = parse(README);
        assert_eq!(r.tested.as_deref(), Some("6.5"));
        assert_eq!(r.stable_tag.as_deref(), Some("1.2.0"));
        assert_eq!(r.requires.as_deref(), Some("6.0"));
        assert_eq!(r.requires_php, None);
        let keys: Vec<&str> = r.sections.keys().map(String::as_str).collect();
        assert_eq!(keys, ["changelog", "description", "faq"]);
        let d = &r.sections["description"];
        assert!(d.contains("<em>things</em>"), "{d}");
        assert!(d.contains("<li>one</li>"), "{d}");
        assert!(
            d.contains(
                r#"<a href="https://example.com/" rel="nofollow noopener noreferrer">the site</a>"#
            ),
            "{d}"
        );
        assert!(
            r.sections["faq"].contains("<h4>Does it?</h4>"),
            "{}",
            r.sections["faq"]
        );
        assert!(r.sections["changelog"].contains("<h4>1.2.0</h4>"));
        assert!(r.sections["changelog"].contains("<li>Fixed: a bug</li>"));
    }

    #[test]
    fn hostile_html_is_sanitized_away() {
        let text = "== Description ==\n\n<script>alert(1)</script>\n\n<p onclick=\"steal()\" style=\"x\">hi</p>\n\n[x](javascript:alert(2)) <a href=\"JaVaScRiPt:alert(3)\">y</a> <img src=x onerror=alert(4)>\n\n<iframe src=\"https://evil.example/\"></iframe><svg onload=alert(5)></svg>\n\n== Upgrade Notice ==\n\n<a href=\"data:text/html,<script>alert(6)</script>\">z</a>";
        let r = parse(text);
        for html in r.sections.values() {
            let lower = html.to_ascii_lowercase();
            for bad in [
                "<script",
                "alert",
                "onclick",
                "onerror",
                "onload",
                "javascript:",
                "style=",
                "<iframe",
                "<svg",
                "data:",
            ] {
                assert!(!lower.contains(bad), "{bad} survived in {html}");
            }
        }
        assert!(
            r.sections["description"].contains("<p>hi</p>"),
            "{}",
            r.sections["description"]
        );
        assert!(r.sections["upgrade_notice"].contains(">z</a>"));
    }

    #[test]
    fn headings_and_odd_input() {
        assert_eq!(heading("== A =="), Some((2, "A")));
        assert_eq!(heading("= 1.0 ="), Some((1, "1.0")));
        assert_eq!(heading("====="), None);
        assert_eq!(heading("= a"), None);
        assert_eq!(parse(""), Readme::default());
        assert_eq!(parse("== Description ==\n\n  \n").sections.len(), 0);
        // The first of two same-named sections counts.
        let r = parse("== Changelog ==\nfirst\n== Changelog ==\nsecond\n");
        assert!(r.sections["changelog"].contains("first"));
        assert!(!r.sections["changelog"].contains("second"));
    }
}
