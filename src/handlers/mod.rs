//! Handlers: parse → authorize (beyond the route's need) → call the store → render.
//! One module per API family; each maps its wire shapes onto the one domain model.
//! Handlers never touch sled and never choose an error status: they return `Error`s,
//! which `app` renders once.

mod ops;
mod query;
mod updatercloud;
mod wunderupdates;

use crate::app::App;
use crate::auth::Caller;
use crate::error::Error;
use crate::http::Body;
use crate::http::request::Input;
use crate::http::router::Route;
use crate::model::{AccountPrefix, Scopes, Timestamp};
use http::Response;

/// Runs the handler for `route`. `caller` is `None` only for public routes.
pub(crate) async fn dispatch(
    app: &App,
    caller: Option<&Caller>,
    route: Route,
    input: Input,
    now: Timestamp,
) -> Result<Response<Body>, Error> {
    let caller = || caller.ok_or(Error::Unauthenticated);
    match route {
        Route::Health => ops::health(app),
        Route::Metrics => ops::metrics(app),
        Route::OpenApi => ops::openapi(),
        Route::GetAccount => wunderupdates::get_account(app, caller()?),
        Route::GetAccountLicense => wunderupdates::get_license(app, caller()?),
        Route::ApplyAccountLicense => {
            wunderupdates::apply_license(app, caller()?, &input, now).await
        }
        Route::ListAccountTokens => wunderupdates::list_tokens(app, caller()?, &input, now),
        Route::CreateAccountToken => wunderupdates::create_token(app, caller()?, &input, now).await,
        Route::DeleteAccountToken { name } => {
            wunderupdates::delete_token(app, caller()?, &name).await
        }
        Route::GetMe => updatercloud::me(app, caller()?),
        Route::ListTokens => updatercloud::list(app, caller()?, &input, now),
        Route::CreateToken => updatercloud::create(app, caller()?, &input, now).await,
        Route::DeleteToken { name } => updatercloud::delete(app, caller()?, &name).await,
        Route::RotateSelf => updatercloud::rotate(app, caller()?, &input, now).await,
        Route::ListOperatorTokens => query::list_tokens(app, &input, now),
        Route::CreateOperatorToken => query::create_token(app, &input, now).await,
        Route::UpdateOperatorToken => query::update_token(app, &input, now).await,
        Route::DeleteOperatorToken => query::delete_token(app, &input, now).await,
        Route::GetOperatorTokenValue => query::token_value(app, &input),
        Route::ListAccounts => query::list_accounts(app, &input),
        Route::CreateAccount => query::create_account(app, &input, now).await,
        Route::DeleteAccount => query::delete_account(app, &input).await,
        Route::ListLicenses => query::list_licenses(app, &input, now),
        Route::IssueLicense => query::issue_license(app, &input, now).await,
        Route::RevokeLicense => query::revoke_license(app, &input, now).await,
    }
}

/// A token can never create a token with a scope it does not hold.
fn check_grantable(caller: &Caller, scopes: Scopes) -> Result<(), Error> {
    if caller.scopes.covers(scopes) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "a token cannot grant scopes it does not hold (asked for {scopes}, holds {})",
            caller.scopes
        )))
    }
}

/// The account an account token acts for.
fn account_of(caller: &Caller) -> Result<AccountPrefix, Error> {
    caller
        .principal
        .account()
        .ok_or_else(|| Error::Forbidden("this route needs an account token".to_owned()))
}
