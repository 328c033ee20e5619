//! Operational endpoints: `/healthz`, `/metrics`, `/openapi.json`.

use crate::app::App;
use crate::auth::Need;
use crate::error::Error;
use crate::http::dto::Health;
use crate::http::route::{Family, Handler, Row};
use crate::http::{Body, response};
use crate::metrics::Gauges;
use http::{Method, Response, StatusCode};

/// The operational routes.
pub static ROWS: &[Row] = &[
    Row::new(
        Family::Operations,
        Method::GET,
        "health",
        "/healthz",
        Need::Public,
        Handler::Read(|app, _| health(app)),
    ),
    Row::new(
        Family::Operations,
        Method::GET,
        "metrics",
        "/metrics",
        Need::Operator { write: false },
        Handler::Read(|app, _| metrics(app)),
    ),
    Row::new(
        Family::Operations,
        Method::GET,
        "openapi",
        "/openapi.json",
        Need::Public,
        Handler::Read(|_, _| openapi()),
    ),
];

/// `GET /healthz`: no auth. `200 {"status":"ok"}` when the store answers a read; `503`
/// otherwise.
fn health(app: &App) -> Result<Response<Body>, Error> {
    app.store.check()?;
    Ok(response::json(StatusCode::OK, &Health { status: "ok" }))
}

/// `GET /metrics`: Prometheus text. Needs an operator token (read-only is enough).
fn metrics(app: &App) -> Result<Response<Body>, Error> {
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

/// `GET /openapi.json`: no auth.
fn openapi() -> Result<Response<Body>, Error> {
    Ok(response::text(
        StatusCode::OK,
        "application/json",
        crate::http::openapi::document(),
    ))
}
