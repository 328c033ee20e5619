//! The release catalogue (SPEC §7): groups, products, versions (with their files).
//!
//! Every key of a catalogue record starts with its account (`key::AccountId`,
//! `key::ProductVersion`), so a lookup made for one account cannot reach another's record:
//! another account's id is simply absent. Global ids (products, versions, files) have a
//! *home* entry (`productid_home`, `versionid_home`, `fileid_home`) naming their account,
//! which keeps them unique server-wide; a product's home stays after it is deleted, so its
//! id is never given out again.
//!
//! Writes read what they change under the write lock (no other writer can change it
//! meanwhile), let the caller's rule (a closure) change it, and commit the result, its
//! indexes and its blob references in one transaction. Blob references follow the records:
//! a write that makes a record reference a new blob passes the upload's [`Staged`] pin; a
//! blob a write stops referencing loses a reference in the same transaction (and is deleted
//! once that is durable, when it was the last).

use super::blobs::Staged;
use super::key::{AccountId, AccountSlug, ProductVersion, owner, versions_of};
use super::page::{Cursor, Page, PageRequest};
use super::schema::{
    FILE_HOMES, GROUPS, PRODUCT_HOMES, PRODUCT_SLUGS, PRODUCTS, VERSION_HOMES, VERSIONS,
};
use super::tx::{Tx, TxResult, abort};
use super::{Pending, Store, StoreError};
use crate::model::catalog::{DEFAULT_GROUP, Home, ProductHome, random_id, slugify};
use crate::model::{
    AccountPrefix, BlobHash, DomainError, FileId, Group, GroupId, Product, ProductId, Release,
    VersionId,
};
use std::collections::BTreeMap;

/// A product and its versions, as one consistent read.
#[derive(Debug, Clone)]
pub struct Catalogued {
    pub product: Product,
    pub releases: Vec<Release>,
}

fn missing(what: impl Into<String>) -> StoreError {
    DomainError::Missing(what.into()).into()
}

fn rng_failed(err: getrandom::Error) -> StoreError {
    StoreError::Bug(format!("OS RNG failed: {err}"))
}

impl Store {
    // ----- reads -------------------------------------------------------------------

    /// How many distinct blobs records reference (`blob_refs` entries; for metrics).
    pub fn blobs_stored(&self) -> usize {
        self.tree(super::schema::BLOB_REFS.id()).len()
    }

    /// The account's groups, `default` first, then by id.
    ///
    /// # Errors
    /// The store failed.
    pub fn groups(&self, account: &AccountPrefix) -> Result<Vec<Group>, StoreError> {
        let mut groups = vec![Group::default_of(*account)];
        for entry in self.scan(&GROUPS, &owner(Some(account))) {
            groups.push(entry?.1);
        }
        Ok(groups)
    }

    /// # Errors
    /// The store failed.
    pub fn group(&self, account: &AccountPrefix, id: GroupId) -> Result<Option<Group>, StoreError> {
        if id == DEFAULT_GROUP {
            return Ok(Some(Group::default_of(*account)));
        }
        self.read(
            &GROUPS,
            &AccountId {
                account: *account,
                id: id.0,
            },
        )
    }

    /// # Errors
    /// The store failed.
    pub fn product(
        &self,
        account: &AccountPrefix,
        id: ProductId,
    ) -> Result<Option<Product>, StoreError> {
        self.read(
            &PRODUCTS,
            &AccountId {
                account: *account,
                id: id.0,
            },
        )
    }

    /// The account a product id belongs to, if the product exists (public routes that name
    /// a product by id alone).
    ///
    /// # Errors
    /// The store failed.
    pub fn product_account(&self, id: ProductId) -> Result<Option<AccountPrefix>, StoreError> {
        Ok(self
            .read(&PRODUCT_HOMES, &id)?
            .filter(|home| !home.deleted)
            .map(|home| home.account))
    }

    /// # Errors
    /// The store failed.
    pub fn product_by_slug(
        &self,
        account: &AccountPrefix,
        slug: &str,
    ) -> Result<Option<Product>, StoreError> {
        let key = AccountSlug {
            account: *account,
            slug: slug.to_owned(),
        };
        match self.read(&PRODUCT_SLUGS, &key)? {
            Some(id) => self.product(account, id),
            None => Ok(None),
        }
    }

    /// Every product of the account, by id.
    ///
    /// # Errors
    /// The store failed.
    pub fn products(&self, account: &AccountPrefix) -> Result<Vec<Product>, StoreError> {
        self.scan(&PRODUCTS, &owner(Some(account)))
            .map(|entry| entry.map(|(_, product)| product))
            .collect()
    }

    /// A page of the account's products, by id.
    ///
    /// # Errors
    /// `InvalidCursor`, or the store failed.
    pub fn products_page(
        &self,
        account: &AccountPrefix,
        page: &PageRequest,
    ) -> Result<Page<Product>, StoreError> {
        let after = id_cursor(page)?.map(|id| AccountId {
            account: *account,
            id,
        });
        let (entries, more) =
            self.page_of(&PRODUCTS, &owner(Some(account)), after.as_ref(), page.limit)?;
        let next = match (more, entries.last()) {
            (true, Some((key, _))) => Some(Cursor::after(key.id.to_string())),
            _ => None,
        };
        Ok(Page {
            items: entries.into_iter().map(|(_, p)| p).collect(),
            next,
        })
    }

    /// Every version of a product (in id order; sort by version where it matters).
    ///
    /// # Errors
    /// The store failed.
    pub fn releases(
        &self,
        account: &AccountPrefix,
        product: ProductId,
    ) -> Result<Vec<Release>, StoreError> {
        self.scan(&VERSIONS, &versions_of(account, product))
            .map(|entry| entry.map(|(_, release)| release))
            .collect()
    }

    /// A product with its versions.
    ///
    /// # Errors
    /// The store failed.
    pub fn catalogued(
        &self,
        account: &AccountPrefix,
        product: ProductId,
    ) -> Result<Option<Catalogued>, StoreError> {
        let Some(product) = self.product(account, product)? else {
            return Ok(None);
        };
        let releases = self.releases(account, product.id)?;
        Ok(Some(Catalogued { product, releases }))
    }

    /// A version of the account, by id.
    ///
    /// # Errors
    /// The store failed.
    pub fn release(
        &self,
        account: &AccountPrefix,
        id: VersionId,
    ) -> Result<Option<Release>, StoreError> {
        match self.read(&VERSION_HOMES, &id)? {
            Some(home) if home.account == *account => self.read(&VERSIONS, &version_key(&home)),
            _ => Ok(None),
        }
    }

    /// The version holding file `id`, if the account has it.
    ///
    /// # Errors
    /// The store failed.
    pub fn release_of_file(
        &self,
        account: &AccountPrefix,
        id: FileId,
    ) -> Result<Option<Release>, StoreError> {
        match self.read(&FILE_HOMES, &id)? {
            Some(home) if home.account == *account => Ok(self
                .read(&VERSIONS, &version_key(&home))?
                .filter(|release| release.file(id).is_some())),
            _ => Ok(None),
        }
    }

    // ----- writes ------------------------------------------------------------------

    /// Creates or changes a group: `change` gets the stored group (`None` for a new one)
    /// and returns the group to store. Names are unique in the account.
    ///
    /// # Errors
    /// `Missing`, `Conflict` (`group_exists`), or what `change` refuses.
    pub fn put_group(
        &self,
        account: &AccountPrefix,
        id: Option<GroupId>,
        change: impl FnOnce(Option<Group>) -> Result<Group, DomainError>,
    ) -> Result<Pending<'_, Group>, StoreError> {
        self.write(|| {
            let groups = self.groups(account)?;
            let current = match id {
                Some(id) => Some(
                    groups
                        .iter()
                        .find(|g| g.id == id)
                        .cloned()
                        .ok_or_else(|| missing(format!("no group with id {id}")))?,
                ),
                None => None,
            };
            if current.as_ref().is_some_and(|g| g.id == DEFAULT_GROUP) {
                return Err(DomainError::Conflict {
                    code: "group_is_default",
                    message: "the `default` group cannot be changed".to_owned(),
                }
                .into());
            }
            let mut group = change(current)?;
            group.account = *account;
            if id.is_none() {
                group.id = loop {
                    let candidate = GroupId(random_id().map_err(rng_failed)?);
                    if groups.iter().all(|g| g.id != candidate) {
                        break candidate;
                    }
                };
            }
            if groups
                .iter()
                .any(|g| g.id != group.id && g.name.eq_ignore_ascii_case(&group.name))
            {
                return Err(DomainError::Conflict {
                    code: "group_exists",
                    message: format!("a group named `{}` already exists", group.name),
                }
                .into());
            }
            let key = AccountId {
                account: *account,
                id: group.id.0,
            };
            self.transact(|tx| tx.put(&GROUPS, &key, &group))?;
            Ok((group, Vec::new()))
        })
    }

    /// Deletes a group that holds no product.
    ///
    /// # Errors
    /// `Missing`; `Conflict` `group_is_default` or `group_not_empty`.
    pub fn delete_group(
        &self,
        account: &AccountPrefix,
        id: GroupId,
    ) -> Result<Pending<'_, Group>, StoreError> {
        self.write(|| {
            if id == DEFAULT_GROUP {
                return Err(DomainError::Conflict {
                    code: "group_is_default",
                    message: "the `default` group cannot be deleted".to_owned(),
                }
                .into());
            }
            let key = AccountId {
                account: *account,
                id: id.0,
            };
            let group = self
                .read(&GROUPS, &key)?
                .ok_or_else(|| missing(format!("no group with id {id}")))?;
            let held = self
                .products(account)?
                .iter()
                .filter(|p| p.group_id == id)
                .count();
            if held > 0 {
                return Err(DomainError::Conflict {
                    code: "group_not_empty",
                    message: format!(
                        "group `{}` still holds {held} product(s); move or delete them first",
                        group.name
                    ),
                }
                .into());
            }
            self.transact(|tx| tx.remove(&GROUPS, &key))?;
            Ok((group, Vec::new()))
        })
    }

    /// Creates a product or changes one: `change` gets the stored product (`None` for a
    /// new one) and returns the product to store. For a new product the id is drawn here
    /// (random, never used before). Slugs are unique in the account and immutable; names
    /// unique also in their slugified form; the group must exist.
    ///
    /// # Errors
    /// `Missing`, `Conflict` (`product_exists`), or what `change` refuses.
    pub fn put_product(
        &self,
        account: &AccountPrefix,
        id: Option<ProductId>,
        change: impl FnOnce(Option<Product>) -> Result<Product, DomainError>,
    ) -> Result<Pending<'_, Product>, StoreError> {
        self.write(|| {
            let current = match id {
                Some(id) => Some(
                    self.product(account, id)?
                        .ok_or_else(|| missing(format!("no product with id {id}")))?,
                ),
                None => None,
            };
            let mut product = change(current.clone())?;
            product.account = *account;
            match &current {
                Some(current) => {
                    product.id = current.id;
                    if product.slug != current.slug {
                        return Err(DomainError::Invalid(
                            "slug: cannot be changed once the product exists".to_owned(),
                        )
                        .into());
                    }
                }
                None => {
                    product.id = loop {
                        let candidate = ProductId(random_id().map_err(rng_failed)?);
                        if !self.has(&PRODUCT_HOMES, &candidate)? {
                            break candidate;
                        }
                    };
                    let slug_key = AccountSlug {
                        account: *account,
                        slug: product.slug.clone(),
                    };
                    if self.has(&PRODUCT_SLUGS, &slug_key)? {
                        return Err(DomainError::Conflict {
                            code: "product_exists",
                            message: format!(
                                "a product with slug `{}` already exists",
                                product.slug
                            ),
                        }
                        .into());
                    }
                }
            }
            let name = slugify(&product.name);
            if let Some(other) = self
                .products(account)?
                .into_iter()
                .find(|p| p.id != product.id && slugify(&p.name) == name)
            {
                return Err(DomainError::Conflict {
                    code: "product_exists",
                    message: format!(
                        "product `{}` already has the name `{}` (names are compared slugified)",
                        other.slug, other.name
                    ),
                }
                .into());
            }
            if self.group(account, product.group_id)?.is_none() {
                return Err(DomainError::Invalid(format!(
                    "group_id: no group with id {}",
                    product.group_id
                ))
                .into());
            }
            let key = AccountId {
                account: *account,
                id: product.id.0,
            };
            let new = current.is_none();
            self.transact(|tx| {
                if new {
                    if tx.contains(&PRODUCT_HOMES, &product.id)? {
                        return abort(StoreError::Bug("product id drawn twice".into()));
                    }
                    tx.put(
                        &PRODUCT_HOMES,
                        &product.id,
                        &ProductHome {
                            account: *account,
                            deleted: false,
                        },
                    )?;
                    tx.put(
                        &PRODUCT_SLUGS,
                        &AccountSlug {
                            account: *account,
                            slug: product.slug.clone(),
                        },
                        &product.id,
                    )?;
                }
                tx.put(&PRODUCTS, &key, &product)
            })?;
            Ok((product, Vec::new()))
        })
    }

    /// Deletes a product with its versions and files, in one transaction: it disappears
    /// at once; blobs no longer referenced are deleted once this is durable. Its id stays
    /// taken.
    ///
    /// # Errors
    /// `Missing`.
    pub fn delete_product(
        &self,
        account: &AccountPrefix,
        id: ProductId,
    ) -> Result<Pending<'_, Catalogued>, StoreError> {
        self.write(|| {
            let catalogued = self
                .catalogued(account, id)?
                .ok_or_else(|| missing(format!("no product with id {id}")))?;
            // The download keys listing it lose it (through the product→keys index).
            let keys: Vec<_> = self
                .keys_listing(account, id)?
                .into_iter()
                .map(|key| super::licensing::without_product(key, id))
                .collect();
            self.transact(|tx| {
                super::licensing::drop_product_from_keys(tx, id, &keys)?;
                remove_product(tx, &catalogued)
            })?;
            let ops = keys
                .into_iter()
                .map(|key| super::IndexOp::KeyFacts(Box::new(key), false))
                .collect();
            Ok((catalogued, ops))
        })
    }

    /// Creates a version (with its files) or changes one. `change` gets the product, its
    /// other versions and the stored version (`None` for a new one) and returns the version
    /// to store; for a new version the id is drawn here, as are the ids of files with id 0.
    /// `uploads` pin the blobs of new content (every blob the result references that the
    /// stored version did not). Versions are unique per product (see `Version`'s equality
    /// and `clashes_with`).
    ///
    /// # Errors
    /// `Missing`, `Conflict` (`version_exists`), or what `change` refuses.
    pub fn put_release<T: Send>(
        &self,
        account: &AccountPrefix,
        product: ProductId,
        id: Option<VersionId>,
        uploads: &[Staged],
        change: impl FnOnce(&Product, &[Release], Option<Release>) -> Result<(Release, T), DomainError>,
    ) -> Result<Pending<'_, (Release, T)>, StoreError> {
        self.write(|| {
            let catalogued = self
                .catalogued(account, product)?
                .ok_or_else(|| missing(format!("no product with id {product}")))?;
            let (current, others): (Vec<Release>, Vec<Release>) = catalogued
                .releases
                .into_iter()
                .partition(|r| Some(r.id) == id);
            let current = current.into_iter().next();
            if id.is_some() && current.is_none() {
                return Err(missing(format!(
                    "no version with id {}",
                    id.map_or(0, |v| v.0)
                )));
            }
            let (mut release, extra) = change(&catalogued.product, &others, current.clone())?;
            release.product_id = product;
            let parsed = crate::model::Version::parse(&release.version)
                .map_err(|err| DomainError::Invalid(format!("version: {err}")))?;
            if let Some(clash) = others.iter().find(|other| {
                let theirs = other.parsed();
                theirs == parsed || theirs.clashes_with(&parsed)
            }) {
                return Err(DomainError::Conflict {
                    code: "version_exists",
                    message: format!(
                        "product `{}` already has version {} (id {}), which equals or clashes \
                         with {}",
                        catalogued.product.slug, clash.version, clash.id, release.version
                    ),
                }
                .into());
            }
            match &current {
                Some(current) => release.id = current.id,
                None => {
                    release.id = loop {
                        let candidate = VersionId(random_id().map_err(rng_failed)?);
                        if !self.has(&VERSION_HOMES, &candidate)? {
                            break candidate;
                        }
                    };
                }
            }
            for file in &mut release.files {
                if file.id.0 == 0 {
                    file.id = loop {
                        let candidate = FileId(random_id().map_err(rng_failed)?);
                        if !self.has(&FILE_HOMES, &candidate)? {
                            break candidate;
                        }
                    };
                }
            }
            let mut names: Vec<&str> = release.files.iter().map(|f| f.name.as_str()).collect();
            names.sort_unstable();
            if names.windows(2).any(|w| w[0] == w[1]) {
                return Err(DomainError::Conflict {
                    code: "file_exists",
                    message: "file names are unique per version".to_owned(),
                }
                .into());
            }
            let home = Home {
                account: *account,
                product,
                version: release.id,
            };
            let before = blob_counts(current.as_ref());
            let after = blob_counts(Some(&release));
            let old_files: Vec<FileId> = current
                .iter()
                .flat_map(|r| r.files.iter().map(|f| f.id))
                .collect();
            self.transact(|tx| {
                if current.is_none() {
                    tx.put(&VERSION_HOMES, &release.id, &home)?;
                }
                for file in &release.files {
                    if !old_files.contains(&file.id) {
                        tx.put(&FILE_HOMES, &file.id, &home)?;
                    }
                }
                for old in &old_files {
                    if release.file(*old).is_none() {
                        tx.remove(&FILE_HOMES, old)?;
                    }
                }
                change_refs(tx, &before, &after, uploads)?;
                tx.put(&VERSIONS, &version_key(&home), &release)
            })?;
            Ok(((release, extra), Vec::new()))
        })
    }

    /// Deletes a version and its files (blobs no longer referenced go once durable).
    ///
    /// # Errors
    /// `Missing`, or what `check` refuses.
    pub fn delete_release(
        &self,
        account: &AccountPrefix,
        id: VersionId,
        check: impl FnOnce(&Release) -> Result<(), DomainError>,
    ) -> Result<Pending<'_, Release>, StoreError> {
        self.write(|| {
            let release = self
                .release(account, id)?
                .ok_or_else(|| missing(format!("no version with id {id}")))?;
            check(&release)?;
            let home = Home {
                account: *account,
                product: release.product_id,
                version: id,
            };
            self.transact(|tx| remove_release(tx, &home, &release))?;
            Ok((release, Vec::new()))
        })
    }

    /// The catalogue entries of an account, for deleting the account with them.
    pub(super) fn catalogue_of(
        &self,
        account: &AccountPrefix,
    ) -> Result<(Vec<Catalogued>, Vec<AccountId>), StoreError> {
        let mut products = Vec::new();
        for product in self.products(account)? {
            let releases = self.releases(account, product.id)?;
            products.push(Catalogued { product, releases });
        }
        let groups = self
            .scan_keys(&GROUPS, &owner(Some(account)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((products, groups))
    }
}

/// Removes a product, its versions, files and index entries (inside a transaction).
pub(super) fn remove_product(tx: &Tx<'_>, catalogued: &Catalogued) -> TxResult<()> {
    let product = &catalogued.product;
    for release in &catalogued.releases {
        let home = Home {
            account: product.account,
            product: product.id,
            version: release.id,
        };
        remove_release(tx, &home, release)?;
    }
    tx.remove(
        &PRODUCTS,
        &AccountId {
            account: product.account,
            id: product.id.0,
        },
    )?;
    tx.remove(
        &PRODUCT_SLUGS,
        &AccountSlug {
            account: product.account,
            slug: product.slug.clone(),
        },
    )?;
    tx.put(
        &PRODUCT_HOMES,
        &product.id,
        &ProductHome {
            account: product.account,
            deleted: true,
        },
    )
}

fn remove_release(tx: &Tx<'_>, home: &Home, release: &Release) -> TxResult<()> {
    for file in &release.files {
        tx.remove(&FILE_HOMES, &file.id)?;
    }
    change_refs(tx, &blob_counts(Some(release)), &BTreeMap::new(), &[])?;
    tx.remove(&VERSION_HOMES, &release.id)?;
    tx.remove(&VERSIONS, &version_key(home))
}

pub(super) fn version_key(home: &Home) -> ProductVersion {
    ProductVersion {
        account: home.account,
        product: home.product,
        version: home.version,
    }
}

/// How many files of a version reference each blob.
fn blob_counts(release: Option<&Release>) -> BTreeMap<BlobHash, u64> {
    let mut counts = BTreeMap::new();
    for file in release.iter().flat_map(|r| r.files.iter()) {
        *counts.entry(file.blob).or_insert(0) += 1;
    }
    counts
}

/// Moves the blob references of a record from `before` to `after`: every file holds one
/// reference to its blob. A blob gained needs its upload's pin.
fn change_refs(
    tx: &Tx<'_>,
    before: &BTreeMap<BlobHash, u64>,
    after: &BTreeMap<BlobHash, u64>,
    uploads: &[Staged],
) -> TxResult<()> {
    for (hash, &count) in after {
        let had = before.get(hash).copied().unwrap_or(0);
        if count > had {
            let Some(staged) = uploads.iter().find(|s| s.hash() == *hash) else {
                return abort(StoreError::Bug(format!(
                    "a version gained blob {hash} without its upload"
                )));
            };
            for _ in had..count {
                tx.add_ref(staged)?;
            }
        }
    }
    for (hash, &had) in before {
        let count = after.get(hash).copied().unwrap_or(0);
        for _ in count..had {
            tx.drop_ref(hash)?;
        }
    }
    Ok(())
}

/// A cursor over records keyed by id: the last id of the previous page.
fn id_cursor(page: &PageRequest) -> Result<Option<u64>, StoreError> {
    page.after
        .as_ref()
        .map(|cursor| {
            cursor
                .value()
                .parse::<u64>()
                .map_err(|_| StoreError::InvalidCursor("not a cursor of this list".to_owned()))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::model::catalog::{Banners, Icons};
    use crate::model::{FileRecord, LicenseModel, Maturity, ProductKind, Timestamp};

    fn new_product(slug: &str, name: &str) -> Product {
        Product {
            id: ProductId(0),
            account: AccountPrefix::parse("acme").unwrap(),
            slug: slug.to_owned(),
            kind: ProductKind::Plugin,
            name: name.to_owned(),
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
            created_at: now(),
            updated_at: now(),
        }
    }

    fn release(version: &str, files: Vec<FileRecord>) -> Release {
        Release {
            id: VersionId(0),
            product_id: ProductId(0),
            version: version.to_owned(),
            maturity: Maturity::Stable,
            release_notes: None,
            requires: None,
            tested: None,
            requires_php: None,
            published: false,
            rollout: 100,
            released_at: None,
            sections: Vec::new(),
            files,
            created_at: now(),
            updated_at: now(),
        }
    }

    fn file(name: &str, staged: &Staged) -> FileRecord {
        FileRecord {
            id: FileId(0),
            name: name.to_owned(),
            description: None,
            published: true,
            primary: true,
            filename: format!("{name}.zip"),
            size: staged.size(),
            content_type: "application/zip".to_owned(),
            blob: staged.hash(),
            downloads: 0,
            created_at: Timestamp::from_secs(1),
            updated_at: Timestamp::from_secs(1),
        }
    }

    #[test]
    fn products_are_per_account_and_slugs_and_names_unique() {
        let (_dir, store, acme) = store_with_acme();
        let other = store
            .create_account(new_account(Some("other")), now())
            .unwrap()
            .durable_blocking()
            .unwrap()
            .0;
        let p = store
            .put_product(&acme.prefix, None, |_| {
                Ok(new_product("hello", "Hello Dolly"))
            })
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(p.id.0 > 1 && p.id.0 <= crate::model::catalog::MAX_ID);
        assert_eq!(store.product_account(p.id).unwrap(), Some(acme.prefix));
        assert!(store.product(&other.prefix, p.id).unwrap().is_none());
        assert_eq!(
            store
                .product_by_slug(&acme.prefix, "hello")
                .unwrap()
                .unwrap()
                .id,
            p.id
        );
        let dup = store.put_product(&acme.prefix, None, |_| Ok(new_product("hello", "Other")));
        assert!(matches!(
            dup.err(),
            Some(StoreError::Domain(DomainError::Conflict {
                code: "product_exists",
                ..
            }))
        ));
        let dup_name = store.put_product(&acme.prefix, None, |_| {
            Ok(new_product("hello2", "hello  dolly!"))
        });
        assert!(matches!(
            dup_name.err(),
            Some(StoreError::Domain(DomainError::Conflict {
                code: "product_exists",
                ..
            }))
        ));
        // The same slug in another account is fine.
        store
            .put_product(&other.prefix, None, |_| {
                Ok(new_product("hello", "Hello Dolly"))
            })
            .unwrap()
            .durable_blocking()
            .unwrap();
    }

    #[test]
    fn versions_hold_blob_references_that_go_with_them() {
        let (_dir, store, acme) = store_with_acme();
        let p = store
            .put_product(&acme.prefix, None, |_| Ok(new_product("hello", "Hello")))
            .unwrap()
            .durable_blocking()
            .unwrap();
        let staged = store
            .blobs()
            .put_reader(&mut &b"zip bytes"[..], 1 << 20)
            .unwrap();
        let (r, ()) = store
            .put_release(
                &acme.prefix,
                p.id,
                None,
                std::slice::from_ref(&staged),
                |_, _, _| Ok((release("1.0.0", vec![file("Installer", &staged)]), ())),
            )
            .unwrap()
            .durable_blocking()
            .unwrap();
        drop(staged);
        let hash = r.files[0].blob;
        assert_eq!(store.blob_refs(&hash).unwrap(), 1);
        let file_id = r.files[0].id;
        assert_eq!(
            store
                .release_of_file(&acme.prefix, file_id)
                .unwrap()
                .unwrap()
                .id,
            r.id
        );
        // An equal version (1.0 = 1.0.0) is refused and changes nothing.
        let again = store.put_release(&acme.prefix, p.id, None, &[], |_, _, _| {
            Ok((release("1.0", Vec::new()), ()))
        });
        assert!(matches!(
            again.err(),
            Some(StoreError::Domain(DomainError::Conflict {
                code: "version_exists",
                ..
            }))
        ));
        store
            .delete_product(&acme.prefix, p.id)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.blob_refs(&hash).unwrap(), 0);
        assert!(
            !store.blobs().exists(&hash),
            "the last reference took the blob"
        );
        assert!(store.release(&acme.prefix, r.id).unwrap().is_none());
        assert!(
            store
                .release_of_file(&acme.prefix, file_id)
                .unwrap()
                .is_none()
        );
        assert_eq!(store.product_account(p.id).unwrap(), None);
        assert!(
            store.has(&PRODUCT_HOMES, &p.id).unwrap(),
            "the id stays taken"
        );
    }

    #[test]
    fn the_default_group_cannot_go_and_a_group_with_products_cannot_either() {
        let (_dir, store, acme) = store_with_acme();
        let err = store.delete_group(&acme.prefix, DEFAULT_GROUP).err();
        assert!(matches!(
            err,
            Some(StoreError::Domain(DomainError::Conflict {
                code: "group_is_default",
                ..
            }))
        ));
        let g = store
            .put_group(&acme.prefix, None, |_| {
                Ok(Group {
                    id: GroupId(0),
                    account: acme.prefix,
                    name: "Premium".into(),
                    created_at: now(),
                    updated_at: now(),
                })
            })
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .put_product(&acme.prefix, None, |_| {
                let mut p = new_product("x", "X");
                p.group_id = g.id;
                Ok(p)
            })
            .unwrap()
            .durable_blocking()
            .unwrap();
        let err = store.delete_group(&acme.prefix, g.id).err();
        assert!(matches!(
            err,
            Some(StoreError::Domain(DomainError::Conflict {
                code: "group_not_empty",
                ..
            }))
        ));
        assert_eq!(store.groups(&acme.prefix).unwrap().len(), 2);
    }
}
