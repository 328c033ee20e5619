//! A small JSON writer for the update-check answers (`render.rs`): objects of string,
//! boolean and nested-object fields written straight into one buffer, strings escaped
//! exactly as `serde_json` escapes them (so the bytes equal what `serde_json::to_vec`
//! wrote for the same document), eight bytes at a time where nothing needs escaping.
//!
//! Keys given as `&'static str` are our own field names, written as they are; in debug
//! builds an [`Obj`] asserts they come in strictly ascending order — the order the
//! answers have always had on the wire (`serde_json`'s `Map` is a `BTreeMap`).

/// Appends `text` as a JSON string: `"`, `\`, and the control characters below U+0020
/// escaped as `serde_json` does (`\b \t \n \f \r`, others `\u00xx` in lower-case hex);
/// everything else, non-ASCII and U+007F included, as it is.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    push_str_contents(out, text.as_bytes());
    out.push(b'"');
}

/// Whether `text` is written as it is inside a JSON string (nothing to escape): the
/// test [`push_str`] makes, word by word.
pub fn is_plain(text: &str) -> bool {
    let (mut words, rest) = crate::swar::words(text.as_bytes());
    !words.any(needs_escape) && !rest.iter().any(|&b| escaped(b))
}

/// Whether JSON escapes `byte`: below 0x20, a quote or a backslash.
fn escaped(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Whether any byte of `word` is [`escaped`].
fn needs_escape(word: u64) -> bool {
    use crate::swar::{has, has_below};
    has_below(word, 0x20) | has(word, b'"') | has(word, b'\\')
}

fn push_str_contents(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0; // the first byte not yet written
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                0x0c => b"\\f",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => &[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ],
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(escape);
            i += 1;
            start = i;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A JSON object being written into `out`: `{` on [`Obj::new`], `}` on [`Obj::end`].
pub struct Obj<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
    #[cfg(debug_assertions)]
    first_key: &'static str,
    #[cfg(debug_assertions)]
    last: &'static str,
}

impl<'o> Obj<'o> {
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj {
            out,
            first: true,
            #[cfg(debug_assertions)]
            first_key: "",
            #[cfg(debug_assertions)]
            last: "",
        }
    }

    /// Writes `,"key":` (no comma first) and returns the buffer for the value.
    pub fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        #[cfg(debug_assertions)]
        {
            assert!(
                self.first || key > self.last,
                "`{key}` after `{}`: keys must ascend",
                self.last
            );
            if self.first {
                self.first_key = key;
            }
            self.last = key;
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A string field.
    pub fn str(&mut self, key: &'static str, value: &str) {
        push_str(self.key(key), value);
    }

    /// A string field, left out when `None`.
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// A string field known to need no escaping when `plain` (a download link: see
    /// `Offer::link_plain`), left out when `None`.
    pub fn opt_link(&mut self, key: &'static str, value: Option<&str>, plain: bool) {
        match value {
            Some(value) if plain => {
                debug_assert!(is_plain(value), "{value:?} is not plain");
                let out = self.key(key);
                out.push(b'"');
                out.extend_from_slice(value.as_bytes());
                out.push(b'"');
            }
            value => self.opt_str(key, value),
        }
    }

    /// A boolean field.
    pub fn bool(&mut self, key: &'static str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    /// A field whose value is already JSON.
    pub fn raw(&mut self, key: &'static str, json: &[u8]) {
        self.key(key).extend_from_slice(json);
    }

    /// A nested object, written by `fill`.
    pub fn obj(&mut self, key: &'static str, fill: impl FnOnce(&mut Obj<'_>)) {
        let mut inner = Obj::new(self.key(key));
        fill(&mut inner);
        inner.end();
    }

    /// An object of `(key, value)` string pairs ordered by key, a key given twice keeping
    /// its last value: what collecting them into a `serde_json::Map` (a `BTreeMap`)
    /// wrote. The lists are a handful long (sections, icons, banners): each next key is
    /// found by a scan, nothing is allocated.
    pub fn sorted(&mut self, key: &'static str, pairs: &[(String, String)]) {
        let out = self.key(key);
        out.push(b'{');
        let mut last: Option<&str> = None;
        loop {
            let mut next: Option<&(String, String)> = None;
            for pair in pairs {
                let key = pair.0.as_str();
                if last.is_some_and(|last| key <= last) {
                    continue;
                }
                // `<=`: of equal keys, the later pair wins.
                if next.is_none_or(|next| key <= next.0.as_str()) {
                    next = Some(pair);
                }
            }
            let Some((key, value)) = next else { break };
            if last.is_some() {
                out.push(b',');
            }
            push_str(out, key);
            out.push(b':');
            push_str(out, value);
            last = Some(key);
        }
        out.push(b'}');
    }

    /// Fields written by `fill`, or, when `kept` holds them from an earlier answer, their
    /// bytes from then: fields that depend only on what `kept` belongs to (a version of
    /// a product), written once per dialect and copied after that. With no `kept`, `fill`
    /// writes into this object as any field would.
    pub fn kept(&mut self, kept: Option<&Kept>, fill: impl FnOnce(&mut Obj<'_>)) {
        let Some(kept) = kept else {
            fill(self);
            return;
        };
        let fields = kept.0.get_or_init(|| {
            let mut buf = Vec::new();
            let mut obj = Obj::new(&mut buf);
            fill(&mut obj);
            let keys = (!obj.first).then(|| obj.keys());
            obj.end();
            // The bytes between the braces.
            let inner = buf[1..buf.len() - 1].into();
            Fields { inner, keys }
        });
        let Some(_keys) = fields.keys else { return };
        #[cfg(debug_assertions)]
        {
            assert!(
                self.first || _keys.0 > self.last,
                "`{}` after `{}`: keys must ascend",
                _keys.0,
                self.last
            );
            self.last = _keys.1;
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(&fields.inner);
    }

    /// The first and last keys written (debug builds track them; release builds need
    /// them only to say the fields are not empty).
    fn keys(&self) -> (&'static str, &'static str) {
        #[cfg(debug_assertions)]
        return (self.first_key, self.last);
        #[cfg(not(debug_assertions))]
        ("", "")
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// Fields of a document kept once written ([`Obj::kept`]): empty until the first answer
/// that writes them.
#[derive(Debug, Clone, Default)]
pub struct Kept(std::sync::OnceLock<Fields>);

#[derive(Debug, Clone)]
struct Fields {
    /// `"a":…,"b":…`: the fields, without braces.
    inner: Box<[u8]>,
    /// The first and last keys; `None` when `fill` wrote nothing.
    keys: Option<(&'static str, &'static str)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(text: &str) -> String {
        let mut out = Vec::new();
        push_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_exactly_as_serde_json() {
        let mut all = String::new();
        for c in (0u32..0x300).filter_map(char::from_u32) {
            all.push(c);
        }
        let mut cases = vec![
            String::new(),
            all.clone(),
            "plain ascii, longer than eight bytes".to_owned(),
            "\"".to_owned(),
            "a\\b".to_owned(),
            "12345678\"".to_owned(),
            "1234567\u{1f}".to_owned(),
            "é\u{2028}🦀\u{7f}\u{0}".to_owned(),
            "<p>Line\none</p>\r\n\t".to_owned(),
        ];
        // Every special byte at every offset of a 17-byte string.
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '~', '\u{7f}'] {
            for at in 0..17 {
                let mut s: String = "abcdefghijklmnopq".into();
                s.replace_range(at..=at, &special.to_string());
                cases.push(s);
            }
        }
        for case in &cases {
            assert_eq!(ours(case), serde_json::to_string(case).unwrap(), "{case:?}");
            // Plain exactly when the escaped string is the text between quotes.
            assert_eq!(
                is_plain(case),
                ours(case) == format!("\"{case}\""),
                "{case:?}"
            );
        }
    }

    #[test]
    fn objects_write_fields_and_sorted_maps() {
        let mut out = Vec::new();
        let mut obj = Obj::new(&mut out);
        obj.bool("a", true);
        obj.opt_str("b", None);
        obj.opt_str("c", Some("x"));
        obj.obj("d", |inner| inner.bool("valid", false));
        let pairs = [("z", "1"), ("a\"", "2"), ("m", "3"), ("a\"", "4")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        obj.sorted("e", &pairs);
        obj.sorted("f", &[]);
        obj.raw("g", b"[1]");
        obj.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":true,"c":"x","d":{"valid":false},"e":{"a\"":"4","m":"3","z":"1"},"f":{},"g":[1]}"#
        );
    }

    #[test]
    fn kept_fields_are_written_once_and_copied_after() {
        let kept = Kept::default();
        let empty = Kept::default();
        let calls = std::cell::Cell::new(0);
        let render = |value: &str, kept: Option<&Kept>| {
            let mut out = Vec::new();
            let mut obj = Obj::new(&mut out);
            obj.str("a", value);
            obj.kept(kept, |o| {
                calls.set(calls.get() + 1);
                o.str("b", value);
                o.bool("c", true);
            });
            obj.kept(Some(&empty), |_| {});
            obj.str("d", value);
            obj.end();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(render("1", None), r#"{"a":"1","b":"1","c":true,"d":"1"}"#);
        assert_eq!(
            render("2", Some(&kept)),
            r#"{"a":"2","b":"2","c":true,"d":"2"}"#
        );
        // The kept fields are those of the first answer that wrote them.
        assert_eq!(
            render("3", Some(&kept)),
            r#"{"a":"3","b":"2","c":true,"d":"3"}"#
        );
        // Written twice: without `kept`, and the first time with it (the empty fields
        // are kept empty).
        assert_eq!(calls.get(), 2);
        // Kept fields first in an object: no leading comma.
        let mut out = Vec::new();
        let mut obj = Obj::new(&mut out);
        obj.kept(Some(&kept), |_| unreachable!());
        obj.end();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"b":"2","c":true}"#);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "keys must ascend")]
    fn keys_out_of_order_are_caught_in_debug_builds() {
        let mut out = Vec::new();
        let mut obj = Obj::new(&mut out);
        obj.bool("b", true);
        obj.bool("a", true);
    }
}
