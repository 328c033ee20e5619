//! `/_/token…`: operator tokens and their values.

use super::*;
use crate::app::App;
use crate::error::Error;
use crate::http::Body;
use crate::http::auth::Caller;
use crate::http::dto::{
    CreateOperatorToken, OperatorTokenName as NameBody, OperatorTokenView, TokenValue,
    UpdateOperatorToken,
};
use crate::http::request::Input;
use crate::model::{Scopes, Timestamp, TokenChanges};
use crate::service;
use http::{Response, StatusCode};

/// `GET /_/token[?limit=&cursor=]`: a page of operator tokens (never their values).
pub(super) fn list_tokens(
    app: &App,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let page = service::tokens::page(
        &app.ctx(None, now),
        None,
        &request::paging(input.parts.uri.query())?,
    )?;
    let views = page
        .items
        .iter()
        .map(|t| OperatorTokenView::new(t, now, None))
        .collect();
    Ok(list(views, page.next.as_deref()))
}

/// `POST /_/token` `{"name","expiration_date"?,"active"?=true,"write"?=true}`:
/// `201 {"data":[{…,"token":"upk_ot_…"}]}`. `409` duplicate; `400` past date. The new
/// token never outlives the caller: its expiry is capped at the caller's.
pub(super) async fn create_token(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: CreateOperatorToken = request::json(input)?;
    let new = service::tokens::NewToken {
        owner: service::tokens::Owner::Operator {
            active: body.active.unwrap_or(true),
            write: body.write.unwrap_or(true),
        },
        expires_at: future("expiration_date", body.expiration_date, now)?,
        expires_field: "expiration_date",
        name: body.name,
        scopes: Scopes::empty(),
    };
    let created = app
        .write(caller, now, move |ctx| service::tokens::create(ctx, new))
        .await?;
    let view = OperatorTokenView::new(&created.token, now, Some(created.secret));
    Ok(data(StatusCode::CREATED, vec![view]))
}

/// `PUT /_/token` `{"name", "expiration_date"?, "active"?, "write"?}`: changes only the
/// given fields (`"expiration_date": null` = never). The value stays. `404` unknown.
/// A new expiry is capped at the caller's own, as on creation.
pub(super) async fn update_token(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: UpdateOperatorToken = request::json(input)?;
    let expires_at = body
        .expiration_date
        .map(|ms| future("expiration_date", ms, now))
        .transpose()?;
    let changes = TokenChanges {
        expires_at,
        active: body.active,
        write: body.write,
    };
    let token = app
        .write(caller, now, move |ctx| {
            service::tokens::update_operator(ctx, &body.name, changes, "expiration_date")
        })
        .await?;
    Ok(data(
        StatusCode::OK,
        vec![OperatorTokenView::new(&token, now, None)],
    ))
}

/// `DELETE /_/token` `{"name"}`: `200` with the deleted token; `404` unknown.
pub(super) async fn delete_token(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: NameBody = request::json(input)?;
    let token = app
        .write(caller, now, move |ctx| {
            service::tokens::delete(ctx, None, &body.name)
        })
        .await?;
    Ok(data(
        StatusCode::OK,
        vec![OperatorTokenView::new(&token, now, None)],
    ))
}

/// `GET /_/token/value?name=NAME`: `{"data":[{"token":"upk_ot_…"}]}`. `400` without
/// `name`; `404` unknown; `403` when the server runs with `--no-token-values`.
pub(super) fn token_value(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let name = request::query_param(input.parts.uri.query(), "name")
        .ok_or_else(|| Error::invalid("name", "query parameter is required (?name=…)"))?;
    let token = service::tokens::operator_value(
        &app.ctx(Some(caller), now),
        &name,
        app.settings.token_values,
    )?;
    Ok(data(StatusCode::OK, vec![TokenValue { token }]))
}
