//! Reading requests: the size-limited body, and JSON decoding that names the failing field.
//!
//! SPEC §3: a body whose first non-blank byte is `{` or `[` is JSON whatever its
//! Content-Type says (curl `-d` labels JSON as form data). On `/api/v1` any other body is
//! read as `application/x-www-form-urlencoded`, whatever its label (a blank body so is no
//! fields, even labelled JSON); elsewhere it is a 400.

use crate::error::Error;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

/// A request whose body has been read.
#[derive(Debug)]
pub struct Input {
    pub parts: http::request::Parts,
    pub body: Bytes,
}

/// Reads the whole body, refusing more than `limit` bytes (by `Content-Length` before
/// reading, and by counting while reading for chunked bodies).
///
/// # Errors
/// `PayloadTooLarge`, or `InvalidRequest` when the body cannot be read.
pub async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, Error>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    check_length(headers, limit as u64)?;
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(Error::PayloadTooLarge { limit }),
        Err(err) => Err(Error::InvalidRequest(format!(
            "could not read the request body: {err}"
        ))),
    }
}

/// Refuses a body whose `Content-Length` is over `limit` before a byte of it is read.
///
/// # Errors
/// `PayloadTooLarge`, or `InvalidRequest` for a `Content-Length` that is not a number.
pub fn check_length(headers: &HeaderMap, limit: u64) -> Result<(), Error> {
    if let Some(length) = headers.get(http::header::CONTENT_LENGTH) {
        let length: u64 = length
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| Error::invalid("content-length", "not a number"))?;
        if length > limit {
            return Err(Error::PayloadTooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            });
        }
    }
    Ok(())
}

/// Whether `body` is JSON by SPEC §3's rule (first non-blank byte `{` or `[`).
pub fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// Decodes a JSON body into `T`.
///
/// # Errors
/// `InvalidRequest` naming the field and the reason (`expires: invalid type: string "x",
/// expected i64`), also for a body that is not JSON.
pub fn json<T: DeserializeOwned>(input: &Input) -> Result<T, Error> {
    let body = &input.body;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::InvalidRequest(
            "request body is required: a JSON object".to_owned(),
        ));
    }
    if !looks_like_json(body) {
        return Err(Error::InvalidRequest(
            "request body must be a JSON object (whatever its Content-Type)".to_owned(),
        ));
    }
    // serde would read a JSON array positionally into a struct (`["x"]` as `{"name":"x"}`):
    // every body we take is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::InvalidRequest(
            "request body must be a JSON object, not an array".to_owned(),
        ));
    }
    decode_json(body)
}

/// Decodes a body that may be JSON or `application/x-www-form-urlencoded` (the
/// UpdaterCloud family). An empty body decodes as `{}`. Form fields become JSON strings;
/// a repeated field (or `field[]`) becomes a list.
///
/// The label does not decide (SPEC §3): a blank body labelled `application/json` is no
/// fields too, as a client that labels every request JSON sends for an optional body.
///
/// # Errors
/// As [`json`], with form fields named the same way.
pub fn json_or_form<T: DeserializeOwned>(input: &Input) -> Result<T, Error> {
    let body = &input.body;
    if body.iter().all(u8::is_ascii_whitespace) {
        return decode_json(b"{}");
    }
    if looks_like_json(body) {
        return json(input);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::InvalidRequest("form body is not valid UTF-8".to_owned()))?;
    let object = form_object(text);
    serde_path_to_error::deserialize(serde_json::Value::Object(object)).map_err(|err| {
        let path = err.path().to_string();
        Error::InvalidRequest(format!("{path}: {}", err.into_inner()))
    })
}

/// A struct read from a JSON object only. serde lets a struct be read from an array by
/// position (`[null, null]` as `{"low": null, "high": null}`), which no schema of ours
/// allows: wrap a nested struct field in `Object` (the top-level body goes through
/// [`decode_json`], which does the same) and an array there is a 400. Wrap the struct
/// itself (`Option<Object<S>>`, `Vec<Object<S>>`): the check reaches one level only.
#[derive(Debug, Clone, Default)]
pub struct Object<T>(pub T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(d)).map(Object)
    }
}

/// A deserializer that reads a struct only from a map ([`Object`]).
struct MapOnly<D>(D);

impl<'de, D: serde::Deserializer<'de>> serde::Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_seq<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_seq(visitor)
    }

    fn deserialize_map<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_option(visitor)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    // The rest read the same through `deserialize_any` in serde_json; a body never
    // starts with one of them.
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

/// `a=1&b=2&b=3&c[]=4` → `{"a":"1","b":["2","3"],"c":["4"]}`.
fn form_object(text: &str) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut object = serde_json::Map::new();
    for pair in text.trim().split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_decode(key);
        let (key, listed) = match key.strip_suffix("[]") {
            Some(bare) => (bare.to_owned(), true),
            None => (key, false),
        };
        let value = Value::String(form_decode(value));
        match object.get_mut(&key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None if listed => {
                object.insert(key, Value::Array(vec![value]));
            }
            None => {
                object.insert(key, value);
            }
        }
    }
    object
}

/// Decodes JSON bytes into `T`, with the failing field's path in the error.
///
/// # Errors
/// `InvalidRequest`.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(MapOnly(&mut deserializer)).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            Error::InvalidRequest(format!("malformed JSON: {inner}"))
        } else if path == "." && body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            Error::InvalidRequest("request body must be a JSON object, not an array".to_owned())
        } else if path == "." {
            Error::InvalidRequest(format!("request body: {inner}"))
        } else {
            Error::InvalidRequest(format!("{path}: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|err| Error::InvalidRequest(format!("malformed JSON: {err}")))?;
    Ok(value)
}

/// Page size when `limit` is not given, and the largest one accepted.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// `?limit=N&cursor=C` of a list request. The cursor is opaque to clients: what the
/// previous page's `next_cursor` gave (see `store::Cursor`: versioned, in domain terms).
///
/// # Errors
/// `InvalidRequest` for a limit outside 1–1000 or a cursor this API did not make.
pub fn paging(query: Option<&str>) -> Result<crate::store::PageRequest, Error> {
    let limit = match query_param(query, "limit") {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(Error::invalid(
                    "limit",
                    format!("must be a number from 1 to {MAX_PAGE}"),
                ));
            }
        },
    };
    let after = match query_param(query, "cursor") {
        None => None,
        Some(text) if text.is_empty() => None,
        Some(text) => Some(
            crate::store::Cursor::parse(&text)
                .map_err(|why| Error::invalid("cursor", format!("{why} (use next_cursor)")))?,
        ),
    };
    Ok(crate::store::PageRequest { after, limit })
}

/// The `next_cursor` of a page.
pub fn cursor(next: Option<&str>) -> Option<String> {
    next.map(str::to_owned)
}

/// The value of query parameter `name` (the first, `+` and `%XX` decoded).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| form_decode(value))
}

/// `application/x-www-form-urlencoded` decoding of one value; invalid escapes are kept
/// literally, invalid UTF-8 is replaced.
pub fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(byte) = decoded {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        expires: Option<i64>,
    }

    fn input(content_type: Option<&str>, body: &str) -> Input {
        let mut builder = http::Request::builder();
        if let Some(kind) = content_type {
            builder = builder.header("content-type", kind);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        Input {
            parts,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
        match result.unwrap_err() {
            Error::InvalidRequest(message) => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_is_recognised_whatever_the_content_type() {
        let form = input(
            Some("application/x-www-form-urlencoded"),
            " {\"name\":\"a\"}",
        );
        assert_eq!(json::<Sample>(&form).unwrap().name, "a");
        assert_eq!(
            json::<Sample>(&input(None, "{\"name\":\"a\"}"))
                .unwrap()
                .name,
            "a"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let msg = message(json::<Sample>(&input(
            None,
            r#"{"name":"a","expires":"soon"}"#,
        )));
        assert!(msg.starts_with("expires: invalid type: string"), "{msg}");
        let msg = message(json::<Sample>(&input(None, r#"{"name":"a","expire":1}"#)));
        assert!(msg.contains("unknown field `expire`"), "{msg}");
        let msg = message(json::<Sample>(&input(None, r#"{"expires":1}"#)));
        assert!(msg.contains("missing field `name`"), "{msg}");
        let msg = message(json::<Sample>(&input(None, r#"{"name":"a""#)));
        assert!(msg.starts_with("malformed JSON"), "{msg}");
        let msg = message(json::<Sample>(&input(None, r#"{"name":"a"} x"#)));
        assert!(msg.starts_with("malformed JSON"), "{msg}");
    }

    #[test]
    fn non_json_bodies_are_400() {
        assert!(matches!(
            json::<Sample>(&input(None, "")),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            json::<Sample>(&input(None, "name=a")),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            json::<Sample>(&input(Some("text/xml"), "<a/>")),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn form_bodies_become_objects() {
        let object = form_object("name=ci+bot&scopes=api&scopes=read_user&x[]=1&empty=");
        assert_eq!(
            serde_json::Value::Object(object),
            serde_json::json!({"name": "ci bot", "scopes": ["api", "read_user"], "x": ["1"], "empty": ""})
        );
        let form = input(
            Some("application/x-www-form-urlencoded"),
            "name=a&expires=9",
        );
        let msg = message(json_or_form::<Sample>(&form));
        assert!(msg.starts_with("expires: invalid type: string"), "{msg}");
        let sample: Sample = json_or_form(&input(None, "name=a")).unwrap();
        assert_eq!(sample.name, "a");
        // Whatever the label, /api/v1 reads a non-JSON body as a form (SPEC §3).
        let labelled: Sample = json_or_form(&input(Some("text/plain"), "name=a")).unwrap();
        assert_eq!(labelled.name, "a");
    }

    #[test]
    fn the_label_does_not_decide() {
        type Object = serde_json::Map<String, serde_json::Value>;
        // SPEC §3: on /api/v1 a body that is not JSON is a form whatever its label, so a
        // blank one is no fields (a client that labels every request JSON sends that for
        // an optional body), and form data labelled JSON is read as a form.
        for label in [
            None,
            Some("application/x-www-form-urlencoded"),
            Some("application/json"),
        ] {
            for blank in ["", "\r", " \n"] {
                let object: Object = json_or_form(&input(label, blank)).unwrap();
                assert!(object.is_empty(), "{label:?} {blank:?}");
            }
            let sample: Sample = json_or_form(&input(label, "name=a")).unwrap();
            assert_eq!(sample.name, "a", "{label:?}");
        }
    }

    #[test]
    fn paging_reads_limit_and_cursor() {
        // base64url of `v1:abcd`.
        let page = paging(Some("limit=5&cursor=djE6YWJjZA")).unwrap();
        assert_eq!((page.limit, page.after.as_deref()), (5, Some("djE6YWJjZA")));
        assert_eq!(paging(None).unwrap().limit, DEFAULT_PAGE);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "cursor=zz",
            "cursor=abc",
            "cursor=61626364",
        ] {
            assert!(paging(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(cursor(Some("djE6YWJjZA")).as_deref(), Some("djE6YWJjZA"));
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&name=my+token%21"), "name").as_deref(),
            Some("my token!")
        );
        assert_eq!(query_param(Some("name"), "name").as_deref(), Some(""));
        assert_eq!(query_param(Some("x=1"), "name"), None);
        assert_eq!(query_param(None, "name"), None);
        assert_eq!(form_decode("100%"), "100%");
    }
}
