//! Accounts: reading, listing, creating (with the first token) and deleting (with every
//! token and grace alias, its catalogue — groups, products, versions, files and their blob
//! references —, its customers, download keys and activations, unbinding the plan license).

use super::codec::Raw;
use super::key::{MetaKey, OwnerName, TokenAlias};
use super::page::{Cursor, Page, PageRequest};
use super::schema::{ACCOUNTS, GRACE, GRACE_BY_TOKEN, LICENSES, OWNER_NAMES, TOKENS};
use super::tx::abort;
use super::{
    CreatedToken, FIRST_TOKEN_NAME, IndexOp, Pending, Store, StoreError, TokenKind, generate,
};
use crate::model::{
    Account, AccountPrefix, DomainError, NewAccount, Principal, Scope, Scopes, Timestamp, Token,
    TokenHash, TokenId,
};
use crate::store::AuthRecord;
use crate::token as auth;

impl Store {
    pub fn account(&self, prefix: &AccountPrefix) -> Result<Option<Account>, StoreError> {
        self.read(&ACCOUNTS, prefix)
    }

    /// Every account, in prefix order.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.accounts_page(&PageRequest::all())?.items)
    }

    /// A page of accounts, in prefix order (one range scan; the cursor names the last
    /// prefix).
    ///
    /// # Errors
    /// `InvalidCursor` for a cursor that is not an account prefix.
    pub fn accounts_page(&self, page: &PageRequest) -> Result<Page<Account>, StoreError> {
        let after = match &page.after {
            Some(cursor) => Some(
                AccountPrefix::parse(cursor.value())
                    .map_err(|why| StoreError::InvalidCursor(format!("not an account: {why}")))?,
            ),
            None => None,
        };
        let (entries, more) = self.page_of(&ACCOUNTS, &[], after.as_ref(), page.limit)?;
        let next = match (more, entries.last()) {
            (true, Some((prefix, _))) => Some(Cursor::after(prefix.as_str())),
            _ => None,
        };
        Ok(Page {
            items: entries.into_iter().map(|(_, account)| account).collect(),
            next,
        })
    }

    /// Number of accounts (from memory).
    pub fn account_count(&self) -> u64 {
        self.index.account_count() as u64
    }

    /// From memory: `None` if there is no such account, else the limit of its plan
    /// license at `now` (`Some(None)`: none bound, or it has expired).
    pub fn plan_limit(&self, prefix: &AccountPrefix, now: Timestamp) -> Option<Option<u32>> {
        self.index.plan_limit(prefix, now)
    }

    /// Creates an account (random prefix when none is given) and its first token,
    /// `default` with scope `api`, expiring at `new.first_token_expires_at` (never,
    /// unless its creator's credential expires).
    ///
    /// # Errors
    /// `AccountExists` when the given prefix is taken.
    pub fn create_account(
        &self,
        new: NewAccount,
        now: Timestamp,
    ) -> Result<Pending<'_, (Account, CreatedToken)>, StoreError> {
        let secret = generate(TokenKind::Account)?;
        self.write(|| {
            let token_id = TokenId(self.allocate_id());
            // A random prefix may collide with an existing one; draw again.
            let mut attempts = 0;
            let account = loop {
                let prefix = match new.prefix {
                    Some(prefix) => prefix,
                    None => auth::random_prefix()
                        .map_err(|err| StoreError::Bug(format!("OS RNG failed: {err}")))?,
                };
                if !self.has(&ACCOUNTS, &prefix)? {
                    break Account {
                        prefix,
                        name: new.name.clone(),
                        email: new.email.clone(),
                        created_at: now,
                        updated_at: now,
                        license: None,
                    };
                }
                attempts += 1;
                if new.prefix.is_some() || attempts >= 16 {
                    return Err(DomainError::AccountExists(prefix).into());
                }
            };
            let token = Token {
                id: token_id,
                hash: secret.hash,
                principal: Principal::Account(account.prefix),
                name: FIRST_TOKEN_NAME.to_owned(),
                scopes: Scopes::only(Scope::Api),
                expires_at: new.first_token_expires_at,
                created_at: now,
                updated_at: now,
                last_used_at: None,
            };
            let name_key = OwnerName::new(Some(&account.prefix), &token.name);
            self.transact(|tx| {
                if tx.contains(&ACCOUNTS, &account.prefix)? {
                    return abort(DomainError::AccountExists(account.prefix));
                }
                tx.put(&ACCOUNTS, &account.prefix, &account)?;
                if tx
                    .get(&super::schema::META, &MetaKey::DefaultAccount)?
                    .is_none()
                {
                    // The first account becomes the bare host's default (SPEC §8.2).
                    let prefix = Raw(account.prefix.as_str().as_bytes().to_vec());
                    tx.put(&super::schema::META, &MetaKey::DefaultAccount, &prefix)?;
                }
                tx.take_id(token.id.0)?;
                tx.put(&TOKENS, &token.hash, &token)?;
                tx.put(&OWNER_NAMES, &name_key, &token.hash)?;
                Ok(())
            })?;
            let op = IndexOp::Insert(token.hash, AuthRecord::from(&token), None);
            let created = CreatedToken {
                token,
                secret: secret.token,
            };
            let account_op = IndexOp::SetAccount(account.prefix, None, None);
            Ok(((account, created), vec![op, account_op]))
        })
    }

    /// Deletes an account, all its tokens, its catalogue, licensing records and report
    /// rollups, and unbinds its plan license.
    ///
    /// # Errors
    /// `AccountNotFound`.
    pub fn delete_account(
        &self,
        prefix: &AccountPrefix,
    ) -> Result<Pending<'_, Account>, StoreError> {
        self.write(|| {
            // Under the write lock, so the scan stays true for the transaction.
            let owned = self.owner_entries(Some(prefix))?;
            let hashes: Vec<TokenHash> = owned.iter().map(|(_, hash)| *hash).collect();
            let aliases = self.aliases_of(&hashes)?;
            let (catalogue, groups) = self.catalogue_of(prefix)?;
            let licensing = self.licensing_of(prefix)?;
            let rollups = self.rollup_keys_of(prefix)?;
            let account = self.transact(|tx| {
                super::licensing::remove_licensing(tx, prefix, &licensing)?;
                for rollup in &rollups {
                    tx.remove(&super::schema::ROLLUPS, rollup)?;
                }
                for catalogued in &catalogue {
                    super::catalog::remove_product(tx, catalogued)?;
                }
                for group in &groups {
                    tx.remove(&super::schema::GROUPS, group)?;
                }
                for alias in &aliases {
                    tx.remove(&GRACE, &alias.alias)?;
                    tx.remove(&GRACE_BY_TOKEN, alias)?;
                }
                let Some(account) = tx.get(&ACCOUNTS, prefix)? else {
                    return abort(DomainError::AccountNotFound);
                };
                tx.remove(&ACCOUNTS, prefix)?;
                for (name_key, hash) in &owned {
                    tx.remove(&OWNER_NAMES, name_key)?;
                    tx.remove(&TOKENS, hash)?;
                }
                if let Some(license_id) = account.license {
                    if let Some(mut license) = tx.get(&LICENSES, &license_id)? {
                        license.account = None;
                        tx.put(&LICENSES, &license_id, &license)?;
                    }
                }
                Ok(account)
            })?;
            let mut ops: Vec<IndexOp> = hashes
                .into_iter()
                .chain(aliases.iter().map(|alias: &TokenAlias| alias.alias))
                .map(IndexOp::Remove)
                .collect();
            ops.extend(licensing.key_index_removals());
            ops.push(IndexOp::RemoveAccount(account.prefix));
            Ok((account, ops))
        })
    }

    /// The account the bare host's public routes serve (SPEC §8.2): the one set (first
    /// created, or chosen with `account set-default`) while it exists; otherwise the
    /// oldest remaining account.
    ///
    /// # Errors
    /// The store failed.
    pub fn default_account(&self) -> Result<Option<AccountPrefix>, StoreError> {
        if let Some(Raw(bytes)) = self.read(&super::schema::META, &MetaKey::DefaultAccount)?
            && let Ok(text) = std::str::from_utf8(&bytes)
            && let Ok(prefix) = AccountPrefix::parse(text)
            && self
                .index
                .plan_limit(&prefix, Timestamp::from_millis(0))
                .is_some()
        {
            return Ok(Some(prefix));
        }
        Ok(self
            .accounts()?
            .into_iter()
            .min_by_key(|a| (a.created_at, a.prefix))
            .map(|a| a.prefix))
    }

    /// Makes `prefix` the bare host's default account.
    ///
    /// # Errors
    /// `AccountNotFound`.
    pub fn set_default_account(
        &self,
        prefix: &AccountPrefix,
    ) -> Result<Pending<'_, AccountPrefix>, StoreError> {
        self.write(|| {
            let value = Raw(prefix.as_str().as_bytes().to_vec());
            self.transact(|tx| {
                if !tx.contains(&ACCOUNTS, prefix)? {
                    return abort(DomainError::AccountNotFound);
                }
                tx.put(&super::schema::META, &MetaKey::DefaultAccount, &value)
            })?;
            Ok((*prefix, Vec::new()))
        })
    }

    /// `(name key, token hash)` of every token of an owner (`None`: operator tokens).
    pub(super) fn owner_entries(
        &self,
        account: Option<&AccountPrefix>,
    ) -> Result<Vec<(OwnerName, TokenHash)>, StoreError> {
        self.scan(&OWNER_NAMES, &super::key::owner(account))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn the_account_index_follows_every_change_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let prefix = AccountPrefix::parse("acme").unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), None);
        store
            .create_account(new_account(Some("acme")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), Some(None));
        let issued = store
            .issue_license(7, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .apply_license(&prefix, &issued.license.key_hash, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), Some(Some(7)));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.plan_limit(&prefix, now()),
            Some(Some(7)),
            "rebuilt at open"
        );
        assert_eq!(store.account_count(), 1);
        store
            .revoke_license(issued.license.id, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), Some(None));
        store
            .delete_account(&prefix)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), None);
        assert_eq!(store.account_count(), 0);
    }

    #[test]
    fn deleting_an_account_removes_its_tokens_and_frees_its_license() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (account, first) = store
            .create_account(new_account(None), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let issued = store
            .issue_license(5, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .apply_license(&account.prefix, &issued.license.key_hash, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(store.index().get(&first.token.hash).is_some());
        store
            .delete_account(&account.prefix)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(store.index().get(&first.token.hash).is_none());
        assert!(store.tokens_of(Some(&account.prefix)).unwrap().is_empty());
        assert_eq!(
            store.license(issued.license.id).unwrap().unwrap().account,
            None
        );
        assert_eq!(store.count(&TOKENS), 0);
    }

    #[test]
    fn account_pages_follow_their_cursor_and_refuse_a_foreign_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for prefix in ["bbb", "aaa", "ccc"] {
            store
                .create_account(new_account(Some(prefix)), now())
                .unwrap()
                .durable_blocking()
                .unwrap();
        }
        let first = store.accounts_page(&PageRequest::first(2)).unwrap();
        let names: Vec<&str> = first.items.iter().map(|a| a.prefix.as_str()).collect();
        assert_eq!(names, ["aaa", "bbb"]);
        let cursor = first.next.expect("a next page");
        assert_eq!(
            cursor.value(),
            "bbb",
            "the cursor names a prefix, not key bytes"
        );
        let wire = cursor.as_str().to_owned();
        let second = store
            .accounts_page(&PageRequest {
                after: Some(Cursor::parse(&wire).unwrap()),
                limit: 2,
            })
            .unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.items[0].prefix.as_str(), "ccc");
        assert_eq!(second.next, None);
        let foreign = store.accounts_page(&PageRequest {
            after: Some(Cursor::after("Not A Prefix")),
            limit: 2,
        });
        assert!(
            matches!(foreign, Err(StoreError::InvalidCursor(_))),
            "{foreign:?}"
        );
    }
}
