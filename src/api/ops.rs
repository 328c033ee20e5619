//! Operational endpoints: the landing `/`, `/healthz`, `/metrics`, `/openapi.json`.

use crate::app::App;
use crate::error::Error;
use crate::http::auth::Need;
use crate::http::dto::{Health, Landing, LandingLinks};
use crate::http::request::Input;
use crate::http::route::{Family, Handler, Row};
use crate::http::{Body, response};
use crate::metrics::Gauges;
use http::{Method, Response, StatusCode};

/// The operational routes.
pub static ROWS: &[Row] = &[
    // SPEC §8.2: EDD (`edd_action`) and wp-update-server (`action=…`) requests at `/` are
    // answered for the default account before the landing (`api::public`).
    Row::new(
        Family::Operations,
        Method::GET,
        "landing",
        "/",
        Need::Public,
        Handler::Write(|app, call| Box::pin(root(app, call))),
    ),
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

/// `GET /`: EDD and wp-update-server requests for the default account, else the landing.
async fn root(app: &App, call: crate::http::route::Call) -> Result<Response<Body>, Error> {
    // SPEC §8.2's order: `edd_action`, then `action=get_metadata|download`, then the landing.
    if let Some(answer) = crate::api::public::root_get(app, &call) {
        return answer.await;
    }
    if crate::api::public::asks_download(&call) {
        return crate::api::public::root_download(app, call).await;
    }
    landing(&call.input)
}

/// `GET /healthz`: no auth. `200 {"status":"ok"}` when the store answers a read; `503`
/// otherwise.
fn health(app: &App) -> Result<Response<Body>, Error> {
    app.store.check()?;
    Ok(response::json(
        StatusCode::OK,
        &Health {
            status: "ok",
            version: VERSION,
            revision: REVISION,
        },
    ))
}

/// The package version.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision the binary was built from (`src/build.rs`).
const REVISION: &str = env!("UPKEEP_GIT_REVISION");

/// `GET /`: no auth. JSON naming `/healthz` and `/openapi.json`, or, for a browser
/// (`Accept` preferring `text/html`), the same as a small HTML page.
fn landing(input: &Input) -> Result<Response<Body>, Error> {
    if wants_html(&input.parts.headers) {
        let page = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>upkeep</title></head><body>\n<h1>upkeep</h1>\n\
             <p>Update, license and API-token server, version {VERSION} ({REVISION}).</p>\n\
             <ul>\n<li><a href=\"/healthz\">/healthz</a>: health, version</li>\n\
             <li><a href=\"/openapi.json\">/openapi.json</a>: the API (OpenAPI 3.1)</li>\n\
             </ul>\n</body></html>\n"
        );
        return Ok(response::text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            page.into(),
        ));
    }
    Ok(response::json(
        StatusCode::OK,
        &Landing {
            name: "upkeep",
            version: VERSION,
            revision: REVISION,
            links: LandingLinks {
                health: "/healthz",
                openapi: "/openapi.json",
            },
        },
    ))
}

/// Whether `Accept` asks for HTML before JSON (a browser's `text/html,…,*/*;q=0.8`).
fn wants_html(headers: &http::HeaderMap) -> bool {
    let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let quality = |wanted: &str| -> f32 {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let media = parts.next()?.trim();
                if !media.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some(q)
            })
            .fold(0.0, f32::max)
    };
    let html = quality("text/html");
    html > 0.0 && html >= quality("application/json")
}

/// `GET /metrics`: Prometheus text. Needs an operator token (read-only is enough).
fn metrics(app: &App) -> Result<Response<Body>, Error> {
    let gauges = Gauges {
        tokens: app.store.index().len() as u64,
        accounts: app.store.account_count(),
        store_size_bytes: app.store.size_on_disk()?,
        flushes: app.store.flush_count(),
    };
    let mut text = app.metrics.render(&gauges);
    app.metrics.render_uploads(&mut text);
    {
        use std::fmt::Write;
        let (checks, downloads) = app.public.counts.totals();
        let _ = writeln!(
            text,
            "# HELP upkeep_update_checks_total Update checks answered for a known product (every dialect)."
        );
        let _ = writeln!(text, "# TYPE upkeep_update_checks_total counter");
        let _ = writeln!(text, "upkeep_update_checks_total {checks}");
        let _ = writeln!(
            text,
            "# HELP upkeep_downloads_total Files streamed to sites through signed or legacy download links."
        );
        let _ = writeln!(text, "# TYPE upkeep_downloads_total counter");
        let _ = writeln!(text, "upkeep_downloads_total {downloads}");
        let blobs = app.store.blobs_stored();
        let _ = writeln!(
            text,
            "# HELP upkeep_blobs Distinct file contents stored (deduplicated)."
        );
        let _ = writeln!(text, "# TYPE upkeep_blobs gauge");
        let _ = writeln!(text, "upkeep_blobs {blobs}");
    }
    app.public.counts.render_licensing(&mut text);
    crate::telemetry::render_metrics(&mut text);
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
        crate::api::openapi::document(),
    ))
}
