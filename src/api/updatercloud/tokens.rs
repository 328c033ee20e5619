//! `/api/v1/me` and `/api/v1/tokens…`: the profile and personal access tokens.

use crate::api::account_of;
use crate::app::App;
use crate::error::Error;
use crate::http::auth::Caller;
use crate::http::dto::{CreateToken, Data, ListData, MeView, RotateToken, TokenView};
use crate::http::request::{self, Input};
use crate::http::{Body, response};
use crate::model::{Scopes, Timestamp};
use crate::service;
use http::{Response, StatusCode};
use std::time::Duration;

/// `GET /api/v1/me`: `{"name","email","account"}`. Needs `read_user`.
pub(super) fn me(app: &App, caller: &Caller) -> Result<Response<Body>, Error> {
    let prefix = account_of(caller)?;
    let account = service::accounts::get(&app.store, &prefix)?;
    Ok(response::json(
        StatusCode::OK,
        &MeView {
            name: account.name,
            email: account.email,
            account: account.prefix.to_string(),
        },
    ))
}

/// `GET /api/v1/tokens[?limit=&cursor=]`: `{"data":[…],"next_cursor"}`, secrets never
/// included. Needs `api`.
pub(super) fn list(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let page = crate::api::own_tokens_page(app, caller, input, now)?;
    let data = page
        .items
        .iter()
        .map(|t| TokenView::new(t, now, None))
        .collect();
    let next_cursor = request::cursor(page.next.as_deref());
    Ok(response::json(
        StatusCode::OK,
        &ListData { data, next_cursor },
    ))
}

/// A duration like `90d` or `1h`.
fn duration(field: &str, text: &str) -> Result<Duration, Error> {
    humantime::parse_duration(text.trim()).map_err(|err| {
        Error::invalid(
            field,
            format!("`{text}` is not a duration like 90d or 12h ({err})"),
        )
    })
}

fn expiry(body: &CreateToken, now: Timestamp) -> Result<Option<Timestamp>, Error> {
    match (&body.expires_in, &body.expires_at) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "expires_in",
            "give expires_in or expires_at, not both",
        )),
        (Some(lifetime), None) => {
            let lifetime = duration("expires_in", lifetime)?;
            if lifetime.is_zero() {
                return Err(Error::invalid("expires_in", "must be longer than 0s"));
            }
            Ok(Some(now.saturating_add(lifetime)))
        }
        (None, Some(at)) => {
            let at = Timestamp::parse_rfc3339(at).map_err(|err| {
                Error::invalid(
                    "expires_at",
                    format!("`{at}` is not an RFC 3339 time like 2027-01-31T12:00:00Z ({err})"),
                )
            })?;
            if at <= now {
                return Err(Error::invalid("expires_at", "must be in the future"));
            }
            Ok(Some(at))
        }
        (None, None) => Ok(None),
    }
}

/// `POST /api/v1/tokens` `{"name","scopes",("expires_in"|"expires_at")?}`, JSON or form:
/// `201 {"data":{…,"token":"upk_at_…"}}`, the secret shown once. Needs `api`; a token
/// cannot grant a scope it does not hold (`403`), nor outlive the caller (its expiry is
/// capped at the caller's). `409` for a duplicate name.
pub(super) async fn create(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let prefix = account_of(caller)?;
    let body: CreateToken = request::json_or_form(input)?;
    let scopes = Scopes::parse_all(body.scopes.iter().map(String::as_str))
        .map_err(|reason| Error::invalid("scopes", reason))?;
    let expires_at = expiry(&body, now)?;
    let new = service::tokens::NewToken {
        owner: service::tokens::Owner::Account(prefix),
        expires_field: if body.expires_in.is_some() {
            "expires_in"
        } else {
            "expires_at"
        },
        name: body.name,
        scopes,
        expires_at,
    };
    let created = app
        .write(caller, now, move |ctx| service::tokens::create(ctx, new))
        .await?;
    let view = TokenView::new(&created.token, now, Some(created.secret));
    Ok(response::json(StatusCode::CREATED, &Data { data: view }))
}

/// `DELETE /api/v1/tokens/{name}`: `204`. Needs `api`; `404` for a name the account does
/// not have.
pub(super) async fn delete(
    app: &App,
    caller: &Caller,
    name: &str,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    crate::api::delete_own_token(app, caller, name, now).await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

/// `POST /api/v1/tokens/self/rotate` `{"grace"?: "1h"}`: gives the calling token a new
/// secret (`201`, shown once). With `grace`, the old secret keeps working that long;
/// without, it stops at once. Any account token may rotate itself; a previous secret
/// still in its grace may not (`403`).
pub(super) async fn rotate(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    account_of(caller)?;
    let body: RotateToken = request::json_or_form(input)?;
    let grace = body
        .grace
        .as_deref()
        .map(|text| duration("grace", text))
        .transpose()?;
    let token = caller.token_hash;
    let rotated = app
        .write(caller, now, move |ctx| {
            service::tokens::rotate_own(ctx, &token, grace)
        })
        .await?;
    let view = TokenView::new(&rotated.token, now, Some(rotated.secret));
    Ok(response::json(StatusCode::CREATED, &Data { data: view }))
}
