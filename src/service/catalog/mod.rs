//! The release catalogue's use cases (SPEC §7): groups, products, versions, files, and
//! the one-call release that reads a package. Every API family and the CLI call these; the
//! rules of §7 live here once.
//!
//! Who may touch which account is decided by the caller of these functions: each takes
//! the account it works on, and the store reaches only that account's records (another
//! account's id is `404`, never `403`).
//!
//! Files: this one (the commands' types and the field checks every write shares),
//! `products.rs` (groups and products), `versions.rs` (versions and files), `release.rs`
//! (the one-call release that reads a package).

mod products;
mod release;
mod versions;

pub use products::*;
pub use release::*;
pub use versions::*;

use super::{Ctx, Done, Event};
use crate::error::Error;
use crate::model::catalog::{
    Banners, DEFAULT_GROUP, Icons, check_filename, check_name, check_slug, check_url,
};
use crate::model::{
    AccountPrefix, DomainError, FileId, FileRecord, Group, GroupId, LicenseModel, Maturity,
    Product, ProductId, ProductKind, Release, Timestamp, Version, VersionId,
};
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

pub(super) fn text(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, Error> {
    match value {
        // Blank is no value, however long (as the API documents for form fields).
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) if v.len() > max => Err(Error::invalid(
            field,
            format!("must be at most {max} bytes, got {}", v.len()),
        )),
        Some(v) if v.contains('\0') => Err(Error::invalid(field, "must not contain NUL")),
        other => Ok(other),
    }
}

pub(super) fn url(field: &str, value: Option<String>) -> Result<Option<String>, Error> {
    match value {
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => {
            check_url(&v).map_err(|why| Error::invalid(field, why))?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

pub(super) fn set<T>(slot: &mut T, change: Option<T>) {
    if let Some(value) = change {
        *slot = value;
    }
}

pub(super) fn apply_product(product: &mut Product, changes: ProductChanges) -> Result<(), Error> {
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

pub(super) fn short_field(
    field: &str,
    value: Change<String>,
    slot: &mut Option<String>,
) -> Result<(), Error> {
    if let Some(v) = value {
        *slot = text(field, v, MAX_SHORT)?;
    }
    Ok(())
}

/// Applies version changes; publishing needs a published primary file.
pub(super) fn apply_version(
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

pub(super) fn domain(err: Error) -> DomainError {
    match err {
        Error::InvalidRequest(message) => DomainError::Invalid(message),
        Error::NotFound(message) => DomainError::Missing(message),
        Error::Coded { code, message, .. } => DomainError::Conflict { code, message },
        other => DomainError::Invalid(other.to_string()),
    }
}

/// `409 version_published` unless the version is a draft.
pub(super) fn require_draft(release: &Release) -> Result<(), DomainError> {
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

pub(super) fn changed<'a, T>(
    ctx: &Ctx<'a>,
    pending: crate::store::Pending<'a, T>,
    event: impl FnOnce(&T) -> Vec<Event> + Send + 'a,
) -> Done<'a, T> {
    Done::new(ctx, pending, event)
}
