//! The WunderUpdates API, `/v1/account…` (SPEC §4.1) and `/v1/plugins…`, `/v1/themes…`
//! (§7.2): account tokens via `x-api-key` (or
//! Bearer), JSON bodies, Unix-second times, `"status": 200` in every body.

mod account;
mod catalog;

use crate::http::auth::Need;
use crate::http::route::{Family, Handler, Row};
use crate::model::{ProductKind, Scope};
use http::Method;

/// Every row here is of this family.
const F: Family = Family::WunderUpdates;

const PLUGIN: ProductKind = ProductKind::Plugin;
const THEME: ProductKind = ProductKind::Theme;

/// The family's routes. Deletions of a product's parts come before the product's own
/// (the OpenAPI example run walks the rows in order).
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
    // `/v1/plugins…` (SPEC §7.2).
    F.row(
        Method::GET,
        "list_plugins",
        "/v1/plugins",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(|app, call| catalog::list(app, call, PLUGIN)),
    ),
    F.row(
        Method::POST,
        "create_plugin",
        "/v1/plugins",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::create(app, call, PLUGIN))),
    ),
    F.row(
        Method::GET,
        "get_plugin",
        "/v1/plugins/{slug}",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(|app, call| catalog::get(app, call, PLUGIN)),
    ),
    F.row(
        Method::PUT,
        "update_plugin",
        "/v1/plugins/{slug}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::update(app, call, PLUGIN))),
    ),
    F.row(
        Method::GET,
        "list_plugin_versions",
        "/v1/plugins/{slug}/versions",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(|app, call| catalog::versions(app, call, PLUGIN)),
    ),
    F.row(
        Method::POST,
        "release_plugin_version",
        "/v1/plugins/{slug}/versions",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::release(app, call, PLUGIN))),
    )
    .streamed(),
    F.row(
        Method::GET,
        "list_plugin_keys",
        "/v1/plugins/{slug}/license/keys",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(|app, call| catalog::keys(app, call, PLUGIN)),
    ),
    F.row(
        Method::POST,
        "replace_plugin_keys",
        "/v1/plugins/{slug}/license/keys",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(catalog::replace_keys(app, call, PLUGIN))),
    ),
    F.row(
        Method::PUT,
        "add_plugin_key",
        "/v1/plugins/{slug}/license/keys",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(catalog::add_key(app, call, PLUGIN))),
    ),
    F.row(
        Method::GET,
        "get_plugin_key",
        "/v1/plugins/{slug}/license/keys/{key}",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(|app, call| catalog::get_key(app, call, PLUGIN)),
    ),
    F.row(
        Method::DELETE,
        "delete_plugin_key",
        "/v1/plugins/{slug}/license/keys/{key}",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(catalog::delete_key(app, call, PLUGIN))),
    )
    .without_body(),
    F.row(
        Method::DELETE,
        "delete_plugin_version",
        "/v1/plugins/{slug}/versions/{version}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::delete_version(app, call, PLUGIN))),
    )
    .without_body(),
    F.row(
        Method::DELETE,
        "delete_plugin",
        "/v1/plugins/{slug}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::delete(app, call, PLUGIN))),
    )
    .without_body(),
    // `/v1/themes…` (SPEC §7.2).
    F.row(
        Method::GET,
        "list_themes",
        "/v1/themes",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(|app, call| catalog::list(app, call, THEME)),
    ),
    F.row(
        Method::POST,
        "create_theme",
        "/v1/themes",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::create(app, call, THEME))),
    ),
    F.row(
        Method::GET,
        "get_theme",
        "/v1/themes/{slug}",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(|app, call| catalog::get(app, call, THEME)),
    ),
    F.row(
        Method::PUT,
        "update_theme",
        "/v1/themes/{slug}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::update(app, call, THEME))),
    ),
    F.row(
        Method::GET,
        "list_theme_versions",
        "/v1/themes/{slug}/versions",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(|app, call| catalog::versions(app, call, THEME)),
    ),
    F.row(
        Method::POST,
        "release_theme_version",
        "/v1/themes/{slug}/versions",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::release(app, call, THEME))),
    )
    .streamed(),
    F.row(
        Method::GET,
        "list_theme_keys",
        "/v1/themes/{slug}/license/keys",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(|app, call| catalog::keys(app, call, THEME)),
    ),
    F.row(
        Method::POST,
        "replace_theme_keys",
        "/v1/themes/{slug}/license/keys",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(catalog::replace_keys(app, call, THEME))),
    ),
    F.row(
        Method::PUT,
        "add_theme_key",
        "/v1/themes/{slug}/license/keys",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(catalog::add_key(app, call, THEME))),
    ),
    F.row(
        Method::GET,
        "get_theme_key",
        "/v1/themes/{slug}/license/keys/{key}",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(|app, call| catalog::get_key(app, call, THEME)),
    ),
    F.row(
        Method::DELETE,
        "delete_theme_key",
        "/v1/themes/{slug}/license/keys/{key}",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(catalog::delete_key(app, call, THEME))),
    )
    .without_body(),
    F.row(
        Method::DELETE,
        "delete_theme_version",
        "/v1/themes/{slug}/versions/{version}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::delete_version(app, call, THEME))),
    )
    .without_body(),
    F.row(
        Method::DELETE,
        "delete_theme",
        "/v1/themes/{slug}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::delete(app, call, THEME))),
    )
    .without_body(),
];
