//! Versions and their files (SPEC §7 *Version*, *File*).

use super::*;

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

pub(super) fn new_release(version: &Version, now: Timestamp) -> Release {
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

pub(super) fn new_file(upload: &Upload, name: String, now: Timestamp) -> FileRecord {
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
pub(super) fn apply_file(
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

pub(super) fn apply_new_file(
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
