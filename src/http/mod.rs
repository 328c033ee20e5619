//! The HTTP edge: routing, request decoding, response encoding and wire shapes. Handlers
//! receive typed routes and decoded bodies from here and never parse strings themselves.

pub mod dto;
pub mod openapi;
pub mod request;
pub mod response;
pub mod route;

/// Every response body: the whole JSON document, already rendered.
pub type Body = http_body_util::Full<bytes::Bytes>;
