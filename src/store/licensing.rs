//! Customer licensing (SPEC §9): customers, download keys, activations, and each
//! account's licensing settings and counted-activation total (`activationUsage`).
//!
//! As in `catalog`: every key starts with its account, so another account's id is simply
//! absent; writes read what they change under the write lock, let the caller's rule (a
//! closure) decide, and commit the record with its indexes in one transaction. The
//! indexes: `email_customerid` (emails unique per account, lower-cased),
//! `keylookup_keyid` (a key by its keyed lookup hash; also in memory, `key_index`, so a
//! check reads only the key's record — and with `activation_index`, which holds each key's
//! facts and activated sites, an update check reads none), `customer_keyid` (a customer's
//! keys, for the cascade), `product_keyid` (the keys listing a product: deleting the
//! product drops it from them without a scan), `activationid_keyid` (an activation by
//! id). Every change to a counted activation changes the key's `counted` and the
//! account's `activation_usage` in the same transaction.

use super::codec::{Count, Empty};
use super::key::{AccountId, AccountPair, AccountSlug, KeyLookup, owner, pairs_of};
use super::key_index::Candidate;
use super::page::{Cursor, Page, PageRequest};
use super::schema::{
    ACCOUNTS, ACTIVATION_KEYS, ACTIVATION_USAGE, ACTIVATIONS, CUSTOMER_EMAILS, CUSTOMER_KEYS,
    CUSTOMERS, DOWNLOAD_KEYS, HOLDER_DEACTIVATIONS, KEY_LOOKUPS, LICENSING_SETTINGS, PRODUCT_KEYS,
};
use super::tx::{Tx, TxResult};
use super::{IndexOp, Pending, Store, StoreError};
use crate::model::catalog::random_id;
use crate::model::licensing::email_key;
use crate::model::{
    AccountPrefix, Activation, ActivationId, Customer, CustomerId, DomainError, DownloadKey,
    DownloadKeyId, HolderDeactivations, LicensingSettings, ProductId, ProductScope, Timestamp,
};

/// Which keys a listing wants (all given filters apply).
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub customer: Option<CustomerId>,
    /// Keys covering this product (listing it, or `all`).
    pub product: Option<ProductId>,
    /// The key whose lookup hash this is.
    pub lookup: Option<[u8; 32]>,
}

/// What an activation rule decided, under the write lock.
#[derive(Debug, Clone)]
pub enum ActivationPlan {
    /// Nothing to write (a refusal, or an activation that already exists).
    Nothing,
    /// Store this new activation (id drawn here) and the key as changed by the rule (its
    /// velocity record); the store counts it.
    Create {
        key: Box<DownloadKey>,
        activation: Activation,
    },
}

/// What [`Store::delete_activation_for_holder`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderDeactivation {
    /// Deleted: the key as changed, and the activation.
    Deleted(Box<(DownloadKey, Activation)>),
    /// The holder's limit is reached: nothing changed.
    LimitReached,
    /// The activation was gone when the write lock was taken (another request freed
    /// it): nothing changed.
    Gone,
}

/// Every licensing entry of an account, for deleting the account with them.
pub(super) struct LicensingEntries {
    customers: Vec<AccountId>,
    emails: Vec<AccountSlug>,
    keys: Vec<(AccountId, KeyLookup)>,
    customer_keys: Vec<AccountPair>,
    product_keys: Vec<AccountPair>,
    activations: Vec<AccountPair>,
    activation_keys: Vec<AccountId>,
    holder_deactivations: Vec<AccountId>,
}

impl LicensingEntries {
    /// The key-index and activation-index changes that removing these entries makes.
    pub(super) fn key_index_removals(&self) -> impl Iterator<Item = IndexOp> + '_ {
        self.keys.iter().flat_map(|(id, lookup)| {
            let id = DownloadKeyId(id.id);
            [IndexOp::KeyRemove(lookup.0, id), IndexOp::KeyGone(id)]
        })
    }
}

fn missing(what: impl Into<String>) -> StoreError {
    DomainError::Missing(what.into()).into()
}

fn rng_failed(err: getrandom::Error) -> StoreError {
    StoreError::Bug(format!("OS RNG failed: {err}"))
}

pub(super) fn at(account: &AccountPrefix, id: u64) -> AccountId {
    AccountId {
        account: *account,
        id,
    }
}

fn email_index(account: &AccountPrefix, email: &str) -> AccountSlug {
    AccountSlug {
        account: *account,
        slug: email_key(email),
    }
}

impl Store {
    // ----- reads -------------------------------------------------------------------

    /// # Errors
    /// The store failed.
    pub fn customer(
        &self,
        account: &AccountPrefix,
        id: CustomerId,
    ) -> Result<Option<Customer>, StoreError> {
        self.read(&CUSTOMERS, &at(account, id.0))
    }

    /// The customer with this email (compared case-insensitively).
    ///
    /// # Errors
    /// The store failed.
    pub fn customer_by_email(
        &self,
        account: &AccountPrefix,
        email: &str,
    ) -> Result<Option<Customer>, StoreError> {
        match self.read(&CUSTOMER_EMAILS, &email_index(account, email))? {
            Some(id) => self.customer(account, id),
            None => Ok(None),
        }
    }

    /// A page of the account's customers that `keep` keeps, by id (one range scan from
    /// the cursor, to the page's end).
    ///
    /// # Errors
    /// `InvalidCursor`, or the store failed.
    pub fn customers_page(
        &self,
        account: &AccountPrefix,
        page: &PageRequest,
        keep: Option<&mut dyn FnMut(&Customer) -> bool>,
    ) -> Result<Page<Customer>, StoreError> {
        let after = id_cursor(page)?.map(|id| at(account, id));
        let (entries, more) = self.page_of_where(
            &CUSTOMERS,
            &owner(Some(account)),
            after.as_ref(),
            page.limit,
            keep,
        )?;
        let next = match (more, entries.last()) {
            (true, Some((key, _))) => Some(Cursor::after(key.id.to_string())),
            _ => None,
        };
        Ok(Page {
            items: entries.into_iter().map(|(_, c)| c).collect(),
            next,
        })
    }

    /// # Errors
    /// The store failed.
    pub fn download_key(
        &self,
        account: &AccountPrefix,
        id: DownloadKeyId,
    ) -> Result<Option<DownloadKey>, StoreError> {
        self.read(&DOWNLOAD_KEYS, &at(account, id.0))
    }

    /// The key of the account whose lookup hash is `lookup` (`KeyVault::lookup_hash`).
    /// The in-memory key index names the candidate (`key_index`): one read, of its
    /// record, whose hash must be `lookup`; none for an unknown key. While the index is
    /// suspect (an engine error mid-write), the `keylookup_keyid` tree is read instead.
    /// No write.
    ///
    /// # Errors
    /// The store failed.
    pub fn download_key_by_lookup(
        &self,
        account: &AccountPrefix,
        lookup: &[u8; 32],
    ) -> Result<Option<DownloadKey>, StoreError> {
        // After an engine error that may have left a write half-applied, the index may
        // miss a committed key: the tree answers until the next start rebuilds it.
        let candidate = if self
            .index_suspect
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            Candidate::Ambiguous
        } else {
            self.keys.get(lookup)
        };
        let id = match candidate {
            Candidate::Absent => return Ok(None),
            Candidate::Key(id) => id,
            Candidate::Ambiguous => match self.read(&KEY_LOOKUPS, &KeyLookup(*lookup))? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        Ok(self
            .download_key(account, id)?
            .filter(|key| key.lookup == *lookup))
    }

    /// A customer's keys, by id.
    ///
    /// # Errors
    /// The store failed.
    pub fn keys_of_customer(
        &self,
        account: &AccountPrefix,
        customer: CustomerId,
    ) -> Result<Vec<DownloadKey>, StoreError> {
        let mut keys = Vec::new();
        for pair in self.scan_keys(&CUSTOMER_KEYS, &pairs_of(account, customer.0)) {
            if let Some(key) = self.download_key(account, DownloadKeyId(pair?.b))? {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// A page of the account's keys matching `filter`, by id.
    ///
    /// # Errors
    /// `InvalidCursor`, or the store failed.
    pub fn download_keys_page(
        &self,
        account: &AccountPrefix,
        filter: &KeyFilter,
        page: &PageRequest,
    ) -> Result<Page<DownloadKey>, StoreError> {
        let mut keys = match (filter.lookup, filter.customer) {
            (Some(lookup), _) => self
                .download_key_by_lookup(account, &lookup)?
                .into_iter()
                .collect(),
            (None, Some(customer)) => self.keys_of_customer(account, customer)?,
            (None, None) => {
                // All the account's keys, or those covering one product: in id order from
                // the cursor, a page read at a time (a product's keys have no index of
                // their own, but a page never reads past its end).
                let after = id_cursor(page)?.map(|id| at(account, id));
                let mut covers =
                    |k: &DownloadKey| filter.product.is_none_or(|p| k.products.covers(p));
                let (entries, more) = self.page_of_where(
                    &DOWNLOAD_KEYS,
                    &owner(Some(account)),
                    after.as_ref(),
                    page.limit,
                    filter
                        .product
                        .map(|_| &mut covers as &mut dyn FnMut(&DownloadKey) -> bool),
                )?;
                let next = match (more, entries.last()) {
                    (true, Some((key, _))) => Some(Cursor::after(key.id.to_string())),
                    _ => None,
                };
                return Ok(Page {
                    items: entries.into_iter().map(|(_, k)| k).collect(),
                    next,
                });
            }
        };
        keys.retain(|k| {
            filter.customer.is_none_or(|c| k.customer_id == c)
                && filter.product.is_none_or(|p| k.products.covers(p))
        });
        Page::of_list(keys, |k| k.id.0, page)
    }

    /// A key's activations, by id (a scan; the update checks ask the activation index,
    /// `Store::key_standing`).
    ///
    /// # Errors
    /// The store failed.
    pub fn activations(
        &self,
        account: &AccountPrefix,
        key: DownloadKeyId,
    ) -> Result<Vec<Activation>, StoreError> {
        self.scan(&ACTIVATIONS, &pairs_of(account, key.0))
            .map(|entry| entry.map(|(_, a)| a))
            .collect()
    }

    /// # Errors
    /// The store failed.
    pub fn activation(
        &self,
        account: &AccountPrefix,
        id: ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        match self.read(&ACTIVATION_KEYS, &at(account, id.0))? {
            Some(key) => self.read(
                &ACTIVATIONS,
                &AccountPair {
                    account: *account,
                    a: key.0,
                    b: id.0,
                },
            ),
            None => Ok(None),
        }
    }

    /// The account's counted activations (`activationUsage`): one read.
    ///
    /// # Errors
    /// The store failed.
    pub fn activation_usage(&self, account: &AccountPrefix) -> Result<u64, StoreError> {
        Ok(self.read(&ACTIVATION_USAGE, account)?.map_or(0, |c| c.0))
    }

    /// The account's licensing settings (the defaults when never set).
    ///
    /// # Errors
    /// The store failed.
    pub fn licensing_settings(
        &self,
        account: &AccountPrefix,
    ) -> Result<LicensingSettings, StoreError> {
        Ok(self.read(&LICENSING_SETTINGS, account)?.unwrap_or_default())
    }

    // ----- writes ------------------------------------------------------------------

    fn require_account(&self, account: &AccountPrefix) -> Result<(), StoreError> {
        if self.has(&ACCOUNTS, account)? {
            Ok(())
        } else {
            Err(DomainError::AccountNotFound.into())
        }
    }

    /// Sets the account's licensing settings.
    ///
    /// # Errors
    /// `AccountNotFound`.
    pub fn put_licensing_settings(
        &self,
        account: &AccountPrefix,
        settings: LicensingSettings,
    ) -> Result<Pending<'_, LicensingSettings>, StoreError> {
        self.write(|| {
            self.require_account(account)?;
            self.transact(|tx| tx.put(&LICENSING_SETTINGS, account, &settings))?;
            Ok((settings, Vec::new()))
        })
    }

    /// Creates a customer (`id: None`; the id is drawn here) or changes one: `change`
    /// gets the stored customer and returns the customer to store. Emails are unique in
    /// the account, compared case-insensitively.
    ///
    /// # Errors
    /// `Missing`, `AccountNotFound`, `Conflict` (`customer_exists`), or what `change`
    /// refuses.
    pub fn put_customer(
        &self,
        account: &AccountPrefix,
        id: Option<CustomerId>,
        change: impl FnOnce(Option<Customer>) -> Result<Customer, DomainError>,
    ) -> Result<Pending<'_, Customer>, StoreError> {
        self.write(|| {
            self.require_account(account)?;
            let current = match id {
                Some(id) => Some(
                    self.customer(account, id)?
                        .ok_or_else(|| missing(format!("no customer with id {id}")))?,
                ),
                None => None,
            };
            let mut customer = change(current.clone())?;
            customer.account = *account;
            customer.id = match &current {
                Some(current) => current.id,
                None => loop {
                    let candidate = CustomerId(random_id().map_err(rng_failed)?);
                    if !self.has(&CUSTOMERS, &at(account, candidate.0))? {
                        break candidate;
                    }
                },
            };
            let email = email_index(account, &customer.email);
            if let Some(other) = self.read(&CUSTOMER_EMAILS, &email)?
                && other != customer.id
            {
                return Err(DomainError::Conflict {
                    code: "customer_exists",
                    message: format!(
                        "customer {other} already has the email `{}` (emails are compared \
                         case-insensitively)",
                        customer.email
                    ),
                }
                .into());
            }
            let old_email = current.as_ref().map(|c| email_index(account, &c.email));
            let key = at(account, customer.id.0);
            self.transact(|tx| {
                if let Some(old) = &old_email
                    && *old != email
                {
                    tx.remove(&CUSTOMER_EMAILS, old)?;
                }
                tx.put(&CUSTOMER_EMAILS, &email, &customer.id)?;
                tx.put(&CUSTOMERS, &key, &customer)
            })?;
            Ok((customer, Vec::new()))
        })
    }

    /// Deletes a customer with its keys and their activations, in one transaction.
    ///
    /// # Errors
    /// `Missing`.
    pub fn delete_customer(
        &self,
        account: &AccountPrefix,
        id: CustomerId,
    ) -> Result<Pending<'_, (Customer, Vec<DownloadKey>)>, StoreError> {
        self.write(|| {
            let customer = self
                .customer(account, id)?
                .ok_or_else(|| missing(format!("no customer with id {id}")))?;
            let mut doomed = Vec::new();
            for key in self.keys_of_customer(account, id)? {
                let activations = self.activations(account, key.id)?;
                doomed.push((key, activations));
            }
            self.transact(|tx| {
                let mut freed = 0;
                for (key, activations) in &doomed {
                    freed += remove_key(tx, key, activations)?;
                }
                add_usage(tx, account, -freed)?;
                tx.remove(&CUSTOMER_EMAILS, &email_index(account, &customer.email))?;
                tx.remove(&CUSTOMERS, &at(account, id.0))
            })?;
            let keys: Vec<DownloadKey> = doomed.into_iter().map(|(k, _)| k).collect();
            let ops = keys
                .iter()
                .flat_map(|k| [IndexOp::KeyRemove(k.lookup, k.id), IndexOp::KeyGone(k.id)])
                .collect();
            Ok(((customer, keys), ops))
        })
    }

    /// Creates a key (`id: None`; the id is drawn here) or changes one: `change` gets the
    /// stored key and returns the key to store. Its customer and every product it lists
    /// must be the account's; its lookup hash must be free in the account
    /// (`409 key_exists`). Its activation count and velocity record stay the store's.
    ///
    /// # Errors
    /// `Missing`, `Invalid` (an unknown customer or product), `Conflict` (`key_exists`),
    /// or what `change` refuses.
    pub fn put_download_key(
        &self,
        account: &AccountPrefix,
        id: Option<DownloadKeyId>,
        change: impl FnOnce(Option<DownloadKey>) -> Result<DownloadKey, DomainError>,
    ) -> Result<Pending<'_, DownloadKey>, StoreError> {
        self.write(|| {
            self.require_account(account)?;
            let current = match id {
                Some(id) => Some(
                    self.download_key(account, id)?
                        .ok_or_else(|| missing(format!("no download key with id {id}")))?,
                ),
                None => None,
            };
            let mut key = change(current.clone())?;
            key.account = *account;
            match &current {
                Some(current) => {
                    key.id = current.id;
                    key.counted = current.counted;
                    key.recent_activations
                        .clone_from(&current.recent_activations);
                }
                None => {
                    key.id = loop {
                        let candidate = DownloadKeyId(random_id().map_err(rng_failed)?);
                        if !self.has(&DOWNLOAD_KEYS, &at(account, candidate.0))? {
                            break candidate;
                        }
                    };
                    key.counted = 0;
                    key.recent_activations.clear();
                }
            }
            if self.customer(account, key.customer_id)?.is_none() {
                return Err(DomainError::Invalid(format!(
                    "customer_id: no customer with id {}",
                    key.customer_id
                ))
                .into());
            }
            if let ProductScope::Only(ids) = &mut key.products {
                ids.sort_unstable();
                ids.dedup();
                for product in ids.iter() {
                    if self.product(account, *product)?.is_none() {
                        return Err(DomainError::Invalid(format!(
                            "product_ids: no product with id {product}"
                        ))
                        .into());
                    }
                }
            }
            if let Some(other) = self.read(&KEY_LOOKUPS, &KeyLookup(key.lookup))?
                && other != key.id
            {
                return Err(DomainError::Conflict {
                    code: "key_exists",
                    message: format!(
                        "download key {other} already has this key (keys are unique in an \
                         account)"
                    ),
                }
                .into());
            }
            let record = at(account, key.id.0);
            self.transact(|tx| {
                if let Some(old) = &current {
                    if old.lookup != key.lookup {
                        tx.remove(&KEY_LOOKUPS, &KeyLookup(old.lookup))?;
                    }
                    if old.customer_id != key.customer_id {
                        tx.remove(&CUSTOMER_KEYS, &pair(account, old.customer_id.0, key.id.0))?;
                    }
                    for product in old.products.listed() {
                        if !key.products.listed().contains(product) {
                            tx.remove(&PRODUCT_KEYS, &pair(account, product.0, key.id.0))?;
                        }
                    }
                }
                tx.put(&KEY_LOOKUPS, &KeyLookup(key.lookup), &key.id)?;
                tx.put(
                    &CUSTOMER_KEYS,
                    &pair(account, key.customer_id.0, key.id.0),
                    &Empty,
                )?;
                for product in key.products.listed() {
                    tx.put(&PRODUCT_KEYS, &pair(account, product.0, key.id.0), &Empty)?;
                }
                tx.put(&DOWNLOAD_KEYS, &record, &key)
            })?;
            let mut ops = Vec::with_capacity(3);
            if let Some(old) = &current
                && old.lookup != key.lookup
            {
                ops.push(IndexOp::KeyRemove(old.lookup, key.id));
            }
            ops.push(IndexOp::KeyAdd(key.lookup, key.id));
            ops.push(IndexOp::KeyFacts(Box::new(key.clone()), current.is_none()));
            Ok((key, ops))
        })
    }

    /// Deletes a key with its activations.
    ///
    /// # Errors
    /// `Missing`.
    pub fn delete_download_key(
        &self,
        account: &AccountPrefix,
        id: DownloadKeyId,
    ) -> Result<Pending<'_, DownloadKey>, StoreError> {
        self.write(|| {
            let key = self
                .download_key(account, id)?
                .ok_or_else(|| missing(format!("no download key with id {id}")))?;
            let activations = self.activations(account, id)?;
            self.transact(|tx| {
                let freed = remove_key(tx, &key, &activations)?;
                add_usage(tx, account, -freed)
            })?;
            let ops = vec![
                IndexOp::KeyRemove(key.lookup, key.id),
                IndexOp::KeyGone(key.id),
            ];
            Ok((key, ops))
        })
    }

    /// Activates key `id`: under the write lock, `decide` gets the key, its activations
    /// and the account's `activationUsage`, and says what to store (and what to answer,
    /// `T`). A created activation gets its id here, and counts (when `counts`) on the key
    /// and the account in the same transaction. When `decide` stores nothing (a site
    /// already active, a refusal), nothing is written: no flush, no generation move.
    ///
    /// # Errors
    /// `Missing`, or what `decide` refuses.
    pub fn activate<T>(
        &self,
        account: &AccountPrefix,
        id: DownloadKeyId,
        decide: impl FnOnce(
            &DownloadKey,
            &[Activation],
            u64,
        ) -> Result<(ActivationPlan, T), DomainError>,
    ) -> Result<Pending<'_, (DownloadKey, Option<Activation>, T)>, StoreError> {
        self.write_unless_unchanged(|| {
            let stored = self
                .download_key(account, id)?
                .ok_or_else(|| missing(format!("no download key with id {id}")))?;
            let activations = self.activations(account, id)?;
            let usage = self.activation_usage(account)?;
            let (plan, extra) = decide(&stored, &activations, usage)?;
            let ActivationPlan::Create {
                key: changed,
                mut activation,
            } = plan
            else {
                return Ok(((stored, None, extra), None));
            };
            let mut changed = *changed;
            changed.id = stored.id;
            changed.account = stored.account;
            changed.lookup = stored.lookup;
            changed.customer_id = stored.customer_id;
            changed.products = stored.products.clone();
            changed.counted = stored.counted + u32::from(activation.counts);
            activation.key_id = id;
            activation.id = loop {
                let candidate = ActivationId(random_id().map_err(rng_failed)?);
                if !self.has(&ACTIVATION_KEYS, &at(account, candidate.0))? {
                    break candidate;
                }
            };
            self.transact(|tx| {
                tx.put(&ACTIVATION_KEYS, &at(account, activation.id.0), &id)?;
                tx.put(
                    &ACTIVATIONS,
                    &pair(account, id.0, activation.id.0),
                    &activation,
                )?;
                tx.put(&DOWNLOAD_KEYS, &at(account, id.0), &changed)?;
                add_usage(tx, account, i64::from(activation.counts))
            })?;
            let ops = vec![
                IndexOp::KeyFacts(Box::new(changed.clone()), false),
                IndexOp::ActivationAdd(Box::new(activation.clone())),
            ];
            Ok(((changed, Some(activation), extra), Some(ops)))
        })
    }

    /// Deletes activation `id` (frees its slot): `check` may refuse it.
    ///
    /// # Errors
    /// `Missing`, or what `check` refuses.
    pub fn delete_activation(
        &self,
        account: &AccountPrefix,
        id: ActivationId,
        check: impl FnOnce(&DownloadKey, &Activation) -> Result<(), DomainError>,
    ) -> Result<Pending<'_, (DownloadKey, Activation)>, StoreError> {
        self.write(|| {
            let (mut key, activation) = self
                .activation_with_key(account, id)?
                .ok_or_else(|| missing(format!("no activation with id {id}")))?;
            check(&key, &activation)?;
            key.counted = key.counted.saturating_sub(u32::from(activation.counts));
            self.transact(|tx| remove_activation(tx, &key, &activation))?;
            let ops = vec![IndexOp::ActivationRemove(key.id, activation.id)];
            Ok(((key, activation), ops))
        })
    }

    /// Deletes activation `id` at its key holder's request (SPEC §9.2): at most `limit`
    /// such deletions of one key in the 30 days before `now` (0: no limit, and none
    /// recorded). The check, the deletion and its note are one transaction under the
    /// write lock: a restart forgets none, and two requests at once cannot both take the
    /// last one. (Callers check the budget first with [`Store::holder_deactivations`], so
    /// that a spent budget costs no write; this check is the one that holds.)
    ///
    /// # Errors
    /// The store failed.
    pub fn delete_activation_for_holder(
        &self,
        account: &AccountPrefix,
        id: ActivationId,
        limit: u32,
        now: Timestamp,
    ) -> Result<Pending<'_, HolderDeactivation>, StoreError> {
        self.write(|| {
            // Looked up again under the lock: another request may have freed it since.
            let Some((mut key, activation)) = self.activation_with_key(account, id)? else {
                return Ok((HolderDeactivation::Gone, Vec::new()));
            };
            let mut made = if limit > 0 {
                self.holder_deactivations(account, key.id, now)?
            } else {
                HolderDeactivations::default()
            };
            if !made.allows_one_more(limit) {
                return Ok((HolderDeactivation::LimitReached, Vec::new()));
            }
            made.at.push(now);
            key.counted = key.counted.saturating_sub(u32::from(activation.counts));
            self.transact(|tx| {
                remove_activation(tx, &key, &activation)?;
                if limit > 0 {
                    tx.put(&HOLDER_DEACTIVATIONS, &at(account, key.id.0), &made)?;
                }
                Ok(())
            })?;
            let ops = vec![IndexOp::ActivationRemove(key.id, activation.id)];
            Ok((
                HolderDeactivation::Deleted(Box::new((key, activation))),
                ops,
            ))
        })
    }

    /// The deactivations of key `key` by its holder within the 30 days before `now`
    /// (none recorded: empty).
    ///
    /// # Errors
    /// The store failed.
    pub fn holder_deactivations(
        &self,
        account: &AccountPrefix,
        key: DownloadKeyId,
        now: Timestamp,
    ) -> Result<HolderDeactivations, StoreError> {
        Ok(self
            .read(&HOLDER_DEACTIVATIONS, &at(account, key.0))?
            .unwrap_or_default()
            .within(now))
    }

    /// Activation `id` and its key (`None`: no such activation).
    fn activation_with_key(
        &self,
        account: &AccountPrefix,
        id: ActivationId,
    ) -> Result<Option<(DownloadKey, Activation)>, StoreError> {
        let Some(activation) = self.activation(account, id)? else {
            return Ok(None);
        };
        let key = self
            .download_key(account, activation.key_id)?
            .ok_or_else(|| StoreError::Bug(format!("activation {id} without its key")))?;
        Ok(Some((key, activation)))
    }

    /// The keys listing `product` (for deleting it: they lose it from their lists).
    pub(super) fn keys_listing(
        &self,
        account: &AccountPrefix,
        product: ProductId,
    ) -> Result<Vec<DownloadKey>, StoreError> {
        let mut keys = Vec::new();
        for entry in self.scan_keys(&PRODUCT_KEYS, &pairs_of(account, product.0)) {
            if let Some(key) = self.download_key(account, DownloadKeyId(entry?.b))? {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Every licensing entry of an account (for deleting the account).
    pub(super) fn licensing_of(
        &self,
        account: &AccountPrefix,
    ) -> Result<LicensingEntries, StoreError> {
        let prefix = owner(Some(account));
        let keys = self
            .scan(&DOWNLOAD_KEYS, &prefix)
            .map(|entry| entry.map(|(id, key)| (id, KeyLookup(key.lookup))))
            .collect::<Result<_, _>>()?;
        Ok(LicensingEntries {
            customers: self
                .scan_keys(&CUSTOMERS, &prefix)
                .collect::<Result<_, _>>()?,
            emails: self
                .scan_keys(&CUSTOMER_EMAILS, &prefix)
                .collect::<Result<_, _>>()?,
            keys,
            customer_keys: self
                .scan_keys(&CUSTOMER_KEYS, &prefix)
                .collect::<Result<_, _>>()?,
            product_keys: self
                .scan_keys(&PRODUCT_KEYS, &prefix)
                .collect::<Result<_, _>>()?,
            activations: self
                .scan_keys(&ACTIVATIONS, &prefix)
                .collect::<Result<_, _>>()?,
            activation_keys: self
                .scan_keys(&ACTIVATION_KEYS, &prefix)
                .collect::<Result<_, _>>()?,
            holder_deactivations: self
                .scan_keys(&HOLDER_DEACTIVATIONS, &prefix)
                .collect::<Result<_, _>>()?,
        })
    }
}

pub(super) fn pair(account: &AccountPrefix, a: u64, b: u64) -> AccountPair {
    AccountPair {
        account: *account,
        a,
        b,
    }
}

/// Removes a key, its index entries and its activations (inside a transaction); returns
/// how many counted activations went (the caller takes them off the account's usage).
fn remove_key(tx: &Tx<'_>, key: &DownloadKey, activations: &[Activation]) -> TxResult<i64> {
    let account = &key.account;
    let mut freed = 0;
    for activation in activations {
        tx.remove(&ACTIVATION_KEYS, &at(account, activation.id.0))?;
        tx.remove(&ACTIVATIONS, &pair(account, key.id.0, activation.id.0))?;
        freed += i64::from(activation.counts);
    }
    for product in key.products.listed() {
        tx.remove(&PRODUCT_KEYS, &pair(account, product.0, key.id.0))?;
    }
    tx.remove(&CUSTOMER_KEYS, &pair(account, key.customer_id.0, key.id.0))?;
    tx.remove(&KEY_LOOKUPS, &KeyLookup(key.lookup))?;
    tx.remove(&HOLDER_DEACTIVATIONS, &at(account, key.id.0))?;
    tx.remove(&DOWNLOAD_KEYS, &at(account, key.id.0))?;
    Ok(freed)
}

/// Removes `activation` of `key` (inside a transaction) and stores `key`, its count
/// already lowered by the caller, taking the activation off the account's usage.
fn remove_activation(tx: &Tx<'_>, key: &DownloadKey, activation: &Activation) -> TxResult<()> {
    let account = &key.account;
    tx.remove(&ACTIVATION_KEYS, &at(account, activation.id.0))?;
    tx.remove(&ACTIVATIONS, &pair(account, key.id.0, activation.id.0))?;
    tx.put(&DOWNLOAD_KEYS, &at(account, key.id.0), key)?;
    add_usage(tx, account, -i64::from(activation.counts))
}

/// Changes the account's `activation_usage` by `delta` (never below 0; the entry goes
/// at 0).
fn add_usage(tx: &Tx<'_>, account: &AccountPrefix, delta: i64) -> TxResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let current = tx.get(&ACTIVATION_USAGE, account)?.map_or(0, |c| c.0);
    let next = if delta < 0 {
        current.saturating_sub(delta.unsigned_abs())
    } else {
        current.saturating_add(delta.unsigned_abs())
    };
    if next == 0 {
        tx.remove(&ACTIVATION_USAGE, account)
    } else {
        tx.put(&ACTIVATION_USAGE, account, &Count(next))
    }
}

/// `key` without `product` in its list: a key whose products were all deleted stays,
/// covering nothing.
pub(super) fn without_product(mut key: DownloadKey, product: ProductId) -> DownloadKey {
    if let ProductScope::Only(ids) = &mut key.products {
        ids.retain(|p| *p != product);
    }
    key
}

/// Stores the keys that listed `product`, already [`without_product`] (inside the
/// product's deletion).
pub(super) fn drop_product_from_keys(
    tx: &Tx<'_>,
    product: ProductId,
    keys: &[DownloadKey],
) -> TxResult<()> {
    for key in keys {
        tx.remove(&PRODUCT_KEYS, &pair(&key.account, product.0, key.id.0))?;
        tx.put(&DOWNLOAD_KEYS, &at(&key.account, key.id.0), key)?;
    }
    Ok(())
}

/// Removes every licensing entry of an account (inside its deletion).
pub(super) fn remove_licensing(
    tx: &Tx<'_>,
    account: &AccountPrefix,
    entries: &LicensingEntries,
) -> TxResult<()> {
    for key in &entries.customers {
        tx.remove(&CUSTOMERS, key)?;
    }
    for key in &entries.emails {
        tx.remove(&CUSTOMER_EMAILS, key)?;
    }
    for (id, lookup) in &entries.keys {
        tx.remove(&DOWNLOAD_KEYS, id)?;
        tx.remove(&KEY_LOOKUPS, lookup)?;
    }
    for key in &entries.customer_keys {
        tx.remove(&CUSTOMER_KEYS, key)?;
    }
    for key in &entries.product_keys {
        tx.remove(&PRODUCT_KEYS, key)?;
    }
    for key in &entries.activations {
        tx.remove(&ACTIVATIONS, key)?;
    }
    for key in &entries.activation_keys {
        tx.remove(&ACTIVATION_KEYS, key)?;
    }
    for key in &entries.holder_deactivations {
        tx.remove(&HOLDER_DEACTIVATIONS, key)?;
    }
    tx.remove(&ACTIVATION_USAGE, account)?;
    tx.remove(&LICENSING_SETTINGS, account)
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
pub(super) mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::model::catalog::{Banners, DEFAULT_GROUP, Icons};
    use crate::model::licensing::{Entity, Identity};
    use crate::model::{KeyStatus, LicenseModel, Product, ProductKind, Timestamp};

    pub(in crate::store) fn customer(email: &str) -> Customer {
        Customer {
            id: CustomerId(0),
            account: AccountPrefix::parse("acme").unwrap(),
            name: "Ann".into(),
            email: email.into(),
            entity: Entity::Individual,
            business_name: None,
            vat_number: None,
            country: None,
            state: None,
            city: None,
            address: None,
            postcode: None,
            phone: None,
            notes: None,
            created_at: now(),
            updated_at: now(),
        }
    }

    /// Stores a customer with `email` in `account`, durably.
    pub(in crate::store) fn put_customer(
        store: &Store,
        account: &AccountPrefix,
        email: &str,
    ) -> Customer {
        store
            .put_customer(account, None, |_| Ok(customer(email)))
            .unwrap()
            .durable_blocking()
            .unwrap()
    }

    /// Stores `key` as a new key of `account`, durably.
    pub(in crate::store) fn put_key(
        store: &Store,
        account: &AccountPrefix,
        key: DownloadKey,
    ) -> DownloadKey {
        store
            .put_download_key(account, None, |_| Ok(key))
            .unwrap()
            .durable_blocking()
            .unwrap()
    }

    pub(in crate::store) fn key(
        customer: CustomerId,
        lookup: u8,
        products: ProductScope,
    ) -> DownloadKey {
        DownloadKey {
            id: DownloadKeyId(0),
            account: AccountPrefix::parse("acme").unwrap(),
            customer_id: customer,
            lookup: [lookup; 32],
            sealed: vec![1, 2, 3],
            products,
            activation_limit: 1,
            status: KeyStatus::Active,
            expires_at: None,
            notes: None,
            counted: 0,
            recent_activations: Vec::new(),
            created_at: now(),
            updated_at: now(),
            last_checked_at: None,
        }
    }

    pub(in crate::store) fn product(
        store: &Store,
        account: &AccountPrefix,
        slug: &str,
    ) -> ProductId {
        store
            .put_product(account, None, |_| {
                Ok(Product {
                    id: ProductId(0),
                    account: *account,
                    slug: slug.into(),
                    kind: ProductKind::Plugin,
                    name: slug.into(),
                    group_id: DEFAULT_GROUP,
                    short_description: None,
                    description: None,
                    homepage: None,
                    author: None,
                    author_homepage: None,
                    icons: Icons::default(),
                    banners: Banners::default(),
                    license: LicenseModel::DownloadKeys,
                    require_activation: false,
                    published: true,
                    static_keys: Vec::new(),
                    created_at: now(),
                    updated_at: now(),
                })
            })
            .unwrap()
            .durable_blocking()
            .unwrap()
            .id
    }

    fn site_activation(host: &str, counts: bool) -> Activation {
        Activation {
            id: ActivationId(0),
            key_id: DownloadKeyId(0),
            identity: Identity::Site(crate::model::normalize_site(host).unwrap()),
            label: None,
            counts,
            created_at: now(),
            last_seen_at: None,
        }
    }

    pub(in crate::store) fn activate(
        store: &Store,
        k: &DownloadKey,
        host: &str,
        counts: bool,
    ) -> Activation {
        store
            .activate(&k.account, k.id, |stored, _, _| {
                let mut changed = stored.clone();
                changed.note_activation(Timestamp::from_secs(1));
                Ok((
                    ActivationPlan::Create {
                        key: Box::new(changed),
                        activation: site_activation(host, counts),
                    },
                    (),
                ))
            })
            .unwrap()
            .durable_blocking()
            .unwrap()
            .1
            .unwrap()
    }

    #[test]
    fn customer_emails_are_unique_case_insensitively_per_account() {
        let (_dir, store, acme) = store_with_acme();
        let a = store
            .put_customer(&acme.prefix, None, |_| Ok(customer("Ann@Example.com")))
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(a.id.0 > 1);
        let dup = store.put_customer(&acme.prefix, None, |_| Ok(customer("ann@example.COM")));
        assert!(matches!(
            dup.err(),
            Some(StoreError::Domain(DomainError::Conflict {
                code: "customer_exists",
                ..
            }))
        ));
        assert_eq!(
            store
                .customer_by_email(&acme.prefix, "ANN@example.com")
                .unwrap()
                .unwrap()
                .id,
            a.id
        );
        // Changing one's own email's case is fine; the old index entry goes.
        store
            .put_customer(&acme.prefix, Some(a.id), |c| {
                let mut c = c.unwrap();
                c.email = "other@example.com".into();
                Ok(c)
            })
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(
            store
                .customer_by_email(&acme.prefix, "ann@example.com")
                .unwrap()
                .is_none()
        );
        let unknown = AccountPrefix::parse("nobody").unwrap();
        assert!(
            store
                .put_customer(&unknown, None, |_| Ok(customer("x@y.z")))
                .is_err()
        );
    }

    #[test]
    fn keys_cascade_with_their_customer_and_count_activations() {
        let (_dir, store, acme) = store_with_acme();
        let a = &acme.prefix;
        let c = store
            .put_customer(a, None, |_| Ok(customer("ann@example.com")))
            .unwrap()
            .durable_blocking()
            .unwrap();
        let p = product(&store, a, "hello");
        let k = store
            .put_download_key(a, None, |_| Ok(key(c.id, 7, ProductScope::Only(vec![p]))))
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(
            store
                .download_key_by_lookup(a, &[7; 32])
                .unwrap()
                .unwrap()
                .id,
            k.id
        );
        let dup = store.put_download_key(a, None, |_| Ok(key(c.id, 7, ProductScope::All)));
        assert!(matches!(
            dup.err(),
            Some(StoreError::Domain(DomainError::Conflict {
                code: "key_exists",
                ..
            }))
        ));
        let bad_product = store.put_download_key(a, None, |_| {
            Ok(key(c.id, 8, ProductScope::Only(vec![ProductId(12345)])))
        });
        assert!(matches!(
            bad_product.err(),
            Some(StoreError::Domain(DomainError::Invalid(_)))
        ));
        let one = activate(&store, &k, "example.com", true);
        activate(&store, &k, "staging.example.com", false);
        assert_eq!(store.activation_usage(a).unwrap(), 1);
        assert_eq!(store.download_key(a, k.id).unwrap().unwrap().counted, 1);
        assert_eq!(store.activation(a, one.id).unwrap().unwrap(), one);
        store
            .delete_activation(a, one.id, |_, _| Ok(()))
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.activation_usage(a).unwrap(), 0);
        activate(&store, &k, "example.org", true);
        assert_eq!(store.activation_usage(a).unwrap(), 1);
        let (_, keys) = store
            .delete_customer(a, c.id)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(store.activation_usage(a).unwrap(), 0);
        assert!(store.download_key_by_lookup(a, &[7; 32]).unwrap().is_none());
        for count in [
            store.count(&DOWNLOAD_KEYS),
            store.count(&ACTIVATIONS),
            store.count(&ACTIVATION_KEYS),
            store.count(&KEY_LOOKUPS),
            store.count(&CUSTOMER_KEYS),
            store.count(&PRODUCT_KEYS),
            store.count(&CUSTOMERS),
            store.count(&CUSTOMER_EMAILS),
            store.count(&ACTIVATION_USAGE),
        ] {
            assert_eq!(count, 0);
        }
    }

    #[test]
    fn holder_deactivations_are_limited_counted_durably_and_go_with_their_key() {
        let (dir, store, acme) = store_with_acme();
        let a = acme.prefix;
        let c = put_customer(&store, &a, "ann@example.com");
        let k = put_key(&store, &a, key(c.id, 7, ProductScope::All));
        let other = put_key(&store, &a, key(c.id, 8, ProductScope::All));
        let t0 = Timestamp::from_secs(1_800_000_000);
        let at = |secs: u64| Timestamp::from_millis(t0.as_millis() + secs * 1000);
        let free = |store: &Store, id: ActivationId, limit: u32, when: Timestamp| {
            store
                .delete_activation_for_holder(&a, id, limit, when)
                .unwrap()
                .durable_blocking()
                .unwrap()
        };
        for (i, host) in ["one.example", "two.example"].into_iter().enumerate() {
            let made = activate(&store, &k, host, true);
            let HolderDeactivation::Deleted(deleted) = free(&store, made.id, 2, at(i as u64))
            else {
                panic!("{host} was not freed");
            };
            let (key, freed) = *deleted;
            assert_eq!((key.id, freed.id), (k.id, made.id));
            assert!(store.activation(&a, made.id).unwrap().is_none());
            // Freed already (another request was first): nothing to do, nothing counted.
            assert_eq!(
                free(&store, made.id, 2, at(i as u64)),
                HolderDeactivation::Gone
            );
        }
        assert_eq!(store.activation_usage(&a).unwrap(), 0);
        // The third within 30 days is refused and changes nothing.
        let third = activate(&store, &k, "three.example", true);
        assert_eq!(
            free(&store, third.id, 2, at(2)),
            HolderDeactivation::LimitReached
        );
        assert_eq!(store.activation(&a, third.id).unwrap(), Some(third.clone()));
        assert_eq!(store.activation_usage(&a).unwrap(), 1);
        assert_eq!(
            store.holder_deactivations(&a, k.id, at(2)).unwrap().at,
            vec![at(0), at(1)]
        );
        // Another key has its own budget; a limit of 0 is none, and records nothing.
        let theirs = activate(&store, &other, "other.example", true);
        assert!(matches!(
            free(&store, theirs.id, 2, at(3)),
            HolderDeactivation::Deleted(..)
        ));
        let again = activate(&store, &other, "other.example", true);
        assert_eq!(
            free(&store, again.id, 1, at(4)),
            HolderDeactivation::LimitReached
        );
        assert!(matches!(
            free(&store, again.id, 0, at(4)),
            HolderDeactivation::Deleted(..)
        ));
        assert_eq!(
            store.holder_deactivations(&a, other.id, at(4)).unwrap().at,
            vec![at(3)]
        );
        // Reopened, the store still counts them.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            free(&store, third.id, 2, at(5)),
            HolderDeactivation::LimitReached
        );
        // 30 days after the first, one is free again; the record keeps only that window.
        let later = Timestamp::from_millis(
            t0.as_millis() + crate::model::HOLDER_DEACTIVATION_WINDOW_MS + 1,
        );
        assert!(matches!(
            free(&store, third.id, 2, later),
            HolderDeactivation::Deleted(..)
        ));
        assert_eq!(
            store.holder_deactivations(&a, k.id, later).unwrap().at,
            vec![at(1), later]
        );
        // Deleting the key takes its record; deleting the account, the rest.
        assert_eq!(store.count(&HOLDER_DEACTIVATIONS), 2);
        store
            .delete_download_key(&a, k.id)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.count(&HOLDER_DEACTIVATIONS), 1);
        store
            .delete_account(&a)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.count(&HOLDER_DEACTIVATIONS), 0);
    }

    #[test]
    fn deleting_a_product_drops_it_from_keys_and_an_account_takes_everything() {
        let (_dir, store, acme) = store_with_acme();
        let a = &acme.prefix;
        let c = store
            .put_customer(a, None, |_| Ok(customer("ann@example.com")))
            .unwrap()
            .durable_blocking()
            .unwrap();
        let p = product(&store, a, "hello");
        let q = product(&store, a, "world");
        let k = store
            .put_download_key(a, None, |_| {
                Ok(key(c.id, 1, ProductScope::Only(vec![p, q])))
            })
            .unwrap()
            .durable_blocking()
            .unwrap();
        let all = store
            .put_download_key(a, None, |_| Ok(key(c.id, 2, ProductScope::All)))
            .unwrap()
            .durable_blocking()
            .unwrap();
        for id in [p, q] {
            store
                .delete_product(a, id)
                .unwrap()
                .durable_blocking()
                .unwrap();
        }
        let k = store.download_key(a, k.id).unwrap().unwrap();
        assert_eq!(k.products, ProductScope::Only(Vec::new()), "the key stays");
        assert_eq!(
            store.download_key(a, all.id).unwrap().unwrap().products,
            ProductScope::All
        );
        assert_eq!(store.count(&PRODUCT_KEYS), 0);
        activate(&store, &k, "example.com", true);
        store
            .put_licensing_settings(
                a,
                LicensingSettings {
                    generator: crate::model::KeyGenerator::segmented_default(),
                },
            )
            .unwrap()
            .durable_blocking()
            .unwrap();
        store.delete_account(a).unwrap().durable_blocking().unwrap();
        for count in [
            store.count(&DOWNLOAD_KEYS),
            store.count(&ACTIVATIONS),
            store.count(&KEY_LOOKUPS),
            store.count(&CUSTOMERS),
            store.count(&ACTIVATION_USAGE),
            store.count(&LICENSING_SETTINGS),
        ] {
            assert_eq!(count, 0);
        }
    }
    #[test]
    fn checks_are_noted_in_memory_and_persisted_in_a_batch() {
        let (dir, store, acme) = store_with_acme();
        let a = acme.prefix;
        let c = store
            .put_customer(&a, None, |_| Ok(customer("ann@example.com")))
            .unwrap()
            .durable_blocking()
            .unwrap();
        let k = store
            .put_download_key(&a, None, |_| Ok(key(c.id, 3, ProductScope::All)))
            .unwrap()
            .durable_blocking()
            .unwrap();
        let act = activate(&store, &k, "example.com", true);
        let later = Timestamp::from_secs(1_790_000_500);
        store.note_key_check(&a, k.id, Some(act.id), later);
        store.note_key_check(&a, k.id, None, Timestamp::from_secs(1_790_000_400));
        let stored = store.download_key(&a, k.id).unwrap().unwrap();
        assert_eq!(stored.last_checked_at, None, "no write on a check");
        assert_eq!(
            store.with_pending_checks(stored).last_checked_at,
            Some(later),
            "the newest check wins"
        );
        assert_eq!(store.persist_license_uses().unwrap(), 1);
        assert_eq!(store.persist_license_uses().unwrap(), 0, "nothing left");
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .download_key(&a, k.id)
                .unwrap()
                .unwrap()
                .last_checked_at,
            Some(later)
        );
        assert_eq!(
            store.activation(&a, act.id).unwrap().unwrap().last_seen_at,
            Some(later)
        );
        // A key deleted after its check stays deleted.
        store.note_key_check(&a, k.id, None, later);
        store
            .delete_download_key(&a, k.id)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.persist_license_uses().unwrap(), 0);
        assert!(store.download_key(&a, k.id).unwrap().is_none());
    }
}
