//! `/v1/plugins…` and `/v1/themes…` (SPEC §7.2): the WunderUpdates view of the release
//! catalogue. Both trees are the same handlers; the kind is the path's, and a product of
//! the other kind is as absent as another account's (`404`).
//!
//! The rules live in `service::catalog`; this module maps the seed's shapes onto them:
//! `license.type` (`no-license` | `static-keys` | `upkeep-keys`), versions as
//! `{"version","maturity","published"}`, the one-call release for `POST …/versions`, and
//! static keys, which are sealed at rest (`secrets::KeyVault`): found by a keyed hash,
//! the value sealed for its account and product.

use crate::api::account_of;
use crate::app::App;
use crate::error::Error;
use crate::http::dto::DeletedEnvelope;
use crate::http::request::{self, Input, Object};
use crate::http::route::Call;
use crate::http::{Body, response, upload};
use crate::model::catalog::{StaticKey, check_date, check_static_key};
use crate::model::{
    AccountPrefix, DomainError, LicenseModel, Maturity, Product, ProductId, ProductKind,
};
use crate::model::{Release, Timestamp};
use crate::secrets::KeyVault;
use crate::service::{self, Ctx};
use crate::store::PageRequest;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

/// Most static keys one product holds (its record is read on every download check).
pub const MAX_STATIC_KEYS: usize = 1000;

// ----- wire shapes -----------------------------------------------------------------

/// `license.type` on the wire.
fn license_type(model: LicenseModel) -> &'static str {
    match model {
        LicenseModel::Free => "no-license",
        LicenseModel::StaticKeys => "static-keys",
        LicenseModel::DownloadKeys => "upkeep-keys",
    }
}

/// # Errors
/// `400 unsupported_license_type` for `lemonsqueezy`, `400 invalid_request` for anything
/// else unknown.
fn parse_license_type(text: &str) -> Result<LicenseModel, Error> {
    match text {
        "no-license" => Ok(LicenseModel::Free),
        "static-keys" => Ok(LicenseModel::StaticKeys),
        "upkeep-keys" => Ok(LicenseModel::DownloadKeys),
        "lemonsqueezy" => Err(Error::bad(
            "unsupported_license_type",
            "license.type: `lemonsqueezy` is not supported: its keys live at Lemon Squeezy; \
             import them as download keys and use `upkeep-keys`",
        )),
        other => Err(Error::invalid(
            "license.type",
            format!(
                "must be `no-license`, `static-keys` or `upkeep-keys`, got `{}`",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct License {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Serialize)]
struct VersionView {
    version: String,
    maturity: &'static str,
    published: bool,
}

impl VersionView {
    fn new(release: &Release) -> Self {
        VersionView {
            version: release.version.clone(),
            maturity: release.maturity.as_str(),
            published: release.published,
        }
    }
}

#[derive(Debug, Serialize)]
struct ProductView {
    license: License,
    versions: Vec<VersionView>,
    slug: String,
}

impl ProductView {
    /// `releases` newest first.
    fn new(product: &Product, releases: &[Release]) -> Self {
        ProductView {
            license: License {
                kind: license_type(product.license).to_owned(),
            },
            versions: releases.iter().map(VersionView::new).collect(),
            slug: product.slug.clone(),
        }
    }
}

/// `{"status":200,"plugin":{…}}` or `"theme"`: the key is the kind's.
fn one(kind: ProductKind, view: ProductView) -> Response<Body> {
    let mut body = serde_json::Map::new();
    body.insert("status".to_owned(), 200.into());
    body.insert(
        kind.as_str().to_owned(),
        serde_json::to_value(view).unwrap_or_default(),
    );
    response::json(StatusCode::OK, &body)
}

/// The path's tree: `plugins` or `themes`.
fn plural(kind: ProductKind) -> &'static str {
    match kind {
        ProductKind::Theme => "themes",
        _ => "plugins",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProduct {
    slug: String,
    #[serde(default)]
    license: Option<Object<License>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProduct {
    license: Object<License>,
}

#[derive(Debug, Serialize)]
struct CreatedEnvelope {
    status: u16,
    data: [ProductView; 1],
}

#[derive(Debug, Serialize)]
struct ReleasedView {
    version: String,
    maturity: &'static str,
    published: bool,
    /// Unix seconds of the first publication, `null` for a draft.
    released: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ReleasedEnvelope {
    status: u16,
    version: ReleasedView,
}

#[derive(Debug, Serialize)]
struct VersionsEnvelope {
    status: u16,
    versions: Vec<VersionView>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyView {
    key: String,
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Debug, Serialize)]
struct KeysEnvelope {
    status: u16,
    keys: Vec<KeyView>,
}

#[derive(Debug, Serialize)]
struct KeyEnvelope {
    status: u16,
    #[serde(rename = "license-key")]
    license_key: KeyView,
}

#[derive(Debug, Serialize)]
struct MessageEnvelope {
    status: u16,
    message: String,
}

fn message(text: String) -> Response<Body> {
    response::json(
        StatusCode::OK,
        &MessageEnvelope {
            status: 200,
            message: text,
        },
    )
}

fn deleted() -> Response<Body> {
    response::json(
        StatusCode::OK,
        &DeletedEnvelope {
            status: 200,
            message: None,
        },
    )
}

// ----- lookups ---------------------------------------------------------------------

/// The account's product `slug` of `kind`; another kind is `404` like a missing slug.
fn find(
    ctx: &Ctx<'_>,
    account: &AccountPrefix,
    slug: &str,
    kind: ProductKind,
) -> Result<Product, Error> {
    match ctx.store.product_by_slug(account, slug)? {
        Some(product) if product.kind == kind => Ok(product),
        _ => Err(Error::NotFound(format!(
            "no {} with slug `{}`",
            kind.as_str(),
            slug.chars().take(64).collect::<String>()
        ))),
    }
}

/// A product's versions, newest first.
fn versions_of(
    ctx: &Ctx<'_>,
    account: &AccountPrefix,
    product: &Product,
) -> Result<Vec<Release>, Error> {
    let mut releases = ctx.store.releases(account, product.id)?;
    service::catalog::sort_newest_first(&mut releases);
    Ok(releases)
}

/// The account's plugin and theme slugs, for `GET /v1/account` (`products`).
///
/// # Errors
/// The store failed.
pub(super) fn slugs(
    app: &App,
    account: &AccountPrefix,
) -> Result<(Vec<String>, Vec<String>), Error> {
    // Cached with the update checks' views (no record read while nothing changed).
    let slugs = app.public.views.slugs(&app.store, account)?;
    Ok((slugs.plugins.clone(), slugs.themes.clone()))
}

// ----- products --------------------------------------------------------------------

/// `GET /v1/plugins[?limit=&cursor=]`: a page of the account's products of the kind, each
/// with its versions. The page is filled from the account's products in id order,
/// skipping the other kinds; `next_cursor` as in SPEC §3.
pub(super) fn list(app: &App, call: &Call, kind: ProductKind) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let ctx = app.ctx(Some(caller), call.now);
    let wanted = request::paging(call.query())?;
    let mut items = Vec::new();
    let mut after = wanted.after.clone();
    let next = loop {
        let page = service::catalog::products(
            &ctx,
            &account,
            &PageRequest {
                after,
                limit: wanted.limit - items.len(),
            },
        )?;
        for product in page.items.iter().filter(|p| p.kind == kind) {
            let releases = versions_of(&ctx, &account, product)?;
            items.push(ProductView::new(product, &releases));
        }
        match page.next {
            Some(next) if items.len() < wanted.limit => after = Some(next),
            next => break next,
        }
    };
    let mut body = serde_json::Map::new();
    body.insert("status".to_owned(), 200.into());
    body.insert(
        plural(kind).to_owned(),
        serde_json::to_value(items).unwrap_or_default(),
    );
    body.insert(
        "next_cursor".to_owned(),
        request::cursor(next.as_deref()).into(),
    );
    Ok(response::json(StatusCode::OK, &body))
}

/// `POST /v1/plugins` `{"slug","license"?:{"type"}}`: creates the product (its name is
/// its slug; `license` defaults to `no-license`).
/// `{"status":200,"data":[{"versions":[],"slug","license"}]}`.
pub(super) async fn create(
    app: &App,
    call: Call,
    kind: ProductKind,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let body: CreateProduct = request::json(&call.input)?;
    let license = match &body.license {
        Some(Object(license)) => parse_license_type(&license.kind)?,
        None => LicenseModel::Free,
    };
    let changes = service::catalog::ProductChanges {
        license: Some(license),
        ..Default::default()
    };
    let product = app
        .write(caller, call.now, move |ctx| {
            service::catalog::create_product(ctx, &account, body.slug, kind, changes)
        })
        .await?;
    Ok(response::json(
        StatusCode::OK,
        &CreatedEnvelope {
            status: 200,
            data: [ProductView::new(&product, &[])],
        },
    ))
}

/// `GET /v1/plugins/{slug}`: `{"status":200,"plugin":{…}}`.
pub(super) fn get(app: &App, call: &Call, kind: ProductKind) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let ctx = app.ctx(Some(caller), call.now);
    let product = find(&ctx, &account, &call.param("slug"), kind)?;
    let releases = versions_of(&ctx, &account, &product)?;
    Ok(one(kind, ProductView::new(&product, &releases)))
}

/// `PUT /v1/plugins/{slug}` `{"license":{"type"}}`: changes the license type (nothing
/// else changes here). `{"status":200,"plugin":{…}}`.
pub(super) async fn update(
    app: &App,
    call: Call,
    kind: ProductKind,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let body: UpdateProduct = request::json(&call.input)?;
    let license = parse_license_type(&body.license.0.kind)?;
    let slug = call.param("slug").into_owned();
    let product = app
        .write(caller, call.now, move |ctx| {
            let product = find(ctx, &account, &slug, kind)?;
            service::catalog::update_product(
                ctx,
                &account,
                product.id,
                service::catalog::ProductChanges {
                    license: Some(license),
                    ..Default::default()
                },
            )
        })
        .await?;
    let ctx = app.ctx(Some(caller), call.now);
    let releases = versions_of(&ctx, &account, &product)?;
    Ok(one(kind, ProductView::new(&product, &releases)))
}

/// `DELETE /v1/plugins/{slug}`: the product, its versions, files and static keys, at
/// once (permanent). `{"status":200,"message":null}`.
pub(super) async fn delete(
    app: &App,
    call: Call,
    kind: ProductKind,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let slug = call.param("slug").into_owned();
    app.write(caller, call.now, move |ctx| {
        let product = find(ctx, &account, &slug, kind)?;
        service::catalog::delete_product(ctx, &account, product.id)
    })
    .await?;
    Ok(deleted())
}

// ----- versions --------------------------------------------------------------------

/// `GET /v1/plugins/{slug}/versions`: `{"status":200,"versions":[{"version","maturity",
/// "published"}]}`, newest first (all of them: a product's versions are few).
pub(super) fn versions(app: &App, call: &Call, kind: ProductKind) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let ctx = app.ctx(Some(caller), call.now);
    let product = find(&ctx, &account, &call.param("slug"), kind)?;
    let releases = versions_of(&ctx, &account, &product)?;
    Ok(response::json(
        StatusCode::OK,
        &VersionsEnvelope {
            status: 200,
            versions: releases.iter().map(VersionView::new).collect(),
        },
    ))
}

/// A yes/no field of an upload (`draft`): `true`/`1`/`yes` or `false`/`0`/`no`/empty.
fn flag(field: &str, value: Option<&str>) -> Result<bool, Error> {
    match value.map(str::trim) {
        None | Some("" | "false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(_) => Err(Error::invalid(field, "must be `true` or `false`")),
    }
}

/// `POST /v1/plugins/{slug}/versions`: the package (a raw zip, or multipart with a `file`
/// part), released as `POST /api/v1/products/{id}/releases` does: read, the version
/// created (or found, with identical content), the file stored as primary, published
/// unless `draft=true` (query or field). Optional fields `maturity`, `release_notes`.
/// `{"status":200,"version":{"version","maturity","published","released"}}`.
pub(super) async fn release(
    app: &App,
    mut call: Call,
    kind: ProductKind,
) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let slug = call.param("slug").into_owned();
    // Before the upload: a missing product costs the client no upload.
    find(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        &slug,
        kind,
    )?;
    let received = upload::receive(app, &mut call, &format!("{slug}.zip")).await?;
    let draft_query = request::query_param(call.query(), "draft");
    // A refused field discards the stored upload before the answer goes out.
    let fields = (|| {
        let draft = flag("draft", received.field("draft").or(draft_query.as_deref()))?;
        let maturity = match received.field("maturity") {
            None | Some("") => None,
            Some(text) => Some(Maturity::parse(text).ok_or_else(|| {
                Error::invalid("maturity", "must be one of dev, alpha, beta, rc, stable")
            })?),
        };
        Ok::<_, Error>((draft, maturity))
    })();
    let (draft, maturity) = match fields {
        Ok(fields) => fields,
        Err(err) => return Err(received.refuse(err).await),
    };
    let options = service::catalog::ReleaseOptions {
        maturity,
        release_notes: received.field("release_notes").map(str::to_owned),
        draft,
        ..Default::default()
    };
    let caller = call.caller()?;
    let upload = received.upload;
    let released = app
        .write(caller, call.now, move |ctx| {
            let product = find(ctx, &account, &slug, kind)?;
            service::catalog::release_package(
                ctx,
                &account,
                service::catalog::ReleaseTarget::Product(product.id),
                upload,
                options,
            )
        })
        .await?;
    let release = &released.release;
    Ok(response::json(
        StatusCode::OK,
        &ReleasedEnvelope {
            status: 200,
            version: ReleasedView {
                version: release.version.clone(),
                maturity: release.maturity.as_str(),
                published: release.published,
                released: release.released_at.map(Timestamp::as_secs),
            },
        },
    ))
}

/// `DELETE /v1/plugins/{slug}/versions/{version}`: the version and its files.
/// `{"status":200,"message":null}`.
pub(super) async fn delete_version(
    app: &App,
    call: Call,
    kind: ProductKind,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let slug = call.param("slug").into_owned();
    let version = call.param("version").into_owned();
    app.write(caller, call.now, move |ctx| {
        let product = find(ctx, &account, &slug, kind)?;
        let release = service::catalog::release_by_version(ctx, &account, product.id, &version)
            .map_err(|err| match err {
                Error::NotFound(_) => Error::NotFound(format!(
                    "{} `{}` has no version {}",
                    kind.as_str(),
                    product.slug,
                    version.chars().take(64).collect::<String>()
                )),
                other => other,
            })?;
        service::catalog::delete_version(ctx, &account, release.id)
    })
    .await?;
    Ok(deleted())
}

// ----- static keys -----------------------------------------------------------------

/// What a sealed static key is bound to: its account and product.
fn aad(account: &AccountPrefix, product: &Product) -> Vec<u8> {
    format!("upkeep static key\0{account}\0{}", product.id).into_bytes()
}

/// One key of a request, checked; `at` names it in errors (`key`, `[2].key`).
fn checked(at: &str, key: KeyView) -> Result<KeyView, Error> {
    check_static_key(&key.key).map_err(|why| Error::invalid(&format!("{at}key"), why))?;
    if let Some(date) = &key.expires {
        check_date(date).map_err(|why| Error::invalid(&format!("{at}expires"), why))?;
    }
    Ok(key)
}

/// The vault static keys are sealed with (SPEC §9 *At rest*).
fn vault(app: &App) -> KeyVault {
    KeyVault::new(app.store.server_key())
}

/// The lookup hash of a static key: keyed by the server key, per account, of the key as
/// given (static keys compare exactly).
fn lookup(vault: &KeyVault, account: &AccountPrefix, key: &str) -> [u8; 32] {
    vault.lookup_hash(&account.to_string(), key)
}

/// `keys` sealed for `product` (sealing happens before the write: it needs the OS RNG,
/// whose failure is ours, not the client's).
fn seal_keys(
    vault: &KeyVault,
    account: &AccountPrefix,
    product: &Product,
    keys: &[KeyView],
) -> Result<Vec<StaticKey>, Error> {
    let aad = aad(account, product);
    keys.iter()
        .map(|key| {
            Ok(StaticKey {
                lookup: lookup(vault, account, &key.key),
                sealed: vault
                    .seal(&key.key, &aad)
                    .map_err(|err| Error::Internal(Box::new(err)))?,
                expires: key.expires.clone(),
            })
        })
        .collect()
}

/// `product`'s key `sealed`, opened.
fn open_key(
    vault: &KeyVault,
    account: &AccountPrefix,
    product: &Product,
    sealed: &StaticKey,
) -> Result<KeyView, Error> {
    Ok(KeyView {
        key: vault
            .open(&sealed.sealed, &aad(account, product))
            .map_err(|err| Error::Internal(Box::new(err)))?,
        expires: sealed.expires.clone(),
    })
}

/// Inside a static-key write: the product the keys were sealed for is still the one
/// (ids are never reused, so a product deleted and created again meanwhile differs).
fn same_product(product: &Product, sealed_for: ProductId) -> Result<(), DomainError> {
    if product.id == sealed_for {
        Ok(())
    } else {
        Err(DomainError::Conflict {
            code: "product_changed",
            message: format!(
                "{} {} was replaced while the keys were written; try again",
                product.kind.as_str(),
                product.slug
            ),
        })
    }
}

fn no_such_key(kind: ProductKind, slug: &str) -> Error {
    // The key itself stays out of the message: error messages reach the log.
    Error::NotFound(format!("{} {slug} has no such license key", kind.as_str()))
}

/// `GET /v1/plugins/{slug}/license/keys`: `{"status":200,"keys":[{"key","expires"}]}`,
/// the keys opened, in the order they were added.
pub(super) fn keys(app: &App, call: &Call, kind: ProductKind) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let ctx = app.ctx(Some(caller), call.now);
    let product = find(&ctx, &account, &call.param("slug"), kind)?;
    let vault = vault(app);
    let keys = product
        .static_keys
        .iter()
        .map(|sealed| open_key(&vault, &account, &product, sealed))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(response::json(
        StatusCode::OK,
        &KeysEnvelope { status: 200, keys },
    ))
}

/// A JSON array body.
fn key_list(input: &Input) -> Result<Vec<Object<KeyView>>, Error> {
    let first = input.body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Err(Error::InvalidRequest(
            "request body must be a JSON array of keys: [{\"key\":…,\"expires\"?:\"YYYY-MM-DD\"}, …]"
                .to_owned(),
        ));
    }
    request::decode_json(&input.body)
}

/// `POST /v1/plugins/{slug}/license/keys` `[{"key","expires"?}, …]`: replaces the list.
/// `{"status":200,"message":"License on plugin my-new-plugin were updated"}` (the seed's
/// words). A bad or repeated key is a `400` naming it by index; nothing is written.
pub(super) async fn replace_keys(
    app: &App,
    call: Call,
    kind: ProductKind,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let list = key_list(&call.input)?;
    if list.len() > MAX_STATIC_KEYS {
        return Err(Error::invalid(
            "keys",
            format!(
                "at most {MAX_STATIC_KEYS} keys per product, got {}",
                list.len()
            ),
        ));
    }
    let mut keys = Vec::with_capacity(list.len());
    for (i, Object(key)) in list.into_iter().enumerate() {
        let key = checked(&format!("[{i}]."), key)?;
        if let Some(first) = keys.iter().position(|k: &KeyView| k.key == key.key) {
            return Err(Error::invalid(
                &format!("[{i}].key"),
                format!("repeats [{first}].key: keys are unique per product"),
            ));
        }
        keys.push(key);
    }
    let slug = call.param("slug").into_owned();
    let product = find(&app.ctx(Some(caller), call.now), &account, &slug, kind)?;
    let sealed = seal_keys(&vault(app), &account, &product, &keys)?;
    let (product, ()) = app
        .write(caller, call.now, move |ctx| {
            let product = find(ctx, &account, &slug, kind)?;
            service::catalog::update_static_keys(ctx, &account, product.id, move |current| {
                same_product(current, product.id)?;
                current.static_keys = sealed;
                Ok(())
            })
        })
        .await?;
    Ok(message(format!(
        "License on {} {} were updated",
        kind.as_str(),
        product.slug
    )))
}

/// `PUT /v1/plugins/{slug}/license/keys` `{"key","expires"?}`: adds one key.
/// `{"status":200,"message":"License key K was added to plugin my-new-plugin"}`;
/// `409 license_key_exists` when the product has it already.
pub(super) async fn add_key(
    app: &App,
    call: Call,
    kind: ProductKind,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let key = checked("", request::json::<KeyView>(&call.input)?)?;
    let slug = call.param("slug").into_owned();
    let product = find(&app.ctx(Some(caller), call.now), &account, &slug, kind)?;
    let mut sealed = seal_keys(&vault(app), &account, &product, std::slice::from_ref(&key))?;
    let sealed = sealed
        .pop()
        .ok_or_else(|| Error::Internal("one key sealed into none".into()))?;
    let (product, ()) = app
        .write(caller, call.now, move |ctx| {
            let product = find(ctx, &account, &slug, kind)?;
            service::catalog::update_static_keys(ctx, &account, product.id, move |current| {
                same_product(current, product.id)?;
                if current
                    .static_keys
                    .iter()
                    .any(|k| k.lookup == sealed.lookup)
                {
                    return Err(DomainError::Conflict {
                        code: "license_key_exists",
                        message: format!(
                            "{} {} has this license key already",
                            current.kind.as_str(),
                            current.slug
                        ),
                    });
                }
                if current.static_keys.len() >= MAX_STATIC_KEYS {
                    return Err(DomainError::Conflict {
                        code: "too_many_license_keys",
                        message: format!(
                            "{} {} holds {MAX_STATIC_KEYS} license keys, the most a product may",
                            current.kind.as_str(),
                            current.slug
                        ),
                    });
                }
                current.static_keys.push(sealed);
                Ok(())
            })
        })
        .await?;
    Ok(message(format!(
        "License key {} was added to {} {}",
        key.key,
        kind.as_str(),
        product.slug
    )))
}

/// `GET /v1/plugins/{slug}/license/keys/{key}`: `{"status":200,"license-key":{"key",
/// "expires"}}`; `404` for a key the product does not have.
pub(super) fn get_key(app: &App, call: &Call, kind: ProductKind) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let ctx = app.ctx(Some(caller), call.now);
    let product = find(&ctx, &account, &call.param("slug"), kind)?;
    let vault = vault(app);
    let wanted = lookup(&vault, &account, &call.param("key"));
    let found = product
        .static_keys
        .iter()
        .find(|k| k.lookup == wanted)
        .ok_or_else(|| no_such_key(kind, &product.slug))?;
    Ok(response::json(
        StatusCode::OK,
        &KeyEnvelope {
            status: 200,
            license_key: open_key(&vault, &account, &product, found)?,
        },
    ))
}

/// `DELETE /v1/plugins/{slug}/license/keys/{key}`: removes one key.
/// `{"status":200,"message":"License key K on plugin my-new-plugin was removed."}`;
/// `404` for a key the product does not have.
pub(super) async fn delete_key(
    app: &App,
    call: Call,
    kind: ProductKind,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let key = call.param("key").into_owned();
    let slug = call.param("slug").into_owned();
    let wanted = lookup(&vault(app), &account, &key);
    let (product, ()) = app
        .write(caller, call.now, move |ctx| {
            let product = find(ctx, &account, &slug, kind)?;
            // Checked before the write too: an unknown key writes nothing.
            if !product.static_keys.iter().any(|k| k.lookup == wanted) {
                return Err(no_such_key(kind, &product.slug));
            }
            service::catalog::update_static_keys(ctx, &account, product.id, move |current| {
                let before = current.static_keys.len();
                current.static_keys.retain(|k| k.lookup != wanted);
                if current.static_keys.len() == before {
                    return Err(DomainError::Missing(format!(
                        "{} {} has no such license key",
                        current.kind.as_str(),
                        current.slug
                    )));
                }
                Ok(())
            })
        })
        .await?;
    Ok(message(format!(
        "License key {key} on {} {} was removed.",
        kind.as_str(),
        product.slug
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::ServerKey;

    #[test]
    fn license_types_map_both_ways() {
        for model in [
            LicenseModel::Free,
            LicenseModel::StaticKeys,
            LicenseModel::DownloadKeys,
        ] {
            assert_eq!(parse_license_type(license_type(model)).unwrap(), model);
        }
        let err = parse_license_type("lemonsqueezy").unwrap_err();
        assert_eq!(err.code(), "unsupported_license_type");
        assert_eq!(parse_license_type("free").unwrap_err().status(), 400);
    }

    #[test]
    fn static_keys_are_sealed_for_their_account_and_product() {
        let vault = KeyVault::new(&ServerKey::from_bytes([3; 32]));
        let acme = AccountPrefix::parse("acme").expect("prefix");
        let other = AccountPrefix::parse("other").expect("prefix");
        let product = |id| Product {
            id: ProductId(id),
            account: acme,
            slug: "my-plugin".to_owned(),
            kind: ProductKind::Plugin,
            name: "my-plugin".to_owned(),
            group_id: crate::model::catalog::DEFAULT_GROUP,
            short_description: None,
            description: None,
            homepage: None,
            author: None,
            author_homepage: None,
            icons: Default::default(),
            banners: Default::default(),
            license: LicenseModel::StaticKeys,
            require_activation: false,
            published: true,
            static_keys: Vec::new(),
            created_at: Timestamp::from_secs(0),
            updated_at: Timestamp::from_secs(0),
        };
        let key = KeyView {
            key: "some-license-key".to_owned(),
            expires: Some("2025-12-31".to_owned()),
        };
        let sealed = seal_keys(&vault, &acme, &product(7), std::slice::from_ref(&key)).unwrap();
        let sealed = &sealed[0];
        assert!(
            !sealed
                .sealed
                .windows(key.key.len())
                .any(|w| w == key.key.as_bytes())
        );
        assert_eq!(sealed.lookup, lookup(&vault, &acme, "some-license-key"));
        assert_ne!(sealed.lookup, lookup(&vault, &other, "some-license-key"));
        let opened = open_key(&vault, &acme, &product(7), sealed).unwrap();
        assert_eq!(
            (opened.key.as_str(), opened.expires.as_deref()),
            ("some-license-key", Some("2025-12-31"))
        );
        // Moved to another product or account, it does not open.
        assert!(open_key(&vault, &acme, &product(8), sealed).is_err());
        assert!(open_key(&vault, &other, &product(7), sealed).is_err());
    }
}
