//! The one-call release: read the package, find or create the product, store the version
//! with its primary file, publish (SPEC §7.1 `POST …/releases`).

use super::*;
use crate::package::{self, PackageInfo};

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
    // Every check of the request before anything is written: a refusal after the product
    // was created would leave it behind.
    let notes = super::text("release_notes", options.release_notes.clone(), MAX_TEXT)?;
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
                    match create_product(ctx, account, info.slug.clone(), found_kind, changes) {
                        Ok(created) => (created.durable_blocking()?, true),
                        // Another first push of the same slug made it meanwhile: this one
                        // goes on with it, as a later push would.
                        Err(err) if err.code() == "product_exists" => {
                            match ctx.store.product_by_slug(account, &info.slug)? {
                                Some(product) if product.kind == found_kind => (product, false),
                                _ => return Err(err),
                            }
                        }
                        Err(err) => return Err(err),
                    }
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
        release.release_notes = notes.clone();
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
