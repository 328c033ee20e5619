//! Building responses: JSON documents and the SPEC §3 error envelope.

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
