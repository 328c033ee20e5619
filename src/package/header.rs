//! File headers read like WordPress's `get_file_data()`: the first 8 KiB of a file, `\r`
//! turned into `\n`, and for each header name the first line matching
//! `^(?:[ \t]*<\?php)?[ \t/*#@]*NAME:(.*)$` (case-insensitive), whose value is cut at the
//! first `*/` or `?>` (with the blanks before it) and trimmed like PHP's `trim()`. A value
//! that is empty or `"0"` counts as absent, as in PHP (`&& $match[1]`).

/// The value of header `name` in `text` (already cut to the first 8 KiB), or `None`.
pub fn field(text: &str, name: &str) -> Option<String> {
    let normalized;
    let text = if text.contains('\r') {
        normalized = text.replace('\r', "\n");
        normalized.as_str()
    } else {
        text
    };
    text.split('\n').find_map(|line| match_line(line, name))
}

fn match_line(line: &str, name: &str) -> Option<String> {
    let bytes = line.as_bytes();
    let mut at = skip_blanks(bytes, 0);
    if bytes[at..].starts_with(b"<?php") {
        at += 5;
    } else {
        // The optional `[ \t]*<?php` did not match: the blanks are re-read by the next class.
        at = 0;
    }
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'/' | b'*' | b'#' | b'@') {
        at += 1;
    }
    let rest = &line[at..];
    let head = rest.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) || !rest[name.len()..].starts_with(':') {
        return None;
    }
    let raw = &rest[name.len() + 1..];
    // PHP: `$match[1]` must be truthy (not "" and not "0") before the clean-up.
    if raw.is_empty() || raw == "0" {
        return None;
    }
    let value = php_trim(cleanup(raw));
    if value.is_empty() {
        // WordPress keeps an empty string; for us that is "absent".
        return None;
    }
    Some(value.to_string())
}

fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t') {
        at += 1;
    }
    at
}

/// `_cleanup_header_comment`: drop `\s*(?:\*/|\?>).*`.
fn cleanup(raw: &str) -> &str {
    let cut = [raw.find("*/"), raw.find("?>")].into_iter().flatten().min();
    match cut {
        Some(end) => raw[..end].trim_end_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b'),
        None => raw,
    }
}

/// PHP's `trim()`: space, `\t`, `\n`, `\r`, NUL and vertical tab.
fn php_trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\0' | '\x0b'))
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn reads_a_docblock_header_like_wordpress() {
        let text =
            "<?php\n/**\n * Plugin Name: My Plugin\n * Version: 1.2.3 */\n * Requires PHP: 7.4\n";
        assert_eq!(field(text, "Plugin Name").as_deref(), Some("My Plugin"));
        assert_eq!(field(text, "Version").as_deref(), Some("1.2.3"));
        assert_eq!(field(text, "requires php").as_deref(), Some("7.4"));
        assert_eq!(field(text, "Author"), None);
    }

    #[test]
    fn php_open_tag_hash_and_at_prefixes_and_cr_line_ends() {
        assert_eq!(
            field("<?php // Plugin Name: A ?>", "Plugin Name").as_deref(),
            Some("A")
        );
        assert_eq!(field("# @Version: 2\r", "Version").as_deref(), Some("2"));
        assert_eq!(
            field("x\rTheme Name: T\rVersion: 1", "Theme Name").as_deref(),
            Some("T")
        );
    }

    #[test]
    fn the_first_matching_line_wins_and_text_before_the_name_does_not_match() {
        let text = "Version: 1\nVersion: 2\nRequires PHP Version: 9\n";
        assert_eq!(field(text, "Version").as_deref(), Some("1"));
        assert_eq!(field("The Plugin Name: x", "Plugin Name"), None);
        assert_eq!(field("Plugin Name : x", "Plugin Name"), None);
    }

    #[test]
    fn empty_and_zero_values_are_absent() {
        assert_eq!(field("Version:", "Version"), None);
        assert_eq!(field("Version:0", "Version"), None);
        assert_eq!(field("Version:   */", "Version"), None);
        assert_eq!(field("Version: 0", "Version").as_deref(), Some("0"));
    }

    #[test]
    fn multibyte_text_never_panics() {
        assert_eq!(field("é\n ü Plugin Name: x", "Plugin Name"), None);
        assert_eq!(field("Plugin Nam€: x", "Plugin Name"), None);
        assert_eq!(
            field("* Plugin Name: Ünï ?> tail", "Plugin Name").as_deref(),
            Some("Ünï")
        );
    }
}
