//! PHP's `serialize()`, the few value kinds EDD's answers need (SPEC §8.2): EDD's
//! `get_version` carries `sections`, `banners` and `icons` as PHP-serialized strings, and
//! its theme updater `unserialize()`s them — a single wrong length and the whole value is
//! `false`. Lengths count UTF-8 **bytes**, as PHP's strings are bytes (`s:6:"héllo";`).
//!
//! Arrays are ordered maps, as in PHP. A key that PHP would store as an integer (a
//! canonical decimal such as `"7"` or `"-3"`, not `"07"`, `"-0"` or `"1x"`) is written
//! `i:7;`, as PHP itself writes it, so the output equals `serialize()` of the same
//! array literal byte for byte.

use std::fmt::Write as _;

/// A PHP value that [`serialize`] can write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Php {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// An ordered array with string keys (integer-like keys are written as PHP would).
    Array(Vec<(String, Php)>),
}

impl Php {
    /// A string-to-string array, in the given order: the shape of EDD's `sections`,
    /// `banners` and `icons`.
    pub fn string_map<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Php {
        Php::Array(
            pairs
                .iter()
                .map(|(k, v)| (k.as_ref().to_owned(), Php::Str(v.as_ref().to_owned())))
                .collect(),
        )
    }
}

/// `serialize($value)` as PHP (7 and 8) writes it.
pub fn serialize(value: &Php) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Shorthand for `serialize(Php::string_map(pairs))`.
pub fn serialize_string_map<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::new();
    write_string_map(&mut out, pairs);
    out
}

/// Appends `serialize()` of a string-to-string array (see [`Php::string_map`]) to `out`,
/// building no [`Php`] value.
pub fn write_string_map<K: AsRef<str>, V: AsRef<str>>(out: &mut String, pairs: &[(K, V)]) {
    out.push_str("a:");
    crate::telemetry::push_u64(out, pairs.len() as u64);
    out.push_str(":{");
    for (key, value) in pairs {
        write_key(out, key.as_ref());
        write_str(out, value.as_ref());
    }
    out.push('}');
}

fn write_key(out: &mut String, key: &str) {
    match php_int_key(key) {
        Some(i) => {
            let _ = write!(out, "i:{i};");
        }
        None => write_str(out, key),
    }
}

fn write_value(out: &mut String, value: &Php) {
    // Writing to a String cannot fail.
    match value {
        Php::Null => out.push_str("N;"),
        Php::Bool(b) => {
            let _ = write!(out, "b:{};", u8::from(*b));
        }
        Php::Int(i) => {
            let _ = write!(out, "i:{i};");
        }
        Php::Str(s) => write_str(out, s),
        Php::Array(items) => {
            out.push_str("a:");
            crate::telemetry::push_u64(out, items.len() as u64);
            out.push_str(":{");
            for (key, item) in items {
                write_key(out, key);
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// `s:<bytes>:"<raw bytes>";` — no escaping: PHP reads exactly `<bytes>` bytes.
fn write_str(out: &mut String, s: &str) {
    out.push_str("s:");
    crate::telemetry::push_u64(out, s.len() as u64);
    out.push_str(":\"");
    out.push_str(s);
    out.push_str("\";");
}

/// The integer PHP turns an array key into, if it does: an optional `-` then digits with
/// no leading zero (`"0"` itself is fine, `"-0"` is not), within `i64`.
fn php_int_key(key: &str) -> Option<i64> {
    let digits = key.strip_prefix('-').unwrap_or(key);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ((digits == "0" && digits.len() == key.len()) || !digits.starts_with('0'));
    if canonical { key.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every expected string below was printed by `php -r 'echo serialize(…);'` (PHP 8).

    #[test]
    fn scalars_match_php() {
        assert_eq!(serialize(&Php::Null), "N;");
        assert_eq!(serialize(&Php::Bool(true)), "b:1;");
        assert_eq!(serialize(&Php::Bool(false)), "b:0;");
        assert_eq!(serialize(&Php::Int(0)), "i:0;");
        assert_eq!(serialize(&Php::Int(-42)), "i:-42;");
        assert_eq!(serialize(&Php::Int(i64::MAX)), "i:9223372036854775807;");
        assert_eq!(serialize(&Php::Str(String::new())), r#"s:0:"";"#);
        assert_eq!(serialize(&Php::Str("abc".into())), r#"s:3:"abc";"#);
    }

    #[test]
    fn string_lengths_count_utf8_bytes() {
        // php -r 'echo serialize("héllo");'
        assert_eq!(serialize(&Php::Str("héllo".into())), r#"s:6:"héllo";"#);
        // An em dash is 3 bytes, an emoji 4; quotes and semicolons need no escaping.
        assert_eq!(serialize(&Php::Str("a — b".into())), r#"s:7:"a — b";"#);
        assert_eq!(serialize(&Php::Str("🦀".into())), r#"s:4:"🦀";"#);
        assert_eq!(
            serialize(&Php::Str(r#"say "hi";"#.into())),
            r#"s:9:"say "hi";";"#
        );
    }

    #[test]
    fn arrays_keep_their_order_and_nest() {
        assert_eq!(serialize(&Php::Array(vec![])), "a:0:{}");
        // php -r 'echo serialize(["high"=>"https://x/h.png","low"=>"https://x/l.png"]);'
        assert_eq!(
            serialize_string_map(&[("high", "https://x/h.png"), ("low", "https://x/l.png")]),
            r#"a:2:{s:4:"high";s:15:"https://x/h.png";s:3:"low";s:15:"https://x/l.png";}"#
        );
        // php -r 'echo serialize(["a"=>null,"b"=>true,"c"=>3,"d"=>["e"=>"f"]]);'
        let nested = Php::Array(vec![
            ("a".into(), Php::Null),
            ("b".into(), Php::Bool(true)),
            ("c".into(), Php::Int(3)),
            ("d".into(), Php::string_map(&[("e", "f")])),
        ]);
        assert_eq!(
            serialize(&nested),
            r#"a:4:{s:1:"a";N;s:1:"b";b:1;s:1:"c";i:3;s:1:"d";a:1:{s:1:"e";s:1:"f";}}"#
        );
    }

    #[test]
    fn integer_like_keys_are_written_as_php_stores_them() {
        // php -r 'echo serialize(["1x"=>"a","2"=>"b","07"=>"c","-3"=>"d","-0"=>"e","0"=>"f"]);'
        let keys = [
            ("1x", "a"),
            ("2", "b"),
            ("07", "c"),
            ("-3", "d"),
            ("-0", "e"),
            ("0", "f"),
        ];
        assert_eq!(
            serialize_string_map(&keys),
            r#"a:6:{s:2:"1x";s:1:"a";i:2;s:1:"b";s:2:"07";s:1:"c";i:-3;s:1:"d";s:2:"-0";s:1:"e";i:0;s:1:"f";}"#
        );
        // Beyond i64, PHP keeps the string.
        // php -r 'echo serialize(["9223372036854775808"=>1]);'
        let big = Php::Array(vec![("9223372036854775808".into(), Php::Int(1))]);
        assert_eq!(serialize(&big), r#"a:1:{s:19:"9223372036854775808";i:1;}"#);
    }

    #[test]
    fn long_lengths_are_written_in_full() {
        let long = "x".repeat(123_456);
        assert_eq!(
            serialize(&Php::Str(long.clone())),
            format!("s:123456:\"{long}\";")
        );
        let many: Vec<(String, String)> =
            (0..10).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(serialize_string_map(&many).starts_with("a:10:{s:2:\"k0\";s:0:\"\";"));
    }

    #[test]
    fn writing_a_string_map_equals_serializing_one() {
        let mut out = String::from("x");
        let pairs = [("7", "a"), ("-0", "é"), ("k", "say \"hi\";")];
        write_string_map(&mut out, &pairs);
        write_string_map::<&str, &str>(&mut out, &[]);
        assert_eq!(
            out,
            format!("x{}a:0:{{}}", serialize(&Php::string_map(&pairs)))
        );
    }

    #[test]
    fn the_fixture_sections_serialize_exactly() {
        // The `sections` value of tests/fixtures/dialects/edd-get_version.json.
        let sections = [
            (
                "description",
                "<p>An example plugin — its description, in HTML.</p>",
            ),
            (
                "changelog",
                "<h4>1.1.0</h4><ul><li>Fixed the widget.</li></ul>",
            ),
        ];
        assert_eq!(
            serialize_string_map(&sections),
            "a:2:{s:11:\"description\";s:54:\"<p>An example plugin — its description, in HTML.</p>\";s:9:\"changelog\";s:49:\"<h4>1.1.0</h4><ul><li>Fixed the widget.</li></ul>\";}"
        );
    }
}
