//! Operational endpoints.

use crate::app::App;
use crate::error::Error;
use crate::http::dto::Health;
use crate::http::{Body, response};
use crate::metrics::Gauges;
use http::{Response, StatusCode};

/// `GET /healthz`: no auth. `200 {"status":"ok"}` when the store answers a read; `503`
/// otherwise.
pub(super) fn health(app: &App) -> Result<Response<Body>, Error> {
    app.store.check()?;
    Ok(response::json(StatusCode::OK, &Health { status: "ok" }))
}

/// `GET /metrics`: Prometheus text. Needs an operator token (read-only is enough).
pub(super) fn metrics(app: &App) -> Result<Response<Body>, Error> {
    let gauges = Gauges {
        tokens: app.store.index().len() as u64,
        accounts: app.store.account_count(),
        store_size_bytes: app.store.size_on_disk()?,
        flushes: app.store.flush_count(),
    };
    let text = app.metrics.render(&gauges);
    Ok(response::text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        text.into(),
    ))
}

/// The OpenAPI 3.1 description of every route (kept in `src/http/openapi.json`).
pub const OPENAPI: &str = include_str!("../http/openapi.json");

/// `GET /openapi.json`: no auth.
pub(super) fn openapi() -> Result<Response<Body>, Error> {
    Ok(response::text(
        StatusCode::OK,
        "application/json",
        bytes::Bytes::from_static(OPENAPI.as_bytes()),
    ))
}
