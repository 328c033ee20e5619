//! `/v1/account…`: the account, its plan license and its tokens.

use crate::api::account_of;
use crate::app::App;
use crate::error::Error;
use crate::http::auth::Caller;
use crate::http::dto::{
    AccountEnvelope, AccountTokenView, ApplyLicense, CreateAccountToken, CreatedTokenEnvelope,
    DeletedEnvelope, LicenseEnvelope, Products, TokensEnvelope,
};
use crate::http::request::{self, Input};
use crate::http::{Body, response};
use crate::model::{Scope, Scopes, Timestamp};
use crate::service;
use http::{Response, StatusCode};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// `GET /v1/account`: the caller's account. Needs `read_user`. The account and its limit
/// come from what authentication already read (the index's account slot); `products`
/// lists the account's plugin and theme slugs (one scan of its products).
/// `200 {"account":{"prefix","activationUsage","activationLimit"},"status":200,
/// "products":{"themes":[…],"plugins":[…]}}`.
pub(super) fn get_account(app: &App, caller: &Caller) -> Result<Response<Body>, Error> {
    let prefix = account_of(caller)?;
    let plan_limit = caller
        .plan_limit
        .ok_or_else(|| Error::NotFound("no such account".to_owned()))?;
    let limit = plan_limit.unwrap_or(app.settings.default_activation_limit);
    let (plugins, themes) = super::catalog::slugs(app, &prefix)?;
    let mut envelope = AccountEnvelope::new(&prefix, limit, Products { themes, plugins });
    // One point read: the store keeps the count with the activations (SPEC §9).
    envelope.account.activation_usage = service::licensing::activation_usage(&app.store, &prefix)?;
    Ok(response::json(StatusCode::OK, &envelope))
}

/// `GET /v1/account/license`: the bound plan license, or `"license": null`.
/// Needs `read_licenses`.
pub(super) fn get_license(app: &App, caller: &Caller) -> Result<Response<Body>, Error> {
    let prefix = account_of(caller)?;
    let account = service::accounts::get(&app.store, &prefix)?;
    let license = app.store.account_license(&account)?;
    Ok(response::json(
        StatusCode::OK,
        &LicenseEnvelope::new(license.as_ref()),
    ))
}

/// `POST /v1/account/license` `{"license":"upk_pl_…"}`: binds a plan license to the
/// account, replacing the previous one. Needs `manage_licenses`.
/// `400 invalid_license` (malformed, unknown or revoked), `400 license_expired`,
/// `409 license_in_use` (bound to another account).
pub(super) async fn apply_license(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let prefix = account_of(caller)?;
    let body: ApplyLicense = request::json(input)?;
    let license = app
        .write(caller, now, move |ctx| {
            service::plan_licenses::apply(ctx, &prefix, &body.license)
        })
        .await?;
    Ok(response::json(
        StatusCode::OK,
        &LicenseEnvelope::new(Some(&license)),
    ))
}

/// `GET /v1/account/tokens[?limit=&cursor=]`: a page of the account's tokens (never their
/// secrets), in name order. Needs `api`.
pub(super) fn list_tokens(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let page = crate::api::own_tokens_page(app, caller, input, now)?;
    let body = TokensEnvelope {
        status: 200,
        tokens: page
            .items
            .iter()
            .map(|token| AccountTokenView::new(token, now))
            .collect(),
        next_cursor: request::cursor(page.next.as_deref()),
    };
    Ok(response::json(StatusCode::OK, &body))
}

/// Days 1–365 from now, `-1` = never, omitted = 365.
fn expiry_in_days(expires: Option<i64>, now: Timestamp) -> Result<Option<Timestamp>, Error> {
    match expires {
        None => Ok(Some(now.saturating_add(DAY * 365))),
        Some(-1) => Ok(None),
        Some(days @ 1..=365) => Ok(Some(now.saturating_add(DAY * days as u32))),
        Some(other) => Err(Error::invalid(
            "expires",
            format!(
                "must be a number of days from 1 to 365, or -1 for a token that never expires; got {other}"
            ),
        )),
    }
}

/// `POST /v1/account/tokens` `{"name","expires"?,"scopes"?}`: creates a token and shows
/// its secret once. Needs `api`; never outlives the caller (the expiry is capped at the
/// caller's). `400` for a bad name, expiry or scope; `403` for a scope the caller does not
/// hold or a grace secret; `409` for a duplicate name.
pub(super) async fn create_token(
    app: &App,
    caller: &Caller,
    input: &Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let prefix = account_of(caller)?;
    let body: CreateAccountToken = request::json(input)?;
    let expires_at = expiry_in_days(body.expires, now)?;
    let scopes = match &body.scopes {
        None => Scopes::only(Scope::Api),
        Some(names) => Scopes::parse_all(names.iter().map(String::as_str))
            .map_err(|reason| Error::invalid("scopes", reason))?,
    };
    let new = service::tokens::NewToken {
        owner: service::tokens::Owner::Account(prefix),
        name: body.name,
        scopes,
        expires_at,
        expires_field: "expires",
    };
    let created = app
        .write(caller, now, move |ctx| service::tokens::create(ctx, new))
        .await?;
    Ok(response::json(
        StatusCode::OK,
        &CreatedTokenEnvelope::new(&created.token, created.secret),
    ))
}

/// `DELETE /v1/account/tokens/{name}`: `{"status":200,"message":null}`; the token stops
/// working at once. Needs `api`. `404` when the account has no token of that name.
pub(super) async fn delete_token(
    app: &App,
    caller: &Caller,
    name: &str,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    crate::api::delete_own_token(app, caller, name, now).await?;
    Ok(response::json(
        StatusCode::OK,
        &DeletedEnvelope {
            status: 200,
            message: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_days_rules() {
        let now = Timestamp::from_secs(1_000);
        assert_eq!(
            expiry_in_days(None, now).unwrap(),
            Some(Timestamp::from_secs(1_000 + 365 * 86_400))
        );
        assert_eq!(expiry_in_days(Some(-1), now).unwrap(), None);
        assert_eq!(
            expiry_in_days(Some(1), now).unwrap(),
            Some(Timestamp::from_secs(1_000 + 86_400))
        );
        for bad in [0, 366, -2, i64::MIN, i64::MAX] {
            assert!(expiry_in_days(Some(bad), now).is_err(), "{bad}");
        }
    }
}
