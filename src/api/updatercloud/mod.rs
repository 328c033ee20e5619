//! The UpdaterCloud REST API, `/api/v1/…`: scoped personal access tokens (Bearer or
//! `x-api-key`), JSON or form-encoded bodies, RFC 3339 times.

mod tokens;

use crate::http::auth::Need;
use crate::http::route::{Family, Handler, Row};
use crate::model::Scope;
use http::Method;

/// Every row here is of this family.
const F: Family = Family::UpdaterCloud;

/// The family's routes.
pub static ROWS: &[Row] = &[
    F.row(
        Method::GET,
        "get_me",
        "/api/v1/me",
        Need::Scope(Scope::ReadUser),
        Handler::Read(|app, call| tokens::me(app, call.caller()?)),
    ),
    F.row(
        Method::GET,
        "list_tokens",
        "/api/v1/tokens",
        Need::Scope(Scope::Api),
        Handler::Read(|app, call| tokens::list(app, call.caller()?, &call.input, call.now)),
    ),
    F.row(
        Method::POST,
        "create_token",
        "/api/v1/tokens",
        Need::Scope(Scope::Api),
        Handler::Write(|app, call| {
            Box::pin(
                async move { tokens::create(app, call.caller()?, &call.input, call.now).await },
            )
        }),
    ),
    F.row(
        Method::DELETE,
        "delete_token",
        "/api/v1/tokens/{name}",
        Need::Scope(Scope::Api),
        Handler::Write(|app, call| {
            Box::pin(async move {
                tokens::delete(app, call.caller()?, &call.param("name"), call.now).await
            })
        }),
    )
    .without_body(),
    F.row(
        Method::POST,
        "rotate_self",
        "/api/v1/tokens/self/rotate",
        Need::Account,
        Handler::Write(|app, call| {
            Box::pin(
                async move { tokens::rotate(app, call.caller()?, &call.input, call.now).await },
            )
        }),
    ),
];
