//! Request-parsing helpers of the public update dialects (SPEC §8.2), pure: form values
//! that may be URL-encoded twice (EDD), EDD's slugified `item_name`, and EDD's batch
//! `products[<slug>][field]=value` pairs.

use std::borrow::Cow;

/// Most items one batch may ask about (SPEC §8.2: ≤ 100).
pub const MAX_BATCH_ITEMS: usize = 100;

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space, `%XX` a byte),
/// then — EDD's updater sometimes encodes its values twice — decodes the result again if
/// it still contains a `%XX` sequence. A `%` not followed by two hex digits stays as it
/// is; bytes that are not UTF-8 become U+FFFD.
///
/// One ambiguity is inherent: a value encoded twice whose only escape was a space
/// (`a b` → `a+b` → `a%2Bb`) decodes to `a+b` (no `%XX` is left to show it was encoded
/// twice). The values EDD sends twice are URLs, names and keys: names are compared
/// slugified (a `+` and a space give the same slug) and keys are URL-safe characters.
/// The converse also holds: a value encoded *once* whose plain text contains `%XX` (a URL
/// path such as `/my%20site`) is decoded twice; for site URLs that is harmless, as a site
/// is its normalized host (SPEC §9 *Sites*) and the path is dropped.
pub fn decode_form_twice(value: &str) -> Cow<'_, str> {
    if !has_form_escape(value.as_bytes()) {
        // Nothing to decode (the usual name or value): no pass, no copy.
        return Cow::Borrowed(value);
    }
    let once = decode_form(value);
    Cow::Owned(if has_escape(&once) {
        decode_form(&once)
    } else {
        once
    })
}

/// A decoded `(name, value)` of a form or query: borrowed from the request when nothing
/// needed decoding.
pub type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// One pass of form decoding (`+` → space, `%XX` → byte).
pub fn decode_form(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// Whether `text` contains `%` followed by two hex digits.
fn has_escape(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// The pairs of a query string or form body, names and values each decoded with
/// [`decode_form_twice`], in order; empty pieces (`a=1&&b=2`) are skipped and a piece
/// without `=` is a name with an empty value, as PHP reads them.
pub fn parse_form(body: &str) -> Vec<Pair<'_>> {
    form_pairs(body).collect()
}

/// [`parse_form`] into [`Pairs`]: an update check's query (a few pairs) allocates nothing.
pub fn parse_query(query: &str) -> Pairs<'_> {
    let mut pairs = Pairs::default();
    pairs.extend(form_pairs(query));
    pairs
}

fn form_pairs(body: &str) -> impl Iterator<Item = Pair<'_>> {
    // `&` and `=` are ASCII: cutting at their bytes keeps every piece UTF-8.
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let text = rest?;
        Some(match crate::swar::find(text.as_bytes(), b'&') {
            Some(at) => {
                rest = Some(&text[at + 1..]);
                &text[..at]
            }
            None => {
                rest = None;
                text
            }
        })
    })
    .filter(|piece| !piece.is_empty())
    .map(|piece| {
        let (name, value) = match crate::swar::find(piece.as_bytes(), b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, ""),
        };
        // One test for the whole piece: the usual one has nothing to decode.
        if has_form_escape(piece.as_bytes()) {
            (decode_form_twice(name), decode_form_twice(value))
        } else {
            (Cow::Borrowed(name), Cow::Borrowed(value))
        }
    })
}

/// Form pairs, the first [`Pairs::INLINE`] kept inline and all of them in a `Vec` past
/// that; read as a slice.
#[derive(Debug, Default)]
pub struct Pairs<'a> {
    inline: [Pair<'a>; Pairs::INLINE],
    len: usize,
    spilled: Vec<Pair<'a>>,
}

impl Pairs<'_> {
    /// Pairs kept without an allocation: more than any update client's query sends.
    pub const INLINE: usize = 8;
}

impl<'a> Pairs<'a> {
    /// The pairs as a `Vec`, moved (not cloned).
    pub fn into_vec(mut self) -> Vec<Pair<'a>> {
        if self.spilled.is_empty() {
            self.inline[..self.len]
                .iter_mut()
                .map(std::mem::take)
                .collect()
        } else {
            self.spilled
        }
    }

    fn push(&mut self, pair: Pair<'a>) {
        if self.len < Self::INLINE {
            self.inline[self.len] = pair;
            self.len += 1;
            return;
        }
        if self.spilled.is_empty() {
            self.spilled
                .extend(self.inline.iter_mut().map(std::mem::take));
        }
        self.spilled.push(pair);
    }
}

impl<'a> Extend<Pair<'a>> for Pairs<'a> {
    fn extend<I: IntoIterator<Item = Pair<'a>>>(&mut self, pairs: I) {
        for pair in pairs {
            self.push(pair);
        }
    }
}

impl<'a> std::ops::Deref for Pairs<'a> {
    type Target = [Pair<'a>];

    fn deref(&self) -> &[Pair<'a>] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

/// Whether `bytes` has a `%` or a `+`, eight bytes at a time.
fn has_form_escape(bytes: &[u8]) -> bool {
    use crate::swar::has;
    let (mut words, rest) = crate::swar::words(bytes);
    words.any(|w| has(w, b'%') | has(w, b'+')) || rest.iter().any(|&b| b == b'%' || b == b'+')
}

/// A product name as EDD compares `item_name` (SPEC §7 *Product*, §8.2): lower-case, each
/// run of characters that are not letters or digits (Unicode) becomes one `-`, and `-` is
/// trimmed from both ends. `"Example Plugin!"` → `example-plugin`.
pub fn slugify(name: &str) -> String {
    // One rule for the store's name uniqueness and EDD's matching.
    crate::model::catalog::slugify(name)
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// More than [`MAX_BATCH_ITEMS`] distinct products.
    TooMany,
    /// A `products…` name that is not `products[<slug>][<field>]` (the name, as sent).
    Malformed(String),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::TooMany => write!(f, "more than {MAX_BATCH_ITEMS} products"),
            BatchError::Malformed(name) => {
                write!(f, "`{name}` is not products[<slug>][<field>]")
            }
        }
    }
}

impl std::error::Error for BatchError {}

/// One batch item: the slug and its `(field, value)` pairs, in the order sent.
pub type BatchItem = (String, Vec<(String, String)>);

/// EDD's batch `get_version` (`products[<slug>][<field>]=<value>`, already decoded, e.g.
/// by [`parse_form`]) grouped by slug in order of first appearance. Pairs whose name is not
/// `products` or `products[…` are the request's other fields and are skipped.
///
/// # Errors
/// [`BatchError::TooMany`] past [`MAX_BATCH_ITEMS`] slugs (checked as the pairs are read,
/// so a huge batch costs no more than its first 101 slugs' grouping);
/// [`BatchError::Malformed`] for a `products…` name of another shape (an empty slug or
/// field, a missing bracket, anything after the second bracket).
pub fn parse_edd_batch<'a, I>(pairs: I) -> Result<Vec<BatchItem>, BatchError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut items: Vec<BatchItem> = Vec::new();
    for (name, value) in pairs {
        let Some(rest) = name.strip_prefix("products") else {
            continue;
        };
        if !rest.is_empty() && !rest.starts_with('[') {
            continue; // another field whose name merely starts with `products`
        }
        let malformed = || BatchError::Malformed(name.to_owned());
        let (slug, field) = rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|r| r.split_once("]["))
            .ok_or_else(malformed)?;
        if slug.is_empty()
            || field.is_empty()
            || slug.contains(['[', ']'])
            || field.contains(['[', ']'])
        {
            return Err(malformed());
        }
        let fields = match items.iter_mut().position(|(s, _)| s == slug) {
            Some(i) => &mut items[i].1,
            None => {
                if items.len() == MAX_BATCH_ITEMS {
                    return Err(BatchError::TooMany);
                }
                items.push((slug.to_owned(), Vec::new()));
                &mut items.last_mut().expect("just pushed").1
            }
        };
        fields.push((field.to_owned(), value.to_owned()));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once_encoded_values() {
        assert_eq!(decode_form_twice("Example+Plugin"), "Example Plugin");
        assert_eq!(decode_form_twice("Example%20Plugin"), "Example Plugin");
        assert_eq!(
            decode_form_twice("https%3A%2F%2Fexample.com%2F"),
            "https://example.com/"
        );
        assert_eq!(decode_form_twice("h%C3%A9llo"), "héllo");
        assert_eq!(decode_form_twice("plain-key_1.2~"), "plain-key_1.2~");
        assert_eq!(decode_form_twice(""), "");
    }

    #[test]
    fn decodes_twice_encoded_values() {
        assert_eq!(
            decode_form_twice("https%253A%252F%252Fexample.com%252F"),
            "https://example.com/"
        );
        assert_eq!(decode_form_twice("h%25C3%25A9llo"), "héllo");
        assert_eq!(decode_form_twice("Example%2520Plugin"), "Example Plugin");
        // The inherent ambiguity: a twice-encoded space alone stays a `+`.
        assert_eq!(decode_form_twice("a%2Bb"), "a+b");
        // Never a third pass.
        assert_eq!(decode_form_twice("%252541"), "%41");
        // The converse ambiguity: a once-encoded `%20` in the plain text is decoded too.
        assert_eq!(
            decode_form_twice("https%3A%2F%2Fa.com%2Fmy%2520site"),
            "https://a.com/my site"
        );
    }

    #[test]
    fn stray_percent_signs_stay() {
        assert_eq!(decode_form_twice("100%"), "100%");
        assert_eq!(decode_form_twice("100%25"), "100%");
        assert_eq!(decode_form_twice("%zz%4"), "%zz%4");
        assert_eq!(decode_form_twice("%4"), "%4");
        assert_eq!(decode_form_twice("%"), "%");
        assert_eq!(decode_form_twice("%%41"), "%A");
        // Not UTF-8: replaced, never a panic.
        assert_eq!(decode_form_twice("%FF%FE"), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn forms_split_like_php() {
        assert_eq!(
            parse_form(
                "edd_action=get_version&item_name=Example+Plugin&&flag&url=https%253A%252F%252Fa.com"
            ),
            vec![
                ("edd_action".into(), "get_version".into()),
                ("item_name".into(), "Example Plugin".into()),
                ("flag".into(), "".into()),
                ("url".into(), "https://a.com".into()),
            ]
        );
        assert!(parse_form("").is_empty());
        // Borrowed from the input where nothing was decoded.
        let pairs = parse_form("a=1&b=x%20y");
        assert!(matches!(pairs[0], (Cow::Borrowed("a"), Cow::Borrowed("1"))));
        assert!(matches!(&pairs[1].1, Cow::Owned(v) if v == "x y"));
    }

    #[test]
    fn a_query_is_kept_inline_then_spills_whole() {
        for n in 0..=Pairs::INLINE * 2 + 1 {
            let query: Vec<String> = (0..n).map(|i| format!("n{i}=v%20{i}")).collect();
            let query = query.join("&");
            let pairs = parse_query(&query);
            assert_eq!(*pairs, *parse_form(&query), "{n} pairs");
            assert_eq!(pairs.len(), n);
            // Inline up to `INLINE`; past it, every pair (the first ones too) in the Vec.
            assert_eq!(pairs.spilled.is_empty(), n <= Pairs::INLINE, "{n} pairs");
            assert_eq!(pairs.into_vec(), parse_form(&query), "{n} pairs");
        }
        // A form body after the query (EDD's POST), crossing the inline bound part-way.
        let mut pairs = parse_query("a=1&b=2&c=3&d=4&e=5");
        pairs.extend(parse_form("f=6&g=7&h=8&i=9&j=10"));
        let names: String = pairs.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, "abcdefghij");
        assert_eq!(pairs[9].1, "10");
        assert!(!pairs.spilled.is_empty());
    }

    #[test]
    fn the_one_pass_split_is_the_plain_one() {
        // What the one pass stands for: cut at `&`, skip empty pieces, the first `=`
        // splits, both halves decoded.
        let reference = |body: &str| -> Vec<(String, String)> {
            body.split('&')
                .filter(|piece| !piece.is_empty())
                .map(|piece| {
                    let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
                    (
                        decode_form_twice(name).into_owned(),
                        decode_form_twice(value).into_owned(),
                    )
                })
                .collect()
        };
        for body in [
            "",
            "&",
            "&&",
            "a",
            "a=",
            "=x",
            "a=b=c",
            "&a",
            "a&",
            "a&&b",
            "a=%41&b",
            "x+y=1",
            "k=v+w&n=%2541",
            "=",
            "==",
            "a=1&b=2&c=3",
            "key=c350e8d1-ea93-4ecc",
            "é=ü&ü",
            "%zz=%",
            "+&+=+",
        ] {
            let ours: Vec<(String, String)> = parse_form(body)
                .into_iter()
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(ours, reference(body), "{body:?}");
            assert_eq!(*parse_query(body), *parse_form(body), "{body:?}");
        }
    }

    #[test]
    fn slugify_matches_edd_item_names() {
        assert_eq!(slugify("Example Plugin"), "example-plugin");
        assert_eq!(slugify("  Example -- Plugin!  "), "example-plugin");
        assert_eq!(
            slugify("WooCommerce PDF Invoices & Packing Slips"),
            "woocommerce-pdf-invoices-packing-slips"
        );
        assert_eq!(slugify("v2.0_beta"), "v2-0-beta");
        assert_eq!(slugify("Café Ünïcode"), "café-ünïcode");
        assert_eq!(slugify("!!!"), "");
        assert_eq!(slugify(""), "");
    }

    #[test]
    fn batches_group_by_slug_in_order() {
        let pairs = [
            ("edd_action", "get_version"),
            ("products[b-plugin][version]", "1.0"),
            ("products[a-theme][version]", "2.0"),
            ("products[b-plugin][license]", "K"),
            ("url", "https://example.com"),
        ];
        assert_eq!(
            parse_edd_batch(pairs).unwrap(),
            vec![
                (
                    "b-plugin".to_owned(),
                    vec![
                        ("version".to_owned(), "1.0".to_owned()),
                        ("license".to_owned(), "K".to_owned())
                    ]
                ),
                (
                    "a-theme".to_owned(),
                    vec![("version".to_owned(), "2.0".to_owned())]
                ),
            ]
        );
        assert_eq!(parse_edd_batch([("url", "x")]).unwrap(), vec![]);
        assert_eq!(parse_edd_batch([("products_seen", "x")]).unwrap(), vec![]);
    }

    #[test]
    fn batches_refuse_odd_names_and_more_than_100_items() {
        for name in [
            "products",
            "products[a]",
            "products[a][]",
            "products[][v]",
            "products[a][v]x",
            "products[a][v][w]",
            "products[a]v]",
        ] {
            assert_eq!(
                parse_edd_batch([(name, "1")]),
                Err(BatchError::Malformed(name.to_owned())),
                "{name}"
            );
        }
        let names: Vec<String> = (0..=MAX_BATCH_ITEMS)
            .map(|i| format!("products[p{i}][version]"))
            .collect();
        let hundred = names[..MAX_BATCH_ITEMS].iter().map(|n| (n.as_str(), "1"));
        assert_eq!(parse_edd_batch(hundred).unwrap().len(), MAX_BATCH_ITEMS);
        let all = names.iter().map(|n| (n.as_str(), "1"));
        assert_eq!(parse_edd_batch(all), Err(BatchError::TooMany));
        // Many fields of 100 slugs are fine.
        let repeated = names[..MAX_BATCH_ITEMS]
            .iter()
            .chain(names[..MAX_BATCH_ITEMS].iter())
            .map(|n| (n.as_str(), "1"));
        assert_eq!(parse_edd_batch(repeated).unwrap().len(), MAX_BATCH_ITEMS);
    }
}
