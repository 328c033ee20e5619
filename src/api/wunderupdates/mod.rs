//! The WunderUpdates account API, `/v1/account…`: account tokens via `x-api-key` (or
//! Bearer), JSON bodies, Unix-second times, `"status": 200` in every body.

mod account;

use crate::http::auth::Need;
use crate::http::route::{Family, Handler, Row};
use crate::model::Scope;
use http::Method;

/// Every row here is of this family.
const F: Family = Family::WunderUpdates;

/// The family's routes.
pub static ROWS: &[Row] = &[
    F.row(
        Method::GET,
        "get_account",
        "/v1/account",
        Need::Scope(Scope::ReadUser),
        Handler::Read(|app, call| account::get_account(app, call.caller()?)),
    ),
    F.row(
        Method::GET,
        "get_account_license",
        "/v1/account/license",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(|app, call| account::get_license(app, call.caller()?)),
    ),
    F.row(
        Method::POST,
        "apply_account_license",
        "/v1/account/license",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| {
            Box::pin(async move {
                account::apply_license(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
    F.row(
        Method::GET,
        "list_account_tokens",
        "/v1/account/tokens",
        Need::Scope(Scope::Api),
        Handler::Read(|app, call| account::list_tokens(app, call.caller()?, &call.input, call.now)),
    ),
    F.row(
        Method::POST,
        "create_account_token",
        "/v1/account/tokens",
        Need::Scope(Scope::Api),
        Handler::Write(|app, call| {
            Box::pin(async move {
                account::create_token(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
    F.row(
        Method::DELETE,
        "delete_account_token",
        "/v1/account/tokens/{name}",
        Need::Scope(Scope::Api),
        Handler::Write(|app, call| {
            Box::pin(async move {
                account::delete_token(app, call.caller()?, &call.param("name"), call.now).await
            })
        }),
    )
    .without_body(),
];
