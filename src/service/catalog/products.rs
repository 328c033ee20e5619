//! Groups and products (SPEC §7 *Group*, *Product*).

use super::*;

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
