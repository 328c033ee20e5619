//! The Query-style server-admin API, `/_/…`: operator tokens (not tied to an account),
//! JSON bodies (also on DELETE), Unix-millisecond times, `{"data": [ … ]}` responses.
//! Reads need an active operator token; changes and `/value` need `write`.

use crate::app::App;
use crate::auth::Caller;
use crate::error::Error;
use crate::http::dto::{
    AccountAdminView, AccountPrefixBody, CreateAccount, CreateOperatorToken, Data, FirstTokenView,
    IssueLicense, LicenseAdminView, LicenseIdBody, ListData, OperatorTokenName as NameBody,
    OperatorTokenView, TokenValue, UpdateOperatorToken,
};
use crate::http::request::{self, Input};
use crate::http::{Body, response};
use crate::model::{
    AccountPrefix, LicenseId, NewAccount, OperatorTokenName, Principal, Scopes, Timestamp,
    TokenChanges, check_token_expiry,
};
use crate::store::NewToken;
use http::{Response, StatusCode};

fn data<T: serde::Serialize>(status: StatusCode, items: Vec<T>) -> Response<Body> {
    response::json(status, &Data { data: items })
}

/// A Unix-ms expiration date that must lie in the future.
fn future(field: &str, ms: Option<u64>, now: Timestamp) -> Result<Option<Timestamp>, Error> {
    match ms.map(Timestamp::from_millis) {
        Some(at) if at <= now => Err(Error::invalid(
            field,
            format!(
                "must be in the future (Unix milliseconds; now is {})",
                now.as_millis()
            ),
        )),
        Some(at) => at
            .as_expiry()
            .map(Some)
            .map_err(|reason| Error::invalid(field, reason)),
        None => Ok(None),
    }
}

/// A new operator token's name (the strict rule).
fn operator_name(name: &str) -> Result<OperatorTokenName, Error> {
    OperatorTokenName::parse(name).map_err(|reason| Error::invalid("name", reason))
}

/// The name of an existing operator token (also those named under an older rule).
fn existing_operator_name(name: &str) -> Result<OperatorTokenName, Error> {
    OperatorTokenName::lookup(name).map_err(|reason| Error::invalid("name", reason))
}

/// A token's `expiration_date`: in the future, and at least a minute ahead.
fn token_expiry(ms: Option<u64>, now: Timestamp) -> Result<Option<Timestamp>, Error> {
    future("expiration_date", ms, now)?
        .map(|at| check_token_expiry(at, now))
        .transpose()
        .map_err(|reason| Error::invalid("expiration_date", reason))
}

fn list<T: serde::Serialize>(items: Vec<T>, next: Option<&str>) -> Response<Body> {
    let next_cursor = request::cursor(next);
    response::json(
        StatusCode::OK,
        &ListData {
            data: items,
            next_cursor,
        },
    )
}

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
    let expires_at = super::child_expiry(caller, token_expiry(body.expiration_date, now)?);
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
        Some(ms) => Some(super::child_expiry(caller, token_expiry(ms, now)?)),
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

/// `GET /_/account[?limit=&cursor=]`: a page of accounts.
pub(super) fn list_accounts(
    app: &App,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let page = app
        .store
        .accounts_page(&request::paging(input.parts.uri.query())?)?;
    let mut views = Vec::with_capacity(page.items.len());
    for account in &page.items {
        views.push(AccountAdminView::new(
            account,
            app.activation_limit(account, now)?,
        ));
    }
    Ok(list(views, page.next.as_deref()))
}

/// `POST /_/account` `{"name","email","prefix"?}`: `201` with the account and its first
/// token (`default`, scope `api`, shown once; it expires when the caller does, if the
/// caller expires). `409` for a taken prefix.
pub(super) async fn create_account(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: CreateAccount = request::json(input)?;
    let mut new = NewAccount::parse(&body.name, &body.email, body.prefix.as_deref())
        .map_err(|(field, reason)| Error::invalid(field, reason))?;
    new.first_token_expires_at = super::child_expiry(caller, None);
    let (account, first) = app.store.create_account(new, now)?.durable().await?;
    let mut view = AccountAdminView::new(&account, app.settings.default_activation_limit);
    view.token = Some(FirstTokenView {
        name: first.token.name.clone(),
        scopes: first.token.scopes.iter().map(|s| s.as_str()).collect(),
        token: first.secret,
    });
    Ok(data(StatusCode::CREATED, vec![view]))
}

/// `DELETE /_/account` `{"prefix"}`: deletes the account and its tokens, frees its plan
/// license. `404` unknown.
pub(super) async fn delete_account(app: &App, input: &Input) -> Result<Response<Body>, Error> {
    let body: AccountPrefixBody = request::json(input)?;
    let prefix = AccountPrefix::parse(&body.prefix)
        .map_err(|_| Error::NotFound(format!("no account with prefix `{}`", body.prefix)))?;
    let account = app.store.delete_account(&prefix)?.durable().await?;
    let view = AccountAdminView::new(&account, app.settings.default_activation_limit);
    Ok(data(StatusCode::OK, vec![view]))
}

/// `GET /_/license[?limit=&cursor=]`: a page of plan licenses (never their keys).
pub(super) fn list_licenses(
    app: &App,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let page = app
        .store
        .licenses_page(&request::paging(input.parts.uri.query())?)?;
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
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: IssueLicense = request::json(input)?;
    if body.limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1"));
    }
    let expires_at = future("expiration_date", body.expiration_date, now)?;
    let issued = app
        .store
        .issue_license(body.limit, expires_at, now)?
        .durable()
        .await?;
    let view = LicenseAdminView::new(&issued.license, now, Some(issued.key));
    Ok(data(StatusCode::CREATED, vec![view]))
}

/// `DELETE /_/license` `{"id"}`: revokes it; the account using it falls back to the
/// default limit. `404` unknown.
pub(super) async fn revoke_license(
    app: &App,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: LicenseIdBody = request::json(input)?;
    let license = app
        .store
        .revoke_license(LicenseId(body.id), now)?
        .durable()
        .await?;
    Ok(data(
        StatusCode::OK,
        vec![LicenseAdminView::new(&license, now, None)],
    ))
}
