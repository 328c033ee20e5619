//! Handlers: parse → authorize (beyond the route's need) → call the store → render.
//! One module per API family; each maps its wire shapes onto the one domain model.
//! Handlers never touch sled and never choose an error status: they return `Error`s,
//! which `app` renders once.

mod ops;
mod wunderupdates;

use crate::app::App;
use crate::auth::Caller;
use crate::error::Error;
use crate::http::Body;
use crate::http::request::Input;
use crate::http::router::Route;
use crate::model::{AccountPrefix, Timestamp};
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
        Route::GetAccount => wunderupdates::get_account(app, caller()?),
        Route::GetAccountLicense => wunderupdates::get_license(app, caller()?),
        Route::ApplyAccountLicense => {
            wunderupdates::apply_license(app, caller()?, &input, now).await
        }
        Route::ListAccountTokens => wunderupdates::list_tokens(app, caller()?, now),
        Route::CreateAccountToken => wunderupdates::create_token(app, caller()?, &input, now).await,
        Route::DeleteAccountToken { name } => {
            wunderupdates::delete_token(app, caller()?, &name).await
        }
    }
}

/// The account an account token acts for.
fn account_of(caller: &Caller) -> Result<AccountPrefix, Error> {
    caller
        .principal
        .account()
        .ok_or_else(|| Error::Forbidden("this route needs an account token".to_owned()))
}
