//! The UpdaterCloud REST API, `/api/v1/…`: scoped personal access tokens (Bearer or
//! `x-api-key`), JSON or form-encoded bodies, RFC 3339 times.

pub mod catalog;
pub mod licensing;
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
    F.row(
        Method::GET,
        "list_groups",
        "/api/v1/groups",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::list_groups),
    ),
    F.row(
        Method::POST,
        "create_group",
        "/api/v1/groups",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::put_group(app, call, true))),
    ),
    F.row(
        Method::GET,
        "get_group",
        "/api/v1/groups/{id}",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::get_group),
    ),
    F.row(
        Method::PATCH,
        "update_group",
        "/api/v1/groups/{id}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::put_group(app, call, false))),
    ),
    F.row(
        Method::DELETE,
        "delete_group",
        "/api/v1/groups/{id}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::delete_group(app, call))),
    )
    .without_body(),
    F.row(
        Method::GET,
        "list_products",
        "/api/v1/products",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::list_products),
    ),
    F.row(
        Method::POST,
        "create_product",
        "/api/v1/products",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::create_product(app, call))),
    ),
    F.row(
        Method::GET,
        "get_product",
        "/api/v1/products/{id}",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::get_product),
    ),
    F.row(
        Method::PATCH,
        "update_product",
        "/api/v1/products/{id}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::update_product(app, call))),
    ),
    F.row(
        Method::DELETE,
        "delete_product",
        "/api/v1/products/{id}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::delete_product(app, call))),
    )
    .without_body(),
    F.row(
        Method::POST,
        "duplicate_product",
        "/api/v1/products/{id}/duplicate",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::duplicate_product(app, call))),
    ),
    F.row(
        Method::GET,
        "get_channels",
        "/api/v1/products/{id}/channels",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::channels),
    ),
    F.row(
        Method::GET,
        "list_versions",
        "/api/v1/products/{id}/versions",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::list_versions),
    ),
    F.row(
        Method::POST,
        "create_version",
        "/api/v1/products/{id}/versions",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::create_version(app, call))),
    ),
    F.row(
        Method::POST,
        "release_product",
        "/api/v1/products/{id}/releases",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::release(app, call, true))),
    )
    .streamed(),
    F.row(
        Method::POST,
        "release",
        "/api/v1/releases",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::release(app, call, false))),
    )
    .streamed(),
    F.row(
        Method::GET,
        "get_version",
        "/api/v1/versions/{id}",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::get_version),
    ),
    F.row(
        Method::PATCH,
        "update_version",
        "/api/v1/versions/{id}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::update_version(app, call))),
    ),
    F.row(
        Method::DELETE,
        "delete_version",
        "/api/v1/versions/{id}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::delete_version(app, call))),
    )
    .without_body(),
    F.row(
        Method::GET,
        "list_files",
        "/api/v1/versions/{id}/files",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::list_files),
    ),
    F.row(
        Method::POST,
        "create_file",
        "/api/v1/versions/{id}/files",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::create_file(app, call))),
    )
    .streamed(),
    F.row(
        Method::GET,
        "get_file",
        "/api/v1/files/{id}",
        Need::Scope(Scope::ReadReleases),
        Handler::Read(catalog::get_file),
    ),
    F.row(
        Method::PATCH,
        "update_file",
        "/api/v1/files/{id}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::update_file(app, call))),
    ),
    F.row(
        Method::DELETE,
        "delete_file",
        "/api/v1/files/{id}",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::delete_file(app, call))),
    )
    .without_body(),
    F.row(
        Method::PUT,
        "replace_file_content",
        "/api/v1/files/{id}/content",
        Need::Scope(Scope::ManageReleases),
        Handler::Write(|app, call| Box::pin(catalog::replace_content(app, call))),
    )
    .streamed(),
    F.row(
        Method::GET,
        "download_file",
        "/api/v1/files/{id}/content",
        Need::Scope(Scope::ReadReleases),
        Handler::Write(|app, call| Box::pin(catalog::download(app, call))),
    ),
    // ----- customer licensing (SPEC §9.1) -------------------------------------------
    F.row(
        Method::GET,
        "list_customers",
        "/api/v1/customers",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(licensing::list_customers),
    ),
    F.row(
        Method::POST,
        "create_customer",
        "/api/v1/customers",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(licensing::put_customer(app, call, true))),
    ),
    F.row(
        Method::GET,
        "get_customer",
        "/api/v1/customers/{id}",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(licensing::get_customer),
    ),
    F.row(
        Method::PATCH,
        "update_customer",
        "/api/v1/customers/{id}",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(licensing::put_customer(app, call, false))),
    ),
    F.row(
        Method::DELETE,
        "delete_customer",
        "/api/v1/customers/{id}",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(licensing::delete_customer(app, call))),
    )
    .without_body(),
    F.row(
        Method::GET,
        "list_download_keys",
        "/api/v1/download-keys",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(licensing::list_keys),
    ),
    F.row(
        Method::POST,
        "generate_download_key",
        "/api/v1/download-keys",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(licensing::create_key(app, call))),
    ),
    F.row(
        Method::GET,
        "get_download_key",
        "/api/v1/download-keys/{id}",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(licensing::get_key),
    ),
    F.row(
        Method::PATCH,
        "update_download_key",
        "/api/v1/download-keys/{id}",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(licensing::update_key(app, call))),
    ),
    F.row(
        Method::DELETE,
        "delete_download_key",
        "/api/v1/download-keys/{id}",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(licensing::delete_key(app, call))),
    )
    .without_body(),
    F.row(
        Method::GET,
        "list_activations",
        "/api/v1/download-keys/{id}/activations",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(licensing::list_activations),
    ),
    F.row(
        Method::DELETE,
        "delete_activation",
        "/api/v1/activations/{id}",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(licensing::delete_activation(app, call))),
    )
    .without_body(),
    F.row(
        Method::GET,
        "get_download_key_settings",
        "/api/v1/settings/download-keys",
        Need::Scope(Scope::ReadLicenses),
        Handler::Read(licensing::get_settings),
    ),
    F.row(
        Method::PUT,
        "put_download_key_settings",
        "/api/v1/settings/download-keys",
        Need::Scope(Scope::ManageLicenses),
        Handler::Write(|app, call| Box::pin(licensing::put_settings(app, call))),
    ),
];

/// A time as this family writes it: RFC 3339.
fn time(at: crate::model::Timestamp) -> String {
    at.to_rfc3339()
}

/// `{"data": …}` with `status`.
fn one<T: serde::Serialize>(
    status: http::StatusCode,
    data: T,
) -> http::Response<crate::http::Body> {
    crate::http::response::json(status, &crate::http::dto::Data { data })
}

/// A page as `{"data": […], "next_cursor"}`, each item through `view`.
fn list<T, V: serde::Serialize>(
    page: crate::store::Page<T>,
    view: impl Fn(&T) -> V,
) -> http::Response<crate::http::Body> {
    let data = page.items.iter().map(view).collect();
    crate::http::response::json(
        http::StatusCode::OK,
        &crate::http::dto::ListData {
            data,
            next_cursor: crate::http::request::cursor(page.next.as_deref()),
        },
    )
}

/// For `Option<Option<T>>` fields: `null` clears a field (`Some(None)`); absent leaves it
/// (`None`, with `#[serde(default)]`).
fn double<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}
