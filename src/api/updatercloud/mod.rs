//! The UpdaterCloud REST API, `/api/v1/…`: scoped personal access tokens (Bearer or
//! `x-api-key`), JSON or form-encoded bodies, RFC 3339 times.

mod tokens;

use crate::http::auth::Need;
use crate::http::route::{Family, Handler, Row};
use crate::model::Scope;
use http::Method;

const fn row(
    method: Method,
    name: &'static str,
    path: &'static str,
    need: Need,
    handler: Handler,
) -> Row {
    Row::new(Family::UpdaterCloud, method, name, path, need, handler)
}

/// The family's routes.
pub static ROWS: &[Row] = &[
    row(
        Method::GET,
        "get_me",
        "/api/v1/me",
        Need::Scope(Scope::ReadUser),
        Handler::Read(|app, call| tokens::me(app, call.caller()?)),
    ),
    row(
        Method::GET,
        "list_tokens",
        "/api/v1/tokens",
        Need::Scope(Scope::Api),
        Handler::Read(|app, call| tokens::list(app, call.caller()?, &call.input, call.now)),
    ),
    row(
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
    row(
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
    row(
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
