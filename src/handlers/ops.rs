//! Operational endpoints.

use crate::app::App;
use crate::error::Error;
use crate::http::dto::Health;
use crate::http::{Body, response};
use http::{Response, StatusCode};

/// `GET /healthz`: no auth. `200 {"status":"ok"}` when the store answers a read; `503`
/// otherwise.
pub(super) fn health(app: &App) -> Result<Response<Body>, Error> {
    app.store.check()?;
    Ok(response::json(StatusCode::OK, &Health { status: "ok" }))
}
