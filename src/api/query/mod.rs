//! The Query-style server-admin API, `/_/…`: operator tokens (not tied to an account),
//! JSON bodies (also on DELETE), Unix-millisecond times, `{"data": [ … ]}` responses.
//! Reads need an active operator token; changes and `/value` need `write`.

mod accounts;
mod licenses;
mod tokens;

use crate::error::Error;
use crate::http::auth::Need;
use crate::http::dto::{Data, ListData};
use crate::http::route::{Family, Handler, Row};
use crate::http::{Body, request, response};
use crate::model::Timestamp;
use http::{Method, Response, StatusCode};

const READ: Need = Need::Operator { write: false };
const WRITE: Need = Need::Operator { write: true };

/// Every row here is of this family.
const F: Family = Family::Query;

/// The family's routes.
pub static ROWS: &[Row] = &[
    F.row(
        Method::GET,
        "list_operator_tokens",
        "/_/token",
        READ,
        Handler::Read(|app, call| tokens::list_tokens(app, &call.input, call.now)),
    ),
    F.row(
        Method::POST,
        "create_operator_token",
        "/_/token",
        WRITE,
        Handler::Write(|app, call| {
            Box::pin(async move {
                tokens::create_token(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
    F.row(
        Method::PUT,
        "update_operator_token",
        "/_/token",
        WRITE,
        Handler::Write(|app, call| {
            Box::pin(async move {
                tokens::update_token(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
    F.row(
        Method::DELETE,
        "delete_operator_token",
        "/_/token",
        WRITE,
        Handler::Write(|app, call| {
            Box::pin(async move {
                tokens::delete_token(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
    F.row(
        Method::GET,
        "get_operator_token_value",
        "/_/token/value",
        WRITE,
        Handler::Read(|app, call| tokens::token_value(app, call.caller()?, &call.input, call.now)),
    ),
    F.row(
        Method::GET,
        "list_accounts",
        "/_/account",
        READ,
        Handler::Read(|app, call| accounts::list_accounts(app, &call.input, call.now)),
    ),
    F.row(
        Method::POST,
        "create_account",
        "/_/account",
        WRITE,
        Handler::Write(|app, call| {
            Box::pin(async move {
                accounts::create_account(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
    F.row(
        Method::DELETE,
        "delete_account",
        "/_/account",
        WRITE,
        Handler::Write(|app, call| {
            Box::pin(async move {
                accounts::delete_account(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
    F.row(
        Method::GET,
        "list_licenses",
        "/_/license",
        READ,
        Handler::Read(|app, call| licenses::list_licenses(app, &call.input, call.now)),
    ),
    F.row(
        Method::POST,
        "issue_license",
        "/_/license",
        WRITE,
        Handler::Write(|app, call| {
            Box::pin(async move {
                licenses::issue_license(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
    F.row(
        Method::DELETE,
        "revoke_license",
        "/_/license",
        WRITE,
        Handler::Write(|app, call| {
            Box::pin(async move {
                licenses::revoke_license(app, call.caller()?, &call.input, call.now).await
            })
        }),
    ),
];

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
