//! `/_/account`: accounts, each created with its first account token.

use super::*;
use crate::app::App;
use crate::error::Error;
use crate::http::Body;
use crate::http::auth::Caller;
use crate::http::dto::{AccountAdminView, AccountPrefixBody, CreateAccount, FirstTokenView};
use crate::http::request::Input;
use crate::model::{NewAccount, Timestamp};
use crate::service;
use http::{Response, StatusCode};

/// `GET /_/account[?limit=&cursor=]`: a page of accounts.
pub(super) fn list_accounts(
    app: &App,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let page = service::accounts::page(
        &app.ctx(None, now),
        &request::paging(input.parts.uri.query())?,
    )?;
    let mut views = Vec::with_capacity(page.items.len());
    for account in &page.items {
        let limit = service::accounts::activation_limit(
            &app.store,
            account,
            app.settings.default_activation_limit,
            now,
        )?;
        views.push(AccountAdminView::new(account, limit));
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
    let new = NewAccount::parse(&body.name, &body.email, body.prefix.as_deref())
        .map_err(|(field, reason)| Error::invalid(field, reason))?;
    let (account, first) = app
        .write(caller, now, move |ctx| service::accounts::create(ctx, new))
        .await?;
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
pub(super) async fn delete_account(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let body: AccountPrefixBody = request::json(input)?;
    let account = app
        .write(caller, now, move |ctx| {
            service::accounts::delete(ctx, &body.prefix)
        })
        .await?;
    let view = AccountAdminView::new(&account, app.settings.default_activation_limit);
    Ok(data(StatusCode::OK, vec![view]))
}
