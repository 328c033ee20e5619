//! `/_/license`: plan licenses.

use super::*;
use crate::app::App;
use crate::error::Error;
use crate::http::Body;
use crate::http::auth::Caller;
use crate::http::dto::{IssueLicense, LicenseAdminView, LicenseIdBody};
use crate::http::request::Input;
use crate::model::{LicenseId, Timestamp};
use crate::service;
use http::{Response, StatusCode};

/// `GET /_/license[?limit=&cursor=]`: a page of plan licenses (never their keys).
pub(super) fn list_licenses(
    app: &App,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let page = service::plan_licenses::page(
        &app.ctx(None, now),
        &request::paging(input.parts.uri.query())?,
    )?;
    let views = page
        .items
        .iter()
        .map(|l| LicenseAdminView::new(l, now, None))
        .collect();
    Ok(list(views, page.next.as_deref()))
}

/// `POST /_/license` `{"limit","expiration_date"?}`: `201` with the key (shown once).
pub(super) async fn issue_license(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: IssueLicense = request::json(input)?;
    if body.limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1"));
    }
    let expires_at = future("expiration_date", body.expiration_date, now)?;
    let issued = app
        .write(caller, now, move |ctx| {
            service::plan_licenses::issue(ctx, body.limit, expires_at, "expiration_date")
        })
        .await?;
    let view = LicenseAdminView::new(&issued.license, now, Some(issued.key));
    Ok(data(StatusCode::CREATED, vec![view]))
}

/// `DELETE /_/license` `{"id"}`: revokes it; the account using it falls back to the
/// default limit. `404` unknown.
pub(super) async fn revoke_license(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: LicenseIdBody = request::json(input)?;
    let license = app
        .write(caller, now, move |ctx| {
            service::plan_licenses::revoke(ctx, LicenseId(body.id))
        })
        .await?;
    Ok(data(
        StatusCode::OK,
        vec![LicenseAdminView::new(&license, now, None)],
    ))
}
