//! The release catalogue's use cases (SPEC §7): groups, products, versions, files, and
//! the one-call release that reads a package. Every API family and the CLI call these; the
//! rules of §7 live here once.
//!
//! Who may touch which account is decided by the caller of these functions: each takes
//! the account it works on, and the store reaches only that account's records (another
//! account's id is `404`, never `403`).

use super::{Ctx, Done, Event};
use crate::error::Error;
use crate::model::catalog::{
    Banners, DEFAULT_GROUP, Icons, check_filename, check_name, check_slug, check_url,
};
use crate::model::{
    AccountPrefix, DomainError, FileId, FileRecord, Group, GroupId, LicenseModel, Maturity,
    Product, ProductId, ProductKind, Release, Timestamp, Version, VersionId,
};
use crate::package::{self, PackageInfo};
use crate::store::{Catalogued, Page, PageRequest, Staged};

/// Longest description, release notes or text field (bytes).
pub const MAX_TEXT: usize = 64 * 1024;
/// Longest short text field (bytes): author, requirement versions, file descriptions.
pub const MAX_SHORT: usize = 1024;

/// A field that may be set, cleared (`Some(None)`, JSON `null`) or left alone (`None`).
pub type Change<T> = Option<Option<T>>;

/// What a product create or update sets (absent fields are left alone; on create they
/// take their defaults).
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub group_id: Option<GroupId>,
    pub short_description: Change<String>,
    pub description: Change<String>,
    pub homepage: Change<String>,
    pub author: Change<String>,
    pub author_homepage: Change<String>,
    pub icons: Option<Icons>,
    pub banners: Option<Banners>,
    pub license: Option<LicenseModel>,
    pub require_activation: Option<bool>,
    pub published: Option<bool>,
}

/// What a version create or update sets.
#[derive(Debug, Clone, Default)]
pub struct VersionChanges {
    pub maturity: Option<Maturity>,
    pub release_notes: Change<String>,
    pub requires: Change<String>,
    pub tested: Change<String>,
    pub requires_php: Change<String>,
    pub published: Option<bool>,
    pub rollout: Option<u8>,
}

/// What a file create or update sets.
#[derive(Debug, Clone, Default)]
pub struct FileChanges {
    pub name: Option<String>,
    pub description: Change<String>,
    pub primary: Option<bool>,
    pub published: Option<bool>,
}

/// An uploaded content, stored and pinned, with what the request said about it.
#[derive(Debug)]
pub struct Upload {
    pub staged: Staged,
    /// The file name to serve it under (`Content-Disposition`).
    pub filename: String,
    pub content_type: String,
}

/// How a one-call release finds its product.
#[derive(Debug, Clone)]
pub enum ReleaseTarget {
    /// This product (`POST /api/v1/products/{id}/releases`).
    Product(ProductId),
    /// The product whose slug the package names, created when missing with this license
    /// model (`POST /api/v1/releases`, `upkeep release push`). `kind` must match.
    BySlug {
        license: LicenseModel,
        kind: Option<ProductKind>,
    },
}

/// The name the edge gives a release package that came without one (a raw body with no
/// `?filename=`); the release stores it as `{slug}-{version}.zip`.
pub const UNNAMED_PACKAGE: &str = "package.zip";

/// Options of a one-call release.
#[derive(Debug, Clone, Default)]
pub struct ReleaseOptions {
    /// The version, for apps (whose packages are not read), or to check the package's.
    pub version: Option<String>,
    pub maturity: Option<Maturity>,
    pub release_notes: Option<String>,
    pub rollout: Option<u8>,
    /// Leave the version unpublished.
    pub draft: bool,
}

/// What a one-call release did.
#[derive(Debug, Clone)]
pub struct Released {
    pub product: Product,
    pub release: Release,
    /// The product was created by this call.
    pub product_created: bool,
    /// The version was created by this call (`false`: the same content was already that
    /// version; nothing changed).
    pub version_created: bool,
}

// ----- checks --------------------------------------------------------------------

fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Error> {
    match value {
        Some(v) if v.len() > max => Err(Error::invalid(
            field,
            format!("must be at most {max} bytes, got {}", v.len()),
        )),
        Some(v) if v.contains('\0') => Err(Error::invalid(field, "must not contain NUL")),
        Some(v) if v.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn url(field: &str, value: Option<String>) -> Result<Option<String>, Error> {
    match value {
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => {
            check_url(&v).map_err(|why| Error::invalid(field, why))?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

fn set<T>(slot: &mut T, change: Option<T>) {
    if let Some(value) = change {
        *slot = value;
    }
}

fn apply_product(product: &mut Product, changes: ProductChanges) -> Result<(), Error> {
    if let Some(name) = changes.name {
        check_name(&name).map_err(|why| Error::invalid("name", why))?;
        product.name = name;
    }
    set(&mut product.group_id, changes.group_id);
    if let Some(v) = changes.short_description {
        product.short_description = text("short_description", v, MAX_SHORT)?;
    }
    if let Some(v) = changes.description {
        product.description = text("description", v, MAX_TEXT)?;
    }
    if let Some(v) = changes.homepage {
        product.homepage = url("homepage", v)?;
    }
    if let Some(v) = changes.author {
        product.author = text("author", v, MAX_SHORT)?;
    }
    if let Some(v) = changes.author_homepage {
        product.author_homepage = url("author_homepage", v)?;
    }
    if let Some(icons) = changes.icons {
        product.icons = Icons {
            x1: url("icons.1x", icons.x1)?,
            x2: url("icons.2x", icons.x2)?,
            svg: url("icons.svg", icons.svg)?,
        };
    }
    if let Some(banners) = changes.banners {
        product.banners = Banners {
            low: url("banners.low", banners.low)?,
            high: url("banners.high", banners.high)?,
        };
    }
    set(&mut product.license, changes.license);
    set(&mut product.require_activation, changes.require_activation);
    set(&mut product.published, changes.published);
    Ok(())
}

fn short_field(field: &str, value: Change<String>, slot: &mut Option<String>) -> Result<(), Error> {
    if let Some(v) = value {
        *slot = text(field, v, MAX_SHORT)?;
    }
    Ok(())
}

/// Applies version changes; publishing needs a published primary file.
fn apply_version(
    release: &mut Release,
    changes: VersionChanges,
    now: Timestamp,
) -> Result<(), Error> {
    set(&mut release.maturity, changes.maturity);
    if let Some(v) = changes.release_notes {
        release.release_notes = text("release_notes", v, MAX_TEXT)?;
    }
    short_field("requires", changes.requires, &mut release.requires)?;
    short_field("tested", changes.tested, &mut release.tested)?;
    short_field(
        "requires_php",
        changes.requires_php,
        &mut release.requires_php,
    )?;
    if let Some(rollout) = changes.rollout {
        if !(1..=100).contains(&rollout) {
            return Err(Error::invalid("rollout", "must be 1–100 (% of sites)"));
        }
        release.rollout = rollout;
    }
    if let Some(published) = changes.published {
        if published && !release.published {
            let ready = release.primary().is_some_and(|f| f.published);
            if !ready {
                return Err(Error::conflict(
                    "version_has_no_file",
                    format!(
                        "version {} has no published primary file to offer; upload one first",
                        release.version
                    ),
                ));
            }
            release.released_at.get_or_insert(now);
        }
        release.published = published;
    }
    Ok(())
}

fn domain(err: Error) -> DomainError {
    match err {
        Error::InvalidRequest(message) => DomainError::Invalid(message),
        Error::NotFound(message) => DomainError::Missing(message),
        Error::Coded { code, message, .. } => DomainError::Conflict { code, message },
        other => DomainError::Invalid(other.to_string()),
    }
}

/// `409 version_published` unless the version is a draft.
fn require_draft(release: &Release) -> Result<(), DomainError> {
    if release.published {
        return Err(DomainError::Conflict {
            code: "version_published",
            message: format!(
                "version {} is published: its files are immutable (unpublish it, or release a \
                 new version)",
                release.version
            ),
        });
    }
    Ok(())
}

fn changed<'a, T>(
    ctx: &Ctx<'a>,
    pending: crate::store::Pending<'a, T>,
    event: impl FnOnce(&T) -> Vec<Event> + Send + 'a,
) -> Done<'a, T> {
    Done::new(ctx, pending, event)
}

// ----- groups --------------------------------------------------------------------

/// # Errors
/// The store failed.
pub fn groups(ctx: &Ctx<'_>, account: &AccountPrefix) -> Result<Vec<Group>, Error> {
    Ok(ctx.store.groups(account)?)
}

/// # Errors
/// `NotFound`.
pub fn group(ctx: &Ctx<'_>, account: &AccountPrefix, id: GroupId) -> Result<Group, Error> {
    ctx.store
        .group(account, id)?
        .ok_or_else(|| Error::NotFound(format!("no group with id {id}")))
}

/// Creates a group (`id: None`) or renames one.
///
/// # Errors
/// `InvalidRequest` for a bad name; `409 group_exists`, `group_is_default`; `NotFound`.
pub fn put_group<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: Option<GroupId>,
    name: String,
) -> Result<Done<'a, Group>, Error> {
    check_name(&name).map_err(|why| Error::invalid("name", why))?;
    let now = ctx.now;
    let pending = ctx.store.put_group(account, id, |current| {
        Ok(match current {
            Some(mut group) => {
                group.name = name;
                group.updated_at = now;
                group
            }
            None => Group {
                id: GroupId(0),
                account: *account,
                name,
                created_at: now,
                updated_at: now,
            },
        })
    })?;
    let account = *account;
    Ok(changed(ctx, pending, move |g: &Group| {
        vec![Event::CatalogChanged {
            account,
            what: format!("group {} ({})", g.id, g.name),
        }]
    }))
}

/// # Errors
/// `NotFound`; `409 group_is_default`, `group_not_empty`.
pub fn delete_group<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: GroupId,
) -> Result<Done<'a, Group>, Error> {
    let pending = ctx.store.delete_group(account, id)?;
    let account = *account;
    Ok(changed(ctx, pending, move |g: &Group| {
        vec![Event::CatalogChanged {
            account,
            what: format!("deleted group {} ({})", g.id, g.name),
        }]
    }))
}

// ----- products ------------------------------------------------------------------

/// # Errors
/// The store failed, or a bad cursor.
pub fn products(
    ctx: &Ctx<'_>,
    account: &AccountPrefix,
    page: &PageRequest,
) -> Result<Page<Product>, Error> {
    Ok(ctx.store.products_page(account, page)?)
}

/// # Errors
/// `NotFound`.
pub fn product(ctx: &Ctx<'_>, account: &AccountPrefix, id: ProductId) -> Result<Product, Error> {
    ctx.store
        .product(account, id)?
        .ok_or_else(|| Error::NotFound(format!("no product with id {id}")))
}

/// # Errors
/// `NotFound`.
pub fn product_by_slug(
    ctx: &Ctx<'_>,
    account: &AccountPrefix,
    slug: &str,
) -> Result<Product, Error> {
    ctx.store
        .product_by_slug(account, slug)?
        .ok_or_else(|| Error::NotFound(format!("no product with slug `{slug}`")))
}

/// A product with its versions, newest version first.
///
/// # Errors
/// `NotFound`.
pub fn catalogued(
    ctx: &Ctx<'_>,
    account: &AccountPrefix,
    id: ProductId,
) -> Result<Catalogued, Error> {
    let mut found = ctx
        .store
        .catalogued(account, id)?
        .ok_or_else(|| Error::NotFound(format!("no product with id {id}")))?;
    sort_newest_first(&mut found.releases);
    Ok(found)
}

/// Sorts versions newest (highest) first.
pub fn sort_newest_first(releases: &mut [Release]) {
    releases.sort_by_cached_key(|r| std::cmp::Reverse(r.parsed().order_key()));
}

/// Creates a product.
///
/// # Errors
/// `InvalidRequest` naming the field; `409 product_exists`.
pub fn create_product<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    slug: String,
    kind: ProductKind,
    changes: ProductChanges,
) -> Result<Done<'a, Product>, Error> {
    check_slug(&slug).map_err(|why| Error::invalid("slug", why))?;
    let name = changes.name.clone().unwrap_or_else(|| slug.clone());
    let mut product = Product {
        id: ProductId(0),
        account: *account,
        slug,
        kind,
        name,
        group_id: DEFAULT_GROUP,
        short_description: None,
        description: None,
        homepage: None,
        author: None,
        author_homepage: None,
        icons: Icons::default(),
        banners: Banners::default(),
        license: LicenseModel::Free,
        require_activation: false,
        published: true,
        static_keys: Vec::new(),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    apply_product(&mut product, changes)?;
    let pending = ctx.store.put_product(account, None, move |_| Ok(product))?;
    let account = *account;
    Ok(changed(ctx, pending, move |p: &Product| {
        vec![Event::CatalogChanged {
            account,
            what: format!("created product {} ({})", p.id, p.slug),
        }]
    }))
}

/// Changes a product (its slug and kind never change).
///
/// # Errors
/// `InvalidRequest` naming the field; `NotFound`; `409 product_exists` for a taken name.
pub fn update_product<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: ProductId,
    changes: ProductChanges,
) -> Result<Done<'a, Product>, Error> {
    let now = ctx.now;
    let pending = ctx.store.put_product(account, Some(id), move |current| {
        let mut product =
            current.ok_or_else(|| DomainError::Missing(format!("no product with id {id}")))?;
        apply_product(&mut product, changes).map_err(domain)?;
        product.updated_at = now;
        Ok(product)
    })?;
    let account = *account;
    Ok(changed(ctx, pending, move |p: &Product| {
        vec![Event::CatalogChanged {
            account,
            what: format!("changed product {} ({})", p.id, p.slug),
        }]
    }))
}

/// Changes a product's static keys (`change` edits the list; the service of §7.2 seals
/// them).
///
/// # Errors
/// `NotFound`, or what `change` refuses.
pub fn update_static_keys<'a, T: Send + 'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: ProductId,
    change: impl FnOnce(&mut Product) -> Result<T, DomainError>,
) -> Result<Done<'a, (Product, T)>, Error> {
    let now = ctx.now;
    let mut extra = None;
    let pending = ctx.store.put_product(account, Some(id), |current| {
        let mut product =
            current.ok_or_else(|| DomainError::Missing(format!("no product with id {id}")))?;
        extra = Some(change(&mut product)?);
        product.updated_at = now;
        Ok(product)
    })?;
    let extra =
        extra.ok_or_else(|| Error::Internal("static keys changed without a result".into()))?;
    let account = *account;
    Ok(changed(
        ctx,
        pending.map(move |p| (p, extra)),
        move |(p, _): &(Product, T)| {
            vec![Event::CatalogChanged {
                account,
                what: format!("changed the static keys of product {} ({})", p.id, p.slug),
            }]
        },
    ))
}

/// Copies a product's details (not its versions or keys) under a new slug and name.
///
/// # Errors
/// As [`create_product`]; `NotFound`.
pub fn duplicate_product<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: ProductId,
    slug: String,
    name: String,
) -> Result<Done<'a, Product>, Error> {
    let source = product(ctx, account, id)?;
    let changes = ProductChanges {
        name: Some(name),
        group_id: Some(source.group_id),
        short_description: Some(source.short_description),
        description: Some(source.description),
        homepage: Some(source.homepage),
        author: Some(source.author),
        author_homepage: Some(source.author_homepage),
        icons: Some(source.icons),
        banners: Some(source.banners),
        license: Some(source.license),
        require_activation: Some(source.require_activation),
        published: Some(source.published),
    };
    create_product(ctx, account, slug, source.kind, changes)
}

/// Deletes a product with its versions, files and static keys (blobs no longer used go
/// once this is durable).
///
/// # Errors
/// `NotFound`.
pub fn delete_product<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: ProductId,
) -> Result<Done<'a, Catalogued>, Error> {
    let pending = ctx.store.delete_product(account, id)?;
    let account = *account;
    Ok(changed(ctx, pending, move |c: &Catalogued| {
        vec![Event::CatalogChanged {
            account,
            what: format!(
                "deleted product {} ({}) with {} version(s)",
                c.product.id,
                c.product.slug,
                c.releases.len()
            ),
        }]
    }))
}

// ----- versions ------------------------------------------------------------------

/// # Errors
/// `NotFound`.
pub fn release(ctx: &Ctx<'_>, account: &AccountPrefix, id: VersionId) -> Result<Release, Error> {
    ctx.store
        .release(account, id)?
        .ok_or_else(|| Error::NotFound(format!("no version with id {id}")))
}

/// The version of a product by its version string (`1.2` finds `1.2.0`).
///
/// # Errors
/// `NotFound`; `400 invalid_version`.
pub fn release_by_version(
    ctx: &Ctx<'_>,
    account: &AccountPrefix,
    product: ProductId,
    version: &str,
) -> Result<Release, Error> {
    let wanted = Version::parse(version)?;
    ctx.store
        .releases(account, product)?
        .into_iter()
        .find(|r| r.parsed() == wanted)
        .ok_or_else(|| Error::NotFound(format!("no version {version} of product {product}")))
}

fn new_release(version: &Version, now: Timestamp) -> Release {
    Release {
        id: VersionId(0),
        product_id: ProductId(0),
        version: version.as_str().to_owned(),
        maturity: version.maturity(),
        release_notes: None,
        requires: None,
        tested: None,
        requires_php: None,
        published: false,
        rollout: 100,
        released_at: None,
        sections: Vec::new(),
        files: Vec::new(),
        created_at: now,
        updated_at: now,
    }
}

/// Creates a version, unpublished (publishing needs a file).
///
/// # Errors
/// `400 invalid_version`, `InvalidRequest`; `NotFound`; `409 version_exists`.
pub fn create_version<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    product: ProductId,
    version: &str,
    changes: VersionChanges,
) -> Result<Done<'a, Release>, Error> {
    let parsed = Version::parse(version)?;
    let mut release = new_release(&parsed, ctx.now);
    if changes.published == Some(true) {
        return Err(Error::conflict(
            "version_has_no_file",
            "a new version has no file yet: create it, upload its file, then publish it",
        ));
    }
    apply_version(&mut release, changes, ctx.now)?;
    let pending = ctx
        .store
        .put_release(account, product, None, &[], move |_, _, _| {
            Ok((release, ()))
        })?;
    let account = *account;
    Ok(changed(
        ctx,
        pending.map(|(r, ())| r),
        move |r: &Release| {
            vec![Event::CatalogChanged {
                account,
                what: format!(
                    "created version {} ({}) of product {}",
                    r.id, r.version, r.product_id
                ),
            }]
        },
    ))
}

/// Changes a version: its fields, publishing (needs a published primary file), rollout.
///
/// # Errors
/// `InvalidRequest`; `NotFound`; `409 version_has_no_file`.
pub fn update_version<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: VersionId,
    changes: VersionChanges,
) -> Result<Done<'a, Release>, Error> {
    let current = release(ctx, account, id)?;
    let now = ctx.now;
    let pending = ctx.store.put_release(
        account,
        current.product_id,
        Some(id),
        &[],
        move |_, _, stored| {
            let mut release =
                stored.ok_or_else(|| DomainError::Missing(format!("no version with id {id}")))?;
            let was = release.published;
            apply_version(&mut release, changes, now).map_err(domain)?;
            release.updated_at = now;
            Ok((release, was))
        },
    )?;
    let account = *account;
    Ok(changed(ctx, pending.map(|(r, _)| r), move |r: &Release| {
        vec![Event::CatalogChanged {
            account,
            what: format!(
                "changed version {} ({}) of product {}{}",
                r.id,
                r.version,
                r.product_id,
                if r.published {
                    ", published"
                } else {
                    ", unpublished"
                }
            ),
        }]
    }))
}

/// Deletes a version and its files.
///
/// # Errors
/// `NotFound`.
pub fn delete_version<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: VersionId,
) -> Result<Done<'a, Release>, Error> {
    let pending = ctx.store.delete_release(account, id, |_| Ok(()))?;
    let account = *account;
    Ok(changed(ctx, pending, move |r: &Release| {
        vec![Event::CatalogChanged {
            account,
            what: format!(
                "deleted version {} ({}) of product {}",
                r.id, r.version, r.product_id
            ),
        }]
    }))
}

// ----- files ---------------------------------------------------------------------

/// A file and the version holding it.
///
/// # Errors
/// `NotFound`.
pub fn file(
    ctx: &Ctx<'_>,
    account: &AccountPrefix,
    id: FileId,
) -> Result<(Release, FileRecord), Error> {
    let release = ctx
        .store
        .release_of_file(account, id)?
        .ok_or_else(|| Error::NotFound(format!("no file with id {id}")))?;
    let file = release
        .file(id)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("no file with id {id}")))?;
    Ok((release, file))
}

fn new_file(upload: &Upload, name: String, now: Timestamp) -> FileRecord {
    FileRecord {
        id: FileId(0),
        name,
        description: None,
        published: true,
        primary: false,
        filename: upload.filename.clone(),
        size: upload.staged.size(),
        content_type: upload.content_type.clone(),
        blob: upload.staged.hash(),
        downloads: 0,
        created_at: now,
        updated_at: now,
    }
}

/// Applies file changes inside `release`; exactly one file stays primary.
fn apply_file(
    release: &mut Release,
    id: FileId,
    changes: FileChanges,
    now: Timestamp,
) -> Result<(), DomainError> {
    let at = release
        .files
        .iter()
        .position(|f| f.id == id)
        .ok_or_else(|| DomainError::Missing(format!("no file with id {id}")))?;
    let file = &mut release.files[at];
    if let Some(name) = changes.name {
        check_name(&name).map_err(|why| DomainError::Invalid(format!("name: {why}")))?;
        file.name = name;
    }
    if let Some(v) = changes.description {
        file.description = text("description", v, MAX_SHORT).map_err(domain)?;
    }
    set(&mut file.published, changes.published);
    file.updated_at = now;
    match changes.primary {
        Some(true) => {
            for (i, f) in release.files.iter_mut().enumerate() {
                f.primary = i == at;
            }
        }
        Some(false) if release.files[at].primary => {
            return Err(DomainError::Invalid(
                "primary: a version always has one primary file; mark another file primary instead"
                    .to_owned(),
            ));
        }
        _ => {}
    }
    if release.published && !release.primary().is_some_and(|f| f.published) {
        return Err(DomainError::Conflict {
            code: "version_published",
            message: "the primary file of a published version must stay published".to_owned(),
        });
    }
    Ok(())
}

/// Adds a file to an unpublished version (the first file is primary).
///
/// # Errors
/// `InvalidRequest`; `NotFound`; `409 version_published`, `file_exists`.
pub fn add_file<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    version: VersionId,
    upload: Upload,
    changes: FileChanges,
) -> Result<Done<'a, (Release, FileId)>, Error> {
    check_filename(&upload.filename).map_err(|why| Error::invalid("filename", why))?;
    let current = release(ctx, account, version)?;
    let now = ctx.now;
    let name = changes
        .name
        .clone()
        .unwrap_or_else(|| upload.filename.clone());
    check_name(&name).map_err(|why| Error::invalid("name", why))?;
    let pending = ctx.store.put_release(
        account,
        current.product_id,
        Some(version),
        std::slice::from_ref(&upload.staged),
        |_, _, stored| {
            let mut release = stored
                .ok_or_else(|| DomainError::Missing(format!("no version with id {version}")))?;
            require_draft(&release)?;
            if release.files.iter().any(|f| f.name == name) {
                return Err(DomainError::Conflict {
                    code: "file_exists",
                    message: format!(
                        "version {} already has a file named `{name}`",
                        release.version
                    ),
                });
            }
            let mut file = new_file(&upload, name, now);
            // A temporary id the store replaces; unique among this version's files.
            file.id = FileId(0);
            file.primary = release.files.is_empty();
            release.files.push(file);
            release.updated_at = now;
            let at = release.files.len() - 1;
            let FileChanges {
                description,
                primary,
                published,
                ..
            } = changes;
            let mut rest = FileChanges {
                name: None,
                description,
                primary,
                published,
            };
            if release.files[at].primary {
                rest.primary = None;
            }
            // The new file's id is drawn at commit; apply the changes by position.
            apply_new_file(&mut release, at, rest, now)?;
            Ok((release, at))
        },
    )?;
    let account = *account;
    Ok(changed(
        ctx,
        pending.map(|(r, at)| {
            let id = r.files[at].id;
            (r, id)
        }),
        move |(r, id): &(Release, FileId)| {
            vec![Event::CatalogChanged {
                account,
                what: format!("added file {id} to version {} ({})", r.id, r.version),
            }]
        },
    ))
}

fn apply_new_file(
    release: &mut Release,
    at: usize,
    changes: FileChanges,
    now: Timestamp,
) -> Result<(), DomainError> {
    // Give the new file a provisional id so the id-based rules apply to it.
    let provisional = FileId(u64::MAX);
    release.files[at].id = provisional;
    let result = apply_file(release, provisional, changes, now);
    release.files[at].id = FileId(0);
    result
}

/// Changes a file's details (name, description, primary, published).
///
/// # Errors
/// `InvalidRequest`; `NotFound`; `409 version_published`.
pub fn update_file<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: FileId,
    changes: FileChanges,
) -> Result<Done<'a, (Release, FileId)>, Error> {
    let (current, _) = file(ctx, account, id)?;
    let now = ctx.now;
    let pending = ctx.store.put_release(
        account,
        current.product_id,
        Some(current.id),
        &[],
        move |_, _, stored| {
            let mut release =
                stored.ok_or_else(|| DomainError::Missing(format!("no file with id {id}")))?;
            if release.published && (changes.primary.is_some() || changes.published.is_some()) {
                require_draft(&release)?;
            }
            apply_file(&mut release, id, changes, now)?;
            release.updated_at = now;
            Ok((release, id))
        },
    )?;
    let account = *account;
    Ok(changed(ctx, pending, move |(r, id): &(Release, FileId)| {
        vec![Event::CatalogChanged {
            account,
            what: format!("changed file {id} of version {} ({})", r.id, r.version),
        }]
    }))
}

/// Replaces a file's content (only while its version is unpublished).
///
/// # Errors
/// `NotFound`; `409 version_published`.
pub fn replace_content<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: FileId,
    upload: Upload,
) -> Result<Done<'a, (Release, FileId)>, Error> {
    let (current, _) = file(ctx, account, id)?;
    let now = ctx.now;
    let pending = ctx.store.put_release(
        account,
        current.product_id,
        Some(current.id),
        std::slice::from_ref(&upload.staged),
        |_, _, stored| {
            let mut release =
                stored.ok_or_else(|| DomainError::Missing(format!("no file with id {id}")))?;
            require_draft(&release)?;
            let file = release
                .files
                .iter_mut()
                .find(|f| f.id == id)
                .ok_or_else(|| DomainError::Missing(format!("no file with id {id}")))?;
            file.blob = upload.staged.hash();
            file.size = upload.staged.size();
            file.content_type = upload.content_type.clone();
            file.updated_at = now;
            release.updated_at = now;
            Ok((release, id))
        },
    )?;
    let account = *account;
    Ok(changed(ctx, pending, move |(r, id): &(Release, FileId)| {
        vec![Event::CatalogChanged {
            account,
            what: format!(
                "replaced the content of file {id} of version {} ({})",
                r.id, r.version
            ),
        }]
    }))
}

/// Deletes a file of an unpublished version; if it was primary, the oldest remaining file
/// becomes primary.
///
/// # Errors
/// `NotFound`; `409 version_published`.
pub fn delete_file<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    id: FileId,
) -> Result<Done<'a, (Release, FileRecord)>, Error> {
    let (current, _) = file(ctx, account, id)?;
    let now = ctx.now;
    let pending = ctx.store.put_release(
        account,
        current.product_id,
        Some(current.id),
        &[],
        move |_, _, stored| {
            let mut release =
                stored.ok_or_else(|| DomainError::Missing(format!("no file with id {id}")))?;
            require_draft(&release)?;
            let at = release
                .files
                .iter()
                .position(|f| f.id == id)
                .ok_or_else(|| DomainError::Missing(format!("no file with id {id}")))?;
            let removed = release.files.remove(at);
            if removed.primary
                && let Some(first) = release.files.first_mut()
            {
                first.primary = true;
            }
            release.updated_at = now;
            Ok((release, removed))
        },
    )?;
    let account = *account;
    Ok(changed(
        ctx,
        pending,
        move |(r, f): &(Release, FileRecord)| {
            vec![Event::CatalogChanged {
                account,
                what: format!("deleted file {} of version {} ({})", f.id, r.id, r.version),
            }]
        },
    ))
}

// ----- the one-call release ------------------------------------------------------

/// Reads the package of an upload (plugins and themes).
///
/// # Errors
/// `400 invalid_package` with the reason.
pub fn read_package(ctx: &Ctx<'_>, upload: &Upload) -> Result<PackageInfo, Error> {
    let path = ctx.store.blobs().path(&upload.staged.hash());
    let file = std::fs::File::open(&path).map_err(|err| Error::Internal(Box::new(err)))?;
    let mut reader = std::io::BufReader::new(file);
    let info = package::read(&mut reader, None).map_err(|err| match err {
        package::PackageError::Invalid(reason) => {
            Error::bad("invalid_package", format!("package: {reason}"))
        }
        package::PackageError::Io(err) => Error::Internal(Box::new(err)),
    })?;
    Ok(info)
}

fn package_kind(kind: package::Kind) -> ProductKind {
    match kind {
        package::Kind::Plugin => ProductKind::Plugin,
        package::Kind::Theme => ProductKind::Theme,
    }
}

/// Ships a release in one call (SPEC §7.1 `POST …/releases`): reads the package (not for
/// apps), finds or creates the product, creates the version — or finds it, when it holds
/// exactly this content (idempotent) — with the upload as its primary file, and publishes
/// it unless `draft`.
///
/// # Errors
/// `400 invalid_package`, `invalid_version`; `NotFound`; `409 version_exists` (the
/// version exists with other content), `product_exists`.
pub fn release_package<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    target: ReleaseTarget,
    upload: Upload,
    options: ReleaseOptions,
) -> Result<Done<'a, Released>, Error> {
    if let Some(rollout) = options.rollout
        && !(1..=100).contains(&rollout)
    {
        return Err(Error::invalid("rollout", "must be 1–100 (% of sites)"));
    }
    let existing = match &target {
        ReleaseTarget::Product(id) => Some(product(ctx, account, *id)?),
        ReleaseTarget::BySlug { .. } => None,
    };
    let is_app = existing
        .as_ref()
        .is_some_and(|p| p.kind == ProductKind::App)
        || matches!(
            target,
            ReleaseTarget::BySlug {
                kind: Some(ProductKind::App),
                ..
            }
        );
    let info = if is_app {
        None
    } else {
        Some(read_package(ctx, &upload)?)
    };
    // The version: given, or the package's header.
    let written = match (&options.version, &info) {
        (Some(v), _) => v.clone(),
        (None, Some(info)) => info.version.clone().ok_or_else(|| {
            Error::bad(
                "invalid_package",
                format!("package: {} has no `Version:` header", info.header_file),
            )
        })?,
        (None, None) => {
            return Err(Error::invalid(
                "version",
                "an app's version must be given (its file is not read)",
            ));
        }
    };
    if let Some(info) = &info {
        if let Some(header) = &info.version {
            if let Some(bare) = header.strip_prefix('v') {
                return Err(Error::bad(
                    "invalid_package",
                    format!(
                        "package: the `Version:` header `{header}` starts with `v`: WordPress \
                         compares it with PHP's version_compare, which orders `{header}` below \
                         `{bare}`, so sites would be offered this release forever; write the \
                         version without `v`"
                    ),
                ));
            }
            let header_version = Version::parse(header).map_err(|err| {
                Error::bad(
                    "invalid_package",
                    format!("package: `Version:` header: {err}"),
                )
            })?;
            if options.version.is_some() && Version::parse(&written)? != header_version {
                return Err(Error::invalid(
                    "version",
                    format!("`{written}` differs from the package's `Version:` header `{header}`"),
                ));
            }
        }
    }
    let version = Version::parse(&written)?;
    let (product, product_created) = match (existing, &target) {
        (Some(product), _) => {
            if let Some(info) = &info {
                if info.slug != product.slug {
                    return Err(Error::bad(
                        "invalid_package",
                        format!(
                            "package: its folder `{}` is not the product's slug `{}`",
                            info.slug, product.slug
                        ),
                    ));
                }
                if package_kind(info.kind) != product.kind {
                    return Err(Error::bad(
                        "invalid_package",
                        format!(
                            "package: it is a {}, the product a {}",
                            info.kind.as_str(),
                            product.kind.as_str()
                        ),
                    ));
                }
            }
            (product, false)
        }
        (None, ReleaseTarget::BySlug { license, kind }) => {
            let info = info
                .as_ref()
                .ok_or_else(|| Error::invalid("product", "an app release names its product"))?;
            let found_kind = package_kind(info.kind);
            if let Some(kind) = kind
                && *kind != found_kind
            {
                return Err(Error::bad(
                    "invalid_package",
                    format!(
                        "package: it is a {}, not a {}",
                        info.kind.as_str(),
                        kind.as_str()
                    ),
                ));
            }
            match ctx.store.product_by_slug(account, &info.slug)? {
                Some(product) if product.kind == found_kind => (product, false),
                Some(product) => {
                    return Err(Error::bad(
                        "invalid_package",
                        format!(
                            "package: it is a {}, product `{}` a {}",
                            info.kind.as_str(),
                            product.slug,
                            product.kind.as_str()
                        ),
                    ));
                }
                None => {
                    let changes = ProductChanges {
                        name: Some(info.name.clone()),
                        homepage: Some(info.uri.clone().filter(|u| check_url(u).is_ok())),
                        author: Some(info.author.as_ref().map(|a| strip_tags(a))),
                        author_homepage: Some(
                            info.author_uri.clone().filter(|u| check_url(u).is_ok()),
                        ),
                        short_description: Some(
                            info.description
                                .as_ref()
                                .map(|d| truncate(&strip_tags(d), MAX_SHORT)),
                        ),
                        license: Some(*license),
                        ..ProductChanges::default()
                    };
                    let created =
                        create_product(ctx, account, info.slug.clone(), found_kind, changes)?;
                    (created.durable_blocking()?, true)
                }
            }
        }
        (None, ReleaseTarget::Product(_)) => unreachable!("a product target was read above"),
    };
    let now = ctx.now;
    let hash = upload.staged.hash();
    let slug = product.slug.clone();
    // Set when this exact release already exists (the call is then idempotent).
    let mut found: Option<Release> = None;
    let pending = ctx.store.put_release(account, product.id, None, std::slice::from_ref(&upload.staged), |_, others, _| {
        if let Some(same) = others.iter().find(|r| r.parsed() == version) {
            if same.primary().is_some_and(|f| f.blob == hash) {
                // Idempotent: this exact release exists; nothing is written.
                found = Some(same.clone());
                return Err(DomainError::Conflict {
                    code: "same_release",
                    message: String::new(),
                });
            }
            return Err(DomainError::Conflict {
                code: "version_exists",
                message: format!("product `{slug}` already has version {} with other content; release a new version", same.version),
            });
        }
        let mut release = new_release(&version, now);
        if let Some(info) = &info {
            release.requires = info.requires.clone();
            release.requires_php = info.requires_php.clone();
            release.tested = info.tested.clone();
            release.sections = info.sections.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        if let Some(maturity) = options.maturity {
            release.maturity = maturity;
        }
        release.release_notes = options.release_notes.clone().filter(|n| !n.trim().is_empty());
        if let Some(notes) = &release.release_notes && notes.len() > MAX_TEXT {
            return Err(DomainError::Invalid(format!("release_notes: must be at most {MAX_TEXT} bytes")));
        }
        release.rollout = options.rollout.unwrap_or(100);
        let mut file = new_file(&upload, "Installer".to_owned(), now);
        if upload.filename == UNNAMED_PACKAGE {
            // A raw upload that named no file: served as `{slug}-{version}.zip`.
            file.filename = format!("{slug}-{}.zip", version.as_str());
        }
        file.primary = true;
        release.files.push(file);
        if !options.draft {
            release.published = true;
            release.released_at = Some(now);
        }
        Ok((release, ()))
    });
    let account_copy = *account;
    match pending {
        Ok(pending) => Ok(changed(
            ctx,
            pending.map(move |(release, ())| Released {
                product,
                release,
                product_created,
                version_created: true,
            }),
            move |r: &Released| {
                vec![Event::CatalogChanged {
                    account: account_copy,
                    what: format!(
                        "released version {} ({}) of product {} ({}){}",
                        r.release.id,
                        r.release.version,
                        r.product.id,
                        r.product.slug,
                        if r.release.published {
                            ", published"
                        } else {
                            ", as a draft"
                        }
                    ),
                }]
            },
        )),
        Err(crate::store::StoreError::Domain(DomainError::Conflict {
            code: "same_release",
            ..
        })) => {
            let release =
                found.ok_or_else(|| Error::Internal("the same release vanished".into()))?;
            let pending = ctx.store.already(Released {
                product,
                release,
                product_created,
                version_created: false,
            });
            Ok(changed(ctx, pending, |_| Vec::new()))
        }
        Err(err) => Err(err.into()),
    }
}

/// `text` without HTML tags (plugin headers may hold markup: Akismet's author does).
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
