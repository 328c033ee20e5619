//! The HTTP edge: routing, request decoding, response encoding and wire shapes. Handlers
//! receive typed routes and decoded bodies from here and never parse strings themselves.

pub mod auth;
pub mod body;
pub mod dto;
pub mod request;
pub mod response;
pub mod route;
pub mod service;
pub mod upload;

pub use body::Body;
