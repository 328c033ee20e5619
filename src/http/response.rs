//! Building responses: JSON documents, files (with `Range`), and the SPEC §3 error
//! envelope (the public dialects' own refusal shapes are their modules').

use super::Body;
use crate::error::Error;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A JSON response. Serializing our own view types cannot fail; if it ever does, the
/// client gets a 500 rather than a panic.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_body(status, Bytes::from(bytes)),
        Err(err) => {
            tracing::error!(error = %err, "response serialization failed");
            with_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(
                    br#"{"status":500,"error":"internal","message":"internal error"}"#,
                ),
            )
        }
    }
}

/// A JSON response whose body is already serialized.
pub fn json_bytes(status: StatusCode, bytes: Bytes) -> Response<Body> {
    with_body(status, bytes)
}

/// A response with a ready-made body of `content_type`.
pub fn text(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut res = Response::new(Body::new(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// `204 No Content`.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::default());
    *res.status_mut() = status;
    res
}

/// What a file response says about its file.
#[derive(Debug, Clone, Copy)]
pub struct FileMeta<'a> {
    pub path: &'a std::path::Path,
    pub len: u64,
    pub content_type: &'a str,
    /// The content hash, sent as a strong `ETag` and compared with `If-Range`.
    pub etag: &'a str,
    /// `Content-Disposition: attachment; filename="…"` when given.
    pub filename: Option<&'a str>,
}

/// Streams a file (SPEC §8.4): `Content-Length`, `ETag`, `Accept-Ranges: bytes`; one
/// `Range` gets `206` with `Content-Range` (unless `If-Range` names another version), an
/// unsatisfiable one `416`. Never reads the file whole into memory. `HEAD` works: the
/// pipeline drops the body and keeps these headers.
///
/// # Errors
/// `NotFound` when the blob is gone (its file deleted after the record was read: the
/// delete removes the blob at once); `Internal` when it cannot be opened otherwise.
pub async fn file(meta: FileMeta<'_>, request: &http::HeaderMap) -> Result<Response<Body>, Error> {
    use crate::http::body::{self, Range};
    let etag = format!("\"{}\"", meta.etag);
    let if_range_matches = request
        .get(header::IF_RANGE)
        .is_none_or(|value| value.as_bytes() == etag.as_bytes());
    let range = if if_range_matches {
        Range::parse(
            request.get(header::RANGE).and_then(|v| v.to_str().ok()),
            meta.len,
        )
    } else {
        Range::Whole
    };
    let (status, start, len) = match range {
        Range::Whole => (StatusCode::OK, 0, meta.len),
        Range::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Range::Unsatisfiable => {
            let mut res = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", meta.len)) {
                res.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(res);
        }
    };
    let file = body::open(meta.path).await.map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound("the file was deleted".to_owned())
        } else {
            Error::Internal(Box::new(err))
        }
    })?;
    let mut res = Response::new(Body::file(file, start, len));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(meta.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{}", start + len - 1, meta.len))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if let Some(name) = meta.filename {
        // Our own file names; quotes and controls are dropped rather than escaped.
        let safe: String = name
            .chars()
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
            .collect();
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(res)
}

fn with_body(status: StatusCode, bytes: Bytes) -> Response<Body> {
    let mut res = Response::new(Body::new(bytes));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, JSON);
    res
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    error: &'a str,
    message: String,
}

/// `{"status": <code>, "error": "<code>", "message": "…"}` plus the headers the error
/// implies (`WWW-Authenticate`, `Allow`, `Retry-After`).
pub fn error(err: &Error, request_id: &str) -> Response<Body> {
    let status = err.status();
    let body = ErrorBody {
        status: status.as_u16(),
        error: err.code(),
        message: err.public_message(request_id),
    };
    let mut res = json(status, &body);
    let headers = res.headers_mut();
    match err {
        Error::Unauthenticated => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::MethodNotAllowed(allowed) => {
            if let Ok(value) = HeaderValue::from_str(&allowed.header_value()) {
                headers.insert(header::ALLOW, value);
            }
        }
        Error::TooManyRequests { retry_after } => {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        _ => {}
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn fetch(path: &std::path::Path, headers: &[(&str, &str)]) -> (Response<()>, Vec<u8>) {
        let mut request = http::HeaderMap::new();
        for (name, value) in headers {
            request.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let meta = FileMeta {
            path,
            len: 1000,
            content_type: "application/zip",
            etag: "abc",
            filename: Some("seo\"\n.zip"),
        };
        let res = file(meta, &request).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (Response::from_parts(parts, ()), bytes)
    }

    #[tokio::test]
    async fn files_are_served_whole_or_by_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let content: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let header = |res: &Response<()>, name: header::HeaderName| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };

        let (res, body) = fetch(&path, &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body, content);
        assert_eq!(
            header(&res, header::CONTENT_LENGTH).as_deref(),
            Some("1000")
        );
        assert_eq!(header(&res, header::ETAG).as_deref(), Some("\"abc\""));
        assert_eq!(
            header(&res, header::ACCEPT_RANGES).as_deref(),
            Some("bytes")
        );
        assert_eq!(
            header(&res, header::CONTENT_DISPOSITION).as_deref(),
            Some("attachment; filename=\"seo.zip\"")
        );

        let (res, body) = fetch(&path, &[("range", "bytes=10-19")]).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(body, &content[10..20]);
        assert_eq!(
            header(&res, header::CONTENT_RANGE).as_deref(),
            Some("bytes 10-19/1000")
        );
        assert_eq!(header(&res, header::CONTENT_LENGTH).as_deref(), Some("10"));

        let (res, body) = fetch(&path, &[("range", "bytes=-5")]).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(body, &content[995..]);

        let (res, body) = fetch(&path, &[("range", "bytes=1000-")]).await;
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert!(body.is_empty());
        assert_eq!(
            header(&res, header::CONTENT_RANGE).as_deref(),
            Some("bytes */1000")
        );

        // If-Range naming another version: the whole (new) file.
        let (res, body) = fetch(&path, &[("range", "bytes=0-9"), ("if-range", "\"old\"")]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body.len(), 1000);
        let (res, _) = fetch(&path, &[("range", "bytes=0-9"), ("if-range", "\"abc\"")]).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    }
}
