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
use std::future::Future;
use std::pin::Pin;

/// What [`dispatch`] gives back: reads are answered at once; writes (which wait for a
/// durable flush) are a boxed future owning the request.
pub(crate) enum Dispatched<'a> {
    Ready(Result<Response<Body>, Error>),
    Pending(Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send + 'a>>),
}

impl Dispatched<'_> {
    pub(crate) async fn finish(self) -> Result<Response<Body>, Error> {
        match self {
            Dispatched::Ready(result) => result,
            Dispatched::Pending(future) => future.await,
        }
    }
}

/// Runs the handler for `route`. `caller` is `None` only for public routes.
///
/// Not an `async fn`: an async match over every handler would be a future as large as
/// the largest write handler's (kilobytes), built and moved for every request, reads
/// included. Reads run here and now; only writes pay for a box.
pub(crate) fn dispatch(
    app: &App,
    caller: Option<Caller>,
    route: Route,
    input: Input,
    now: Timestamp,
) -> Dispatched<'_> {
    use Dispatched::{Pending, Ready};
    let need = || caller.ok_or(Error::Unauthenticated);
    // Runs `$handler` (an async write handler) in a boxed future that owns the input.
    macro_rules! write {
        (|$caller:ident, $input:ident| $body:expr) => {
            match need() {
                Err(err) => Ready(Err(err)),
                Ok($caller) => Pending(Box::pin(async move {
                    let $input = input;
                    let $caller = &$caller;
                    $body.await
                })),
            }
        };
    }
    macro_rules! operator_write {
        (|$input:ident| $body:expr) => {
            Pending(Box::pin(async move {
                let $input = input;
                $body.await
            }))
        };
    }
    match route {
        Route::Landing => Ready(ops::landing(&input)),
        Route::Health => Ready(ops::health(app)),
        Route::Metrics => Ready(ops::metrics(app)),
        Route::OpenApi => Ready(ops::openapi()),
        Route::GetAccount => Ready(need().and_then(|c| wunderupdates::get_account(app, &c))),
        Route::GetAccountLicense => Ready(need().and_then(|c| wunderupdates::get_license(app, &c))),
        Route::ApplyAccountLicense => {
            write!(|c, input| wunderupdates::apply_license(app, c, &input, now))
        }
        Route::ListAccountTokens => {
            Ready(need().and_then(|c| wunderupdates::list_tokens(app, &c, &input, now)))
        }
        Route::CreateAccountToken => {
            write!(|c, input| wunderupdates::create_token(app, c, &input, now))
        }
        Route::DeleteAccountToken { name } => {
            write!(|c, _input| wunderupdates::delete_token(app, c, &name))
        }
        Route::GetMe => Ready(need().and_then(|c| updatercloud::me(app, &c))),
        Route::ListTokens => Ready(need().and_then(|c| updatercloud::list(app, &c, &input, now))),
        Route::CreateToken => write!(|c, input| updatercloud::create(app, c, &input, now)),
        Route::DeleteToken { name } => write!(|c, _input| updatercloud::delete(app, c, &name)),
        Route::RotateSelf => write!(|c, input| updatercloud::rotate(app, c, &input, now)),
        Route::ListOperatorTokens => Ready(query::list_tokens(app, &input, now)),
        Route::CreateOperatorToken => {
            operator_write!(|input| query::create_token(app, &input, now))
        }
        Route::UpdateOperatorToken => {
            operator_write!(|input| query::update_token(app, &input, now))
        }
        Route::DeleteOperatorToken => {
            operator_write!(|input| query::delete_token(app, &input, now))
        }
        Route::GetOperatorTokenValue => Ready(query::token_value(app, &input)),
        Route::ListAccounts => Ready(query::list_accounts(app, &input)),
        Route::CreateAccount => operator_write!(|input| query::create_account(app, &input, now)),
        Route::DeleteAccount => operator_write!(|input| query::delete_account(app, &input)),
        Route::ListLicenses => Ready(query::list_licenses(app, &input, now)),
        Route::IssueLicense => operator_write!(|input| query::issue_license(app, &input, now)),
        Route::RevokeLicense => operator_write!(|input| query::revoke_license(app, &input, now)),
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
