//! Tokens: reading and listing an owner's tokens, creating, deleting, rotating (with
//! grace aliases for the previous secret), operator-token changes and values, and the
//! batched persistence of last uses.

use super::codec;
use super::key::{Key, MetaKey, OwnerName, TokenAlias};
use super::page::{Cursor, Page, PageRequest};
use super::schema::{ACCOUNTS, GRACE, GRACE_BY_TOKEN, META, OWNER_NAMES, TOKENS};
use super::tx::{abort, corrupt};
use super::{
    CreatedToken, IndexOp, KEY_FILE, MAX_GRACE_SECRETS, NewToken, Pending, Store, StoreError,
    TokenKind, generate,
};
use crate::model::{
    AccountPrefix, DomainError, GraceAlias, Principal, Timestamp, Token, TokenChanges, TokenHash,
    TokenId,
};
use crate::store::AuthRecord;
use crate::token as auth;
use std::sync::atomic::Ordering;

impl Store {
    /// A page of an owner's tokens (`None`: operator tokens, from memory), in name order
    /// (the cursor names the last token).
    pub fn tokens_page(
        &self,
        account: Option<&AccountPrefix>,
        page: &PageRequest,
    ) -> Result<Page<Token>, StoreError> {
        if account.is_none() {
            return Ok(self.operators_page(page));
        }
        let after = page
            .after
            .as_ref()
            .map(|cursor| OwnerName::new(account, cursor.value()));
        let (entries, more) = self.page_of(
            &OWNER_NAMES,
            &super::key::owner(account),
            after.as_ref(),
            page.limit,
        )?;
        let next = match (more, entries.last()) {
            (true, Some((name_key, _))) => Some(Cursor::after(name_key.name.as_str())),
            _ => None,
        };
        Ok(Page {
            items: self.tokens_behind(entries)?,
            next,
        })
    }

    /// The tokens behind name-index entries (name key and the token hash it held when
    /// read): one get per token, from the hash the scan already decoded. Plain reads, with
    /// one subtlety: sled applies a commit tree by tree, so a reader can catch a rotation or
    /// deletion half done (a name still pointing at a token already gone). Every commit runs
    /// under the write lock, so on such a miss the reader takes the lock (the commit is then
    /// complete) and reads the name entry again: gone means deleted (skipped), a new hash
    /// means rotated. Only a miss that survives this is a corrupt index. (A read
    /// transaction would also be consistent, but sled's take a global lock and write to the
    /// log: 3x slower.)
    fn tokens_behind(
        &self,
        entries: Vec<(OwnerName, TokenHash)>,
    ) -> Result<Vec<Token>, StoreError> {
        let mut tokens = Vec::with_capacity(entries.len());
        for (name_key, hash) in entries {
            if let Some(token) = self.read(&TOKENS, &hash)? {
                tokens.push(self.with_recent_use(token));
                continue;
            }
            let _settled = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            let Some(hash) = self.read(&OWNER_NAMES, &name_key)? else {
                continue;
            };
            match self.read(&TOKENS, &hash)? {
                Some(token) => tokens.push(self.with_recent_use(token)),
                None => {
                    return Err(corrupt(
                        OWNER_NAMES.id(),
                        name_key.to_bytes().as_ref(),
                        "index points at a missing token",
                    ));
                }
            }
        }
        Ok(tokens)
    }

    /// A page of the operator tokens from [`Store::operators`], as `tokens_page` would
    /// read it from the store.
    fn operators_page(&self, page: &PageRequest) -> Page<Token> {
        use std::ops::Bound;
        let operators = self.operators.read().unwrap_or_else(|e| e.into_inner());
        let start = match &page.after {
            Some(cursor) => Bound::Excluded(cursor.value().to_owned()),
            None => Bound::Unbounded,
        };
        let mut items: Vec<Token> = operators
            .range::<String, _>((start, Bound::Unbounded))
            .take(page.limit.saturating_add(1))
            .map(|(_, token)| self.with_recent_use(token.clone()))
            .collect();
        let next = (items.len() > page.limit).then(|| {
            items.truncate(page.limit);
            Cursor::after(items.last().map_or("", |token| token.name.as_str()))
        });
        Page { items, next }
    }

    /// Reads every operator token into [`Store::operators`] (at open).
    pub(super) fn load_operators(&self) -> Result<(), StoreError> {
        let (entries, _) =
            self.page_of(&OWNER_NAMES, &super::key::owner(None), None, usize::MAX)?;
        let tokens = self.tokens_behind(entries)?;
        let mut operators = self.operators.write().unwrap_or_else(|e| e.into_inner());
        operators.clear();
        operators.extend(tokens.into_iter().map(|token| (token.name.clone(), token)));
        Ok(())
    }

    /// The token with its in-memory last use, which may be newer than the stored one.
    fn with_recent_use(&self, mut token: Token) -> Token {
        if let Some(used) = self.index.last_used(&token.hash) {
            token.last_used_at = token.last_used_at.max(Some(used));
        }
        token
    }

    /// The tokens of an account (`None`: the operator tokens), in name order.
    pub fn tokens_of(&self, account: Option<&AccountPrefix>) -> Result<Vec<Token>, StoreError> {
        Ok(self.tokens_page(account, &PageRequest::all())?.items)
    }

    /// The token of an owner with this name. Not for use under the write lock.
    pub fn token_named(
        &self,
        account: Option<&AccountPrefix>,
        name: &str,
    ) -> Result<Option<Token>, StoreError> {
        let name_key = OwnerName::new(account, name);
        let Some(hash) = self.read(&OWNER_NAMES, &name_key)? else {
            return Ok(None);
        };
        Ok(self.tokens_behind(vec![(name_key, hash)])?.pop())
    }

    /// Creates a token with a fresh secret.
    ///
    /// # Errors
    /// `AccountNotFound` for an account token whose account is gone; `TokenNameTaken`;
    /// `TokenQuota` when the account already holds the most tokens allowed
    /// ([`Store::set_max_tokens_per_account`]).
    pub fn create_token(
        &self,
        new: NewToken,
        now: Timestamp,
    ) -> Result<Pending<'_, CreatedToken>, StoreError> {
        let account = new.principal.account();
        let name_key = OwnerName::new(account.as_ref(), &new.name);
        let random = match new.principal {
            Principal::Account(_) => Some(generate(TokenKind::Account)?),
            Principal::Operator { .. } => None,
        };
        self.write(|| {
            if let Some(prefix) = &account {
                // The index counts each account's tokens (it changes only under this write
                // lock, after each commit): no store scan on the write path.
                let limit = self.max_tokens_per_account.load(Ordering::Relaxed);
                if self.index.account_tokens(prefix) >= limit {
                    return Err(DomainError::TokenQuota { limit }.into());
                }
            }
            let id = TokenId(self.allocate_id());
            // Operator tokens can be read back (`GET /_/token/value`): derive them.
            let secret = match random {
                Some(secret) => secret,
                None => auth::derive(TokenKind::Operator, &self.key, id),
            };
            let token = Token {
                id,
                hash: secret.hash,
                principal: new.principal,
                name: new.name,
                scopes: new.scopes,
                expires_at: new.expires_at,
                created_at: now,
                updated_at: now,
                last_used_at: None,
            };
            self.transact(|tx| {
                if let Some(prefix) = &account {
                    if !tx.contains(&ACCOUNTS, prefix)? {
                        return abort(DomainError::AccountNotFound);
                    }
                }
                if tx.contains(&OWNER_NAMES, &name_key)? {
                    return abort(DomainError::TokenNameTaken(token.name.clone()));
                }
                if tx.contains(&TOKENS, &token.hash)? {
                    return abort(StoreError::Bug(
                        "a new token's hash is already stored".to_owned(),
                    ));
                }
                tx.take_id(token.id.0)?;
                tx.put(&TOKENS, &token.hash, &token)?;
                tx.put(&OWNER_NAMES, &name_key, &token.hash)?;
                Ok(())
            })?;
            let mut ops = vec![IndexOp::Insert(token.hash, AuthRecord::from(&token), None)];
            if account.is_none() {
                ops.push(IndexOp::Operator(token.name.clone(), Some(token.clone())));
            }
            Ok((
                CreatedToken {
                    token,
                    secret: secret.token,
                },
                ops,
            ))
        })
    }

    /// Deletes an owner's token by name; it stops authenticating at once.
    ///
    /// # Errors
    /// `TokenNotFound`.
    pub fn delete_token(
        &self,
        account: Option<&AccountPrefix>,
        name: &str,
    ) -> Result<Pending<'_, Token>, StoreError> {
        let name_key = OwnerName::new(account, name);
        self.write(|| {
            // Under the write lock plain reads are consistent (and `token_named` must not
            // be called here: its slow path takes this lock).
            let aliases = match self.read(&OWNER_NAMES, &name_key)? {
                Some(hash) => self.aliases_of(&[hash])?,
                None => Vec::new(),
            };
            let token = self.transact(|tx| {
                for alias in &aliases {
                    tx.remove(&GRACE, &alias.alias)?;
                    tx.remove(&GRACE_BY_TOKEN, alias)?;
                }
                let Some(hash) = tx.take(&OWNER_NAMES, &name_key)? else {
                    return abort(DomainError::TokenNotFound(name.to_owned()));
                };
                match tx.get(&TOKENS, &hash)? {
                    Some(token) => {
                        tx.remove(&TOKENS, &hash)?;
                        Ok(token)
                    }
                    None => abort(corrupt(
                        OWNER_NAMES.id(),
                        name_key.to_bytes().as_ref(),
                        "index points at a missing token",
                    )),
                }
            })?;
            let mut ops = vec![IndexOp::Remove(token.hash)];
            ops.extend(
                aliases
                    .into_iter()
                    .map(|alias| IndexOp::Remove(alias.alias)),
            );
            if account.is_none() {
                ops.push(IndexOp::Operator(token.name.clone(), None));
            }
            Ok((token, ops))
        })
    }

    /// Every grace alias of any of `tokens`: one prefix scan of the reverse index per
    /// token, never a scan of every alias on the server.
    pub(super) fn aliases_of(&self, tokens: &[TokenHash]) -> Result<Vec<TokenAlias>, StoreError> {
        let mut aliases = Vec::new();
        for token in tokens {
            for alias in self.scan_keys(&GRACE_BY_TOKEN, super::key::aliases_of(token)) {
                aliases.push(alias?);
            }
        }
        Ok(aliases)
    }

    /// Replaces the secret of the token with hash `current`. With `grace_until`, the old
    /// secret keeps working until then (a persisted alias); without, it stops at once.
    /// The token keeps its expiry.
    ///
    /// # Errors
    /// `GraceSecret` if `current` is a previous secret in its grace; `TokenNotFound` if
    /// the token is gone (deleted meanwhile).
    pub fn rotate_token(
        &self,
        current: &TokenHash,
        grace_until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Pending<'_, CreatedToken>, StoreError> {
        let secret = generate(TokenKind::Account)?;
        let last_used = self.index.last_used(current);
        self.write(|| {
            // A previous secret in its grace may not rotate: it would replace the owner's
            // current secret and lock them out (the handlers refuse it first; this keeps
            // the rule for every caller of the store).
            if self.has(&GRACE, current)? {
                return Err(DomainError::GraceSecret.into());
            }
            // The token's earlier secrets still in a grace: expired ones go, and at most
            // MAX_GRACE_SECRETS stay live (the newest), so chained rotations cannot grow
            // the grace tree without bound.
            let mut live = Vec::new();
            let mut retired = Vec::new();
            for TokenAlias { alias, .. } in self.aliases_of(&[*current])? {
                match self.read(&GRACE, &alias)? {
                    Some(entry) if entry.until > now => live.push((entry.until, alias)),
                    _ => retired.push(alias),
                }
            }
            live.sort_by_key(|(until, _)| *until);
            let room = MAX_GRACE_SECRETS - usize::from(grace_until.is_some());
            while live.len() > room {
                retired.push(live.remove(0).1);
            }
            let aliases: Vec<TokenHash> = live.into_iter().map(|(_, alias)| alias).collect();
            let token = self.transact(|tx| {
                for alias in &retired {
                    tx.remove(&GRACE, alias)?;
                    tx.remove(
                        &GRACE_BY_TOKEN,
                        &TokenAlias {
                            token: *current,
                            alias: *alias,
                        },
                    )?;
                }
                let Some(mut token) = tx.get(&TOKENS, current)? else {
                    return abort(DomainError::TokenNotFound(
                        "(the calling token, deleted meanwhile)".to_owned(),
                    ));
                };
                let name_key = OwnerName::new(token.principal.account().as_ref(), &token.name);
                tx.remove(&TOKENS, current)?;
                token.hash = secret.hash;
                token.updated_at = now;
                // The old secret's use not yet written (the rotate request itself, at
                // least) belongs to the token: it moves with the record, or a token used
                // only to rotate would show `last_used_at: null`.
                token.last_used_at = token.last_used_at.max(last_used);
                tx.put(&TOKENS, &token.hash, &token)?;
                tx.put(&OWNER_NAMES, &name_key, &token.hash)?;
                // Older aliases now point at the new secret's record.
                for alias in &aliases {
                    if let Some(mut entry) = tx.get(&GRACE, alias)? {
                        entry.token = token.hash;
                        tx.put(&GRACE, alias, &entry)?;
                    }
                    tx.remove(
                        &GRACE_BY_TOKEN,
                        &TokenAlias {
                            token: *current,
                            alias: *alias,
                        },
                    )?;
                    tx.put(
                        &GRACE_BY_TOKEN,
                        &TokenAlias {
                            token: token.hash,
                            alias: *alias,
                        },
                        &codec::Empty,
                    )?;
                }
                if let Some(until) = grace_until {
                    let alias = GraceAlias {
                        token: token.hash,
                        until,
                    };
                    tx.put(&GRACE, current, &alias)?;
                    tx.put(
                        &GRACE_BY_TOKEN,
                        &TokenAlias {
                            token: token.hash,
                            alias: *current,
                        },
                        &codec::Empty,
                    )?;
                }
                Ok(token)
            })?;
            let mut ops = vec![
                IndexOp::Remove(*current),
                IndexOp::Insert(token.hash, AuthRecord::from(&token), token.last_used_at),
            ];
            ops.extend(retired.into_iter().map(IndexOp::Remove));
            if let Some(until) = grace_until {
                ops.push(IndexOp::Insert(*current, alias_record(&token, until), None));
            }
            Ok((
                CreatedToken {
                    token,
                    secret: secret.token,
                },
                ops,
            ))
        })
    }

    /// Changes an operator token's expiry and flags; its value stays the same.
    ///
    /// # Errors
    /// `TokenNotFound`.
    pub fn update_operator_token(
        &self,
        name: &str,
        changes: TokenChanges,
        now: Timestamp,
    ) -> Result<Pending<'_, Token>, StoreError> {
        let name_key = OwnerName::new(None, name);
        self.write(|| {
            let token = self.transact(|tx| {
                let Some(hash) = tx.get(&OWNER_NAMES, &name_key)? else {
                    return abort(DomainError::TokenNotFound(name.to_owned()));
                };
                let Some(mut token) = tx.get(&TOKENS, &hash)? else {
                    return abort(corrupt(
                        OWNER_NAMES.id(),
                        name_key.to_bytes().as_ref(),
                        "index points at a missing token",
                    ));
                };
                if let Principal::Operator { active, write } = &mut token.principal {
                    *active = changes.active.unwrap_or(*active);
                    *write = changes.write.unwrap_or(*write);
                }
                if let Some(expires_at) = changes.expires_at {
                    token.expires_at = expires_at;
                }
                token.updated_at = now;
                tx.put(&TOKENS, &token.hash, &token)?;
                Ok(token)
            })?;
            let last_used = self.index.last_used(&token.hash);
            let ops = vec![
                IndexOp::Insert(token.hash, AuthRecord::from(&token), last_used),
                IndexOp::Operator(token.name.clone(), Some(token.clone())),
            ];
            Ok((token, ops))
        })
    }

    /// The value of the operator token named `name` (derived again from the server key).
    ///
    /// # Errors
    /// `TokenNotFound`; `Bug` if the derived value does not match the stored hash (the
    /// server key was replaced since the token was made).
    pub fn operator_token_value(&self, name: &str) -> Result<String, StoreError> {
        let token = self
            .token_named(None, name)?
            .ok_or_else(|| DomainError::TokenNotFound(name.to_owned()))?;
        let derived = auth::derive(TokenKind::Operator, &self.key, token.id);
        if derived.hash != token.hash {
            return Err(StoreError::Bug(format!(
                "the value of operator token `{name}` cannot be derived: {KEY_FILE} changed since it was created"
            )));
        }
        Ok(derived.token)
    }

    /// Writes the `last_used_at` of every token used since the last call, then flushes.
    /// Returns how many tokens were updated. Blocking: call from `spawn_blocking`.
    ///
    /// # Errors
    /// A read, write or the flush failed; the uses stay pending for the next call.
    pub fn persist_uses(&self) -> Result<usize, StoreError> {
        let pending = self.index.pending_uses();
        if pending.is_empty() {
            return Ok(0);
        }
        self.check_writable()?;
        let written = {
            let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut batch = sled::Batch::default();
            let mut touched = Vec::new();
            for used in &pending {
                // A token deleted since its use stays deleted.
                let Some(mut token) = self.read(&TOKENS, &used.hash)? else {
                    continue;
                };
                if token.last_used_at.is_some_and(|at| at >= used.at) {
                    continue;
                }
                token.last_used_at = Some(used.at);
                let key = used.hash.to_bytes().as_ref().to_vec();
                batch.insert(key.as_slice(), codec::encode(&token));
                touched.push((TOKENS.id(), key));
            }
            // The stamp first: a crash between the two leaves a store that no snapshot
            // matches, which is safe.
            let stamp_key = MetaKey::Stamp.to_bytes().as_ref().to_vec();
            self.tree(META.id())
                .insert(&stamp_key, &self.next_stamp())?;
            let written = touched.len();
            self.tree(TOKENS.id()).apply_batch(batch)?;
            if self.journal.is_active() {
                touched.push((META.id(), stamp_key));
                self.journal.note(touched);
            }
            self.commit.note_write();
            written
        };
        if let Err(err) = self.db.flush() {
            let err = StoreError::from(err);
            self.note_failure(&err);
            return Err(err);
        }
        self.index.mark_persisted(&pending);
        Ok(written)
    }

    /// Removes grace aliases whose grace has ended (they no longer authenticate, but would
    /// otherwise stay in sled and in memory until their token is next rotated or deleted).
    /// The scan runs without the write lock; at most `limit` aliases go per call, each
    /// checked again inside the transaction. Returns how many went.
    ///
    /// # Errors
    /// A read, the write or its flush failed.
    pub fn prune_expired_aliases(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let mut expired = Vec::new();
        for entry in self.scan(&GRACE, &[]) {
            let (alias, entry) = entry?;
            if entry.until <= now {
                expired.push(alias);
                if expired.len() == limit {
                    break;
                }
            }
        }
        if expired.is_empty() {
            return Ok(0);
        }
        let pending = self.write(|| {
            let removed = self.transact(|tx| {
                let mut removed = Vec::new();
                for alias in &expired {
                    // Still there and still expired (a rotation may have moved it on).
                    match tx.get(&GRACE, alias)? {
                        Some(entry) if entry.until <= now => {
                            tx.remove(&GRACE, alias)?;
                            tx.remove(
                                &GRACE_BY_TOKEN,
                                &TokenAlias {
                                    token: entry.token,
                                    alias: *alias,
                                },
                            )?;
                            removed.push(*alias);
                        }
                        _ => {}
                    }
                }
                Ok(removed)
            })?;
            let ops = removed
                .iter()
                .map(|alias| IndexOp::Remove(*alias))
                .collect();
            Ok((removed.len(), ops))
        })?;
        pending.durable_blocking()
    }
}

/// The index record of a grace alias: the token's, expiring at the end of the grace.
pub(super) fn alias_record(token: &Token, until: Timestamp) -> AuthRecord {
    let mut record = AuthRecord::from(token);
    record.expires_at = Some(record.expires_at.map_or(until, |at| at.min(until)));
    record.grace = true;
    record
}

#[cfg(test)]
mod tests {
    use super::super::FIRST_TOKEN_NAME;
    use super::super::test_support::*;
    use super::*;
    use crate::model::{Scope, Scopes, TokenName};

    #[test]
    fn a_failed_write_changes_nothing() {
        let (_dir, store, account) = store_with_acme();
        let before = store.tokens_of(Some(&account.prefix)).unwrap();
        let new = NewToken {
            principal: Principal::Account(account.prefix),
            name: TokenName::parse(FIRST_TOKEN_NAME)
                .unwrap()
                .as_str()
                .to_owned(),
            scopes: Scopes::only(Scope::Api),
            expires_at: None,
        };
        let err = store.create_token(new, now()).map(|_| ()).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Domain(DomainError::TokenNameTaken(_))
        ));
        assert_eq!(store.tokens_of(Some(&account.prefix)).unwrap(), before);
        assert_eq!(store.index().len(), 1);
        assert_eq!(store.count(&TOKENS), 1);
    }

    #[test]
    fn expired_grace_aliases_are_pruned_without_touching_live_ones() {
        let (_dir, store, acme) = store_with_acme();
        let hour = std::time::Duration::from_secs(3600);
        let token = store
            .tokens_of(Some(&acme.prefix))
            .unwrap()
            .into_iter()
            .next()
            .expect("acme's first token");
        let short = store
            .rotate_token(&token.hash, Some(now().saturating_add(hour)), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let long = store
            .rotate_token(
                &short.token.hash,
                Some(now().saturating_add(hour * 3)),
                now(),
            )
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.count(&GRACE), 2);
        assert_eq!(store.prune_expired_aliases(now(), 100).unwrap(), 0);
        let later = now().saturating_add(hour * 2);
        assert_eq!(store.prune_expired_aliases(later, 100).unwrap(), 1);
        assert_eq!(store.count(&GRACE), 1);
        assert_eq!(store.count(&GRACE_BY_TOKEN), 1);
        // The live alias (the short-grace token's secret, valid for 3 h) still works; the
        // current secret too; nothing is left to prune.
        let works = |secret: &str| {
            store
                .index()
                .authenticate(&auth::parse(secret).unwrap().1, later)
                .is_some()
        };
        assert!(works(&short.secret));
        assert!(works(&long.secret));
        assert_eq!(store.prune_expired_aliases(later, 100).unwrap(), 0);
        assert_eq!(
            store
                .prune_expired_aliases(now().saturating_add(hour * 4), 100)
                .unwrap(),
            1
        );
        assert_eq!(store.count(&GRACE_BY_TOKEN), 0);
    }

    #[test]
    fn chained_rotations_keep_a_bounded_number_of_grace_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (_, first) = store
            .create_account(new_account(Some("acme")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let mut current = first.token.hash;
        let mut secrets = vec![first.secret];
        let hour = std::time::Duration::from_secs(3600);
        for i in 0..20 {
            let at = now().saturating_add(std::time::Duration::from_secs(i));
            let rotated = store
                .rotate_token(&current, Some(at.saturating_add(hour)), at)
                .unwrap()
                .durable_blocking()
                .unwrap();
            current = rotated.token.hash;
            secrets.push(rotated.secret);
        }
        assert_eq!(store.count(&GRACE), MAX_GRACE_SECRETS);
        assert_eq!(store.count(&GRACE_BY_TOKEN), MAX_GRACE_SECRETS);
        for entry in store.scan_keys(&GRACE_BY_TOKEN, &[]) {
            let token = entry.unwrap().token;
            assert_eq!(
                token, current,
                "every alias is indexed under the current hash"
            );
        }
        // The newest earlier secrets work, the older ones were retired.
        let at = now().saturating_add(std::time::Duration::from_secs(20));
        let works = |secret: &str| {
            store
                .index()
                .authenticate(&auth::parse(secret).unwrap().1, at)
                .is_some()
        };
        assert!(works(&secrets[20]));
        for secret in &secrets[16..20] {
            assert!(works(secret));
        }
        for secret in &secrets[..16] {
            assert!(!works(secret));
        }
        // Expired graces are dropped at the next rotation.
        let later = now().saturating_add(hour * 2);
        store
            .rotate_token(&current, None, later)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.count(&GRACE), 0);
        assert_eq!(store.count(&GRACE_BY_TOKEN), 0);
    }

    #[test]
    fn deleting_or_rotating_a_token_reads_only_its_own_grace_aliases() {
        // Issue 15: every delete and rotate scanned (and decoded) every grace alias on
        // the server under the write lock. An undecodable alias of no token of this
        // test stands for "someone else's": it must not be read at all.
        let (_dir, store, account) = store_with_acme();
        let hour = std::time::Duration::from_secs(3600);
        let mut made = Vec::new();
        for name in ["a", "b"] {
            let new = NewToken {
                principal: Principal::Account(account.prefix),
                name: name.to_owned(),
                scopes: Scopes::only(Scope::Api),
                expires_at: None,
            };
            made.push(
                store
                    .create_token(new, now())
                    .unwrap()
                    .durable_blocking()
                    .unwrap(),
            );
        }
        let rotated = store
            .rotate_token(&made[0].token.hash, Some(now().saturating_add(hour)), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .tree(GRACE.id())
            .insert([0xee; 32].as_slice(), b"not a grace alias".as_slice())
            .unwrap();
        store
            .rotate_token(&made[1].token.hash, Some(now().saturating_add(hour)), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .delete_token(Some(&account.prefix), "b")
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .rotate_token(&rotated.token.hash, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .delete_token(Some(&account.prefix), "a")
            .unwrap()
            .durable_blocking()
            .unwrap();
        // Only the stranger is left; every alias of `a` and `b` went with them.
        assert_eq!(store.count(&GRACE), 1);
        assert!(
            store
                .index()
                .authenticate(&made[0].token.hash, now())
                .is_none()
        );
    }

    #[test]
    fn operator_tokens_are_listed_from_memory_as_the_store_holds_them() {
        let (dir, store, _) = store_with_acme();
        let operator = |name: &str| NewToken {
            principal: Principal::Operator {
                active: true,
                write: true,
            },
            name: name.to_owned(),
            scopes: Scopes::empty(),
            expires_at: None,
        };
        for name in ["carol", "alice", "bob"] {
            store
                .create_token(operator(name), now())
                .unwrap()
                .durable_blocking()
                .unwrap();
        }
        let changes = crate::model::TokenChanges {
            active: Some(false),
            ..Default::default()
        };
        store
            .update_operator_token("bob", changes, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .delete_token(None, "carol")
            .unwrap()
            .durable_blocking()
            .unwrap();
        // A refused write changes nothing in memory either.
        assert!(store.create_token(operator("alice"), now()).is_err());
        let listed = |store: &Store| -> Vec<(String, bool)> {
            let mut page = PageRequest::first(1);
            let mut out = Vec::new();
            loop {
                let got = store.tokens_page(None, &page).unwrap();
                for token in &got.items {
                    let active =
                        matches!(token.principal, Principal::Operator { active: true, .. });
                    out.push((token.name.clone(), active));
                }
                match got.next {
                    Some(cursor) => page.after = Some(cursor),
                    None => return out,
                }
            }
        };
        let want = vec![("alice".to_owned(), true), ("bob".to_owned(), false)];
        assert_eq!(listed(&store), want);
        // The same from a fresh open (read from the store), page by page.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(listed(&store), want);
    }

    #[test]
    fn the_index_counts_an_accounts_tokens_through_rotation_deletion_and_reloads() {
        let (dir, store, account) = store_with_acme();
        let prefix = account.prefix;
        let new = |name: &str| NewToken {
            principal: Principal::Account(prefix),
            name: name.to_owned(),
            scopes: Scopes::only(Scope::Api),
            expires_at: None,
        };
        assert_eq!(store.index.account_tokens(&prefix), 1, "the first token");
        let made = store
            .create_token(new("a"), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .create_token(new("b"), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.index.account_tokens(&prefix), 3);
        // A rotation with grace: still one token (the alias is not another token).
        let hour = std::time::Duration::from_secs(3600);
        store
            .rotate_token(&made.token.hash, Some(now().saturating_add(hour)), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.index.account_tokens(&prefix), 3);
        store
            .delete_token(Some(&prefix), "b")
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.index.account_tokens(&prefix), 2);
        // The same after a start from the snapshot and after a scanning start.
        assert!(store.save_index_snapshot().unwrap());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.index.account_tokens(&prefix), 2, "from the snapshot");
        drop(store);
        std::fs::remove_file(dir.path().join(super::super::snapshot::FILE)).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.index.account_tokens(&prefix), 2, "from a scan");
    }

    #[test]
    fn an_account_holds_at_most_its_token_quota() {
        let (_dir, store, account) = store_with_acme();
        store.set_max_tokens_per_account(3);
        let new = |name: &str| NewToken {
            principal: Principal::Account(account.prefix),
            name: name.to_owned(),
            scopes: Scopes::only(Scope::Api),
            expires_at: None,
        };
        for name in ["a", "b"] {
            store
                .create_token(new(name), now())
                .unwrap()
                .durable_blocking()
                .unwrap();
        }
        let refused = store.create_token(new("c"), now()).map(|_| ()).unwrap_err();
        assert!(matches!(
            refused,
            StoreError::Domain(DomainError::TokenQuota { limit: 3 })
        ));
        assert_eq!(store.tokens_of(Some(&account.prefix)).unwrap().len(), 3);
        // Operator tokens are not an account's.
        let operator = NewToken {
            principal: Principal::Operator {
                active: true,
                write: true,
            },
            name: "ops".to_owned(),
            scopes: Scopes::empty(),
            expires_at: None,
        };
        store
            .create_token(operator, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .delete_token(Some(&account.prefix), "a")
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .create_token(new("c"), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
    }

    #[test]
    fn pages_walk_a_listing_without_gaps_or_repeats() {
        let (_dir, store, account) = store_with_acme();
        // Another owner's tokens sort right after `acme`'s: they must not leak in.
        store
            .create_account(new_account(Some("acmf")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        for i in 0..25 {
            let new = NewToken {
                principal: Principal::Account(account.prefix),
                name: format!("t{i:02}"),
                scopes: Scopes::only(Scope::Api),
                expires_at: None,
            };
            drop(store.create_token(new, now()).unwrap());
        }
        let mut seen = Vec::new();
        let mut page = PageRequest {
            after: None,
            limit: 10,
        };
        loop {
            let got = store.tokens_page(Some(&account.prefix), &page).unwrap();
            assert!(got.items.len() <= 10);
            seen.extend(got.items.into_iter().map(|t| t.name));
            match got.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
        expected.push(FIRST_TOKEN_NAME.to_owned());
        expected.sort();
        assert_eq!(seen, expected);
        let exact = store
            .tokens_page(
                Some(&account.prefix),
                &PageRequest {
                    after: None,
                    limit: 26,
                },
            )
            .unwrap();
        assert_eq!(
            (exact.items.len(), exact.next),
            (26, None),
            "no empty last page"
        );
        let accounts = store
            .accounts_page(&PageRequest {
                after: None,
                limit: 1,
            })
            .unwrap();
        assert_eq!(
            accounts.next.as_ref().map(|cursor| cursor.value()),
            Some("acme")
        );
    }
}
