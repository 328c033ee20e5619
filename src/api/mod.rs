//! The API families: each module owns its route rows (`ROWS`: method, path, need, body
//! policy, handler) and the handlers behind them, which map its wire shapes onto the one
//! domain model. Handlers parse → check what the row cannot (scopes to grant, the
//! caller's own account) → call the store → render; they never touch sled and never
//! choose an error status: they return `Error`s, which the pipeline (`app`) renders once.
//!
//! [`FAMILIES`] is what [`table`] (the route table the pipeline matches against) and
//! [`openapi`] (the document) gather, in documentation order.

pub mod openapi;
pub mod ops;
pub mod public;
pub mod query;
pub mod updatercloud;
pub mod wunderupdates;

use crate::error::Error;
use crate::http::auth::Caller;
use crate::http::route::{Matched, Row, Table};
use crate::model::AccountPrefix;
use std::sync::LazyLock;

/// One API family: its route rows, and the OpenAPI operation object of each row, keyed by
/// the row's name (`api::openapi` places them at the rows' paths and methods).
pub struct Api {
    pub rows: &'static [Row],
    pub operations: &'static str,
}

/// Every family, in documentation order.
pub static FAMILIES: &[Api] = &[
    Api {
        rows: ops::ROWS,
        operations: include_str!("ops.openapi.json"),
    },
    Api {
        rows: wunderupdates::ROWS,
        operations: include_str!("wunderupdates/openapi.json"),
    },
    Api {
        rows: updatercloud::ROWS,
        operations: include_str!("updatercloud/openapi.json"),
    },
    Api {
        rows: query::ROWS,
        operations: include_str!("query/openapi.json"),
    },
    Api {
        rows: public::ROWS,
        operations: include_str!("public/openapi.json"),
    },
];

/// The route table: every family's rows, in documentation order.
pub fn table() -> &'static Table {
    static TABLE: LazyLock<Table> =
        LazyLock::new(|| Table::new(FAMILIES.iter().flat_map(|api| api.rows.iter()).collect()));
    &TABLE
}

/// Every row, in documentation order.
pub fn rows() -> &'static [&'static Row] {
    &table().rows
}

/// The row for `method` and `path` ([`Table::lookup`] in [`table`]).
///
/// # Errors
/// `NotFound`, or `MethodNotAllowed` with the allowed methods.
pub fn find(method: &http::Method, path: &str) -> Result<Matched, Error> {
    table().lookup(method, path)
}

/// The account an account token acts for.
fn account_of(caller: &Caller) -> Result<AccountPrefix, Error> {
    caller
        .principal
        .account()
        .ok_or_else(|| Error::Forbidden("this route needs an account token".to_owned()))
}

/// A page of the calling account's own tokens (`?limit=&cursor=`): both account families
/// list them, each in its own shape.
fn own_tokens_page(
    app: &crate::app::App,
    caller: &Caller,
    input: &crate::http::request::Input,
    now: crate::model::Timestamp,
) -> Result<crate::store::Page<crate::model::Token>, Error> {
    let prefix = account_of(caller)?;
    crate::service::tokens::page(
        &app.ctx(Some(caller), now),
        Some(&prefix),
        &crate::http::request::paging(input.parts.uri.query())?,
    )
}

/// Deletes one of the calling account's own tokens by name (both account families).
async fn delete_own_token(
    app: &crate::app::App,
    caller: &Caller,
    name: &str,
    now: crate::model::Timestamp,
) -> Result<crate::model::Token, Error> {
    let prefix = account_of(caller)?;
    let name = name.to_owned();
    app.write(caller, now, move |ctx| {
        crate::service::tokens::delete(ctx, Some(&prefix), &name)
    })
    .await
}
