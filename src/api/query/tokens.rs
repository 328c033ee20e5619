//! `/_/token…`: operator tokens and their values.

use super::*;
use crate::app::App;
use crate::auth::Caller;
use crate::error::Error;
use crate::http::Body;
use crate::http::dto::{
    CreateOperatorToken, OperatorTokenName as NameBody, OperatorTokenView, TokenValue,
    UpdateOperatorToken,
};
use crate::http::request::Input;
use crate::model::{Principal, Scopes, Timestamp, TokenChanges};
use crate::store::NewToken;
use http::{Response, StatusCode};

/// `GET /_/token[?limit=&cursor=]`: a page of operator tokens (never their values).
pub(super) fn list_tokens(
    app: &App,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let page = app
        .store
        .tokens_page(None, &request::paging(input.parts.uri.query())?)?;
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
    let name = operator_name(&body.name)?;
    let expires_at = crate::api::child_expiry(caller, token_expiry(body.expiration_date, now)?);
    let new = NewToken {
        principal: Principal::Operator {
            active: body.active.unwrap_or(true),
            write: body.write.unwrap_or(true),
        },
        name: name.as_str().to_owned(),
        scopes: Scopes::empty(),
        expires_at,
    };
    let created = app.store.create_token(new, now)?.durable().await?;
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
    let name = existing_operator_name(&body.name)?;
    let expires_at = match body.expiration_date {
        None => None,
        Some(ms) => Some(crate::api::child_expiry(caller, token_expiry(ms, now)?)),
    };
    let changes = TokenChanges {
        expires_at,
        active: body.active,
        write: body.write,
    };
    let token = app
        .store
        .update_operator_token(name.as_str(), changes, now)?
        .durable()
        .await?;
    Ok(data(
        StatusCode::OK,
        vec![OperatorTokenView::new(&token, now, None)],
    ))
}

/// `DELETE /_/token` `{"name"}`: `200` with the deleted token; `404` unknown.
pub(super) async fn delete_token(
    app: &App,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: NameBody = request::json(input)?;
    let name = existing_operator_name(&body.name)?;
    let token = app
        .store
        .delete_token(None, name.as_str())?
        .durable()
        .await?;
    Ok(data(
        StatusCode::OK,
        vec![OperatorTokenView::new(&token, now, None)],
    ))
}

/// `GET /_/token/value?name=NAME`: `{"data":[{"token":"upk_ot_…"}]}`. `400` without
/// `name`; `404` unknown; `403` when the server runs with `--no-token-values`.
pub(super) fn token_value(app: &App, input: &Input) -> Result<Response<Body>, Error> {
    let name = request::query_param(input.parts.uri.query(), "name")
        .ok_or_else(|| Error::invalid("name", "query parameter is required (?name=…)"))?;
    let name = existing_operator_name(&name)?;
    if !app.settings.token_values {
        return Err(Error::Forbidden(
            "token values cannot be read back on this server (--no-token-values)".to_owned(),
        ));
    }
    let token = app.store.operator_token_value(name.as_str())?;
    Ok(data(StatusCode::OK, vec![TokenValue { token }]))
}
