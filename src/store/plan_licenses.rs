//! Plan licenses: reading, listing, issuing, revoking, and binding one to an account.

use super::page::{Cursor, Page, PageRequest};
use super::schema::{ACCOUNTS, LICENSE_HASHES, LICENSES};
use super::tx::abort;
use super::{IndexOp, IssuedLicense, Pending, Store, StoreError, TokenKind, generate};
use crate::model::{
    Account, AccountPrefix, DomainError, LicenseId, PlanLicense, Timestamp, TokenHash,
};

impl Store {
    pub fn license(&self, id: LicenseId) -> Result<Option<PlanLicense>, StoreError> {
        self.read(&LICENSES, &id)
    }

    /// Every plan license, oldest first.
    pub fn licenses(&self) -> Result<Vec<PlanLicense>, StoreError> {
        Ok(self.licenses_page(&PageRequest::all())?.items)
    }

    /// A page of plan licenses, oldest first (the cursor names the last id).
    ///
    /// # Errors
    /// `InvalidCursor` for a cursor that is not a license id.
    pub fn licenses_page(&self, page: &PageRequest) -> Result<Page<PlanLicense>, StoreError> {
        let after = match &page.after {
            Some(cursor) => Some(LicenseId(cursor.value().parse::<u64>().map_err(|_| {
                StoreError::InvalidCursor("not a plan license's position".to_owned())
            })?)),
            None => None,
        };
        let (entries, more) = self.page_of(&LICENSES, &[], after.as_ref(), page.limit)?;
        let next = match (more, entries.last()) {
            (true, Some((id, _))) => Some(Cursor::after(id.0.to_string())),
            _ => None,
        };
        Ok(Page {
            items: entries.into_iter().map(|(_, license)| license).collect(),
            next,
        })
    }

    /// The plan license bound to an account, if any (expired or not: see
    /// [`PlanLicense::limit_at`] for what it grants).
    pub fn account_license(&self, account: &Account) -> Result<Option<PlanLicense>, StoreError> {
        match account.license {
            None => Ok(None),
            Some(id) => self.license(id),
        }
    }

    /// Issues a plan license with a fresh `upk_pl_…` key.
    ///
    /// # Errors
    /// The store failed.
    pub fn issue_license(
        &self,
        limit: u32,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Pending<'_, IssuedLicense>, StoreError> {
        let secret = generate(TokenKind::PlanLicense)?;
        self.write(|| {
            let license = PlanLicense {
                id: LicenseId(self.allocate_id()),
                key_hash: secret.hash,
                limit,
                expires_at,
                created_at: now,
                account: None,
            };
            self.transact(|tx| {
                if tx.contains(&LICENSES, &license.id)? {
                    return abort(StoreError::Bug(
                        "a new plan license's id is taken".to_owned(),
                    ));
                }
                tx.take_id(license.id.0)?;
                tx.put(&LICENSES, &license.id, &license)?;
                tx.put(&LICENSE_HASHES, &license.key_hash, &license.id)?;
                Ok(())
            })?;
            Ok((
                IssuedLicense {
                    license,
                    key: secret.token,
                },
                vec![],
            ))
        })
    }

    /// Revokes (deletes) a plan license; the account it was bound to falls back to the
    /// default activation limit.
    ///
    /// # Errors
    /// `LicenseNotFound`.
    pub fn revoke_license(
        &self,
        id: LicenseId,
        now: Timestamp,
    ) -> Result<Pending<'_, PlanLicense>, StoreError> {
        self.write(|| {
            let (license, unbound) = self.transact(|tx| {
                let Some(license) = tx.get(&LICENSES, &id)? else {
                    return abort(DomainError::LicenseNotFound(id));
                };
                tx.remove(&LICENSES, &id)?;
                tx.remove(&LICENSE_HASHES, &license.key_hash)?;
                let mut unbound = false;
                if let Some(prefix) = &license.account {
                    if let Some(mut account) = tx.get(&ACCOUNTS, prefix)? {
                        account.license = None;
                        account.updated_at = now;
                        tx.put(&ACCOUNTS, prefix, &account)?;
                        unbound = true;
                    }
                }
                Ok((license, unbound))
            })?;
            let ops = match (unbound, license.account) {
                (true, Some(prefix)) => vec![IndexOp::SetAccount(prefix, None, None)],
                _ => vec![],
            };
            Ok((license, ops))
        })
    }

    /// Binds the plan license with this key hash to an account, replacing (unbinding)
    /// the one it had. Applying the license an account already holds changes nothing.
    ///
    /// # Errors
    /// `LicenseUnknown`, `LicenseExpired`, `LicenseInUse` (bound elsewhere),
    /// `AccountNotFound`.
    pub fn apply_license(
        &self,
        prefix: &AccountPrefix,
        key_hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Pending<'_, PlanLicense>, StoreError> {
        self.write(|| {
            let license = self.transact(|tx| {
                let Some(id) = tx.get(&LICENSE_HASHES, key_hash)? else {
                    return abort(DomainError::LicenseUnknown);
                };
                let Some(mut license) = tx.get(&LICENSES, &id)? else {
                    return abort(DomainError::LicenseUnknown);
                };
                if license.is_expired(now) {
                    return abort(DomainError::LicenseExpired);
                }
                match &license.account {
                    Some(bound) if bound == prefix => return Ok(license),
                    Some(_) => return abort(DomainError::LicenseInUse),
                    None => {}
                }
                let Some(mut account) = tx.get(&ACCOUNTS, prefix)? else {
                    return abort(DomainError::AccountNotFound);
                };
                if let Some(previous) = account.license {
                    if let Some(mut old) = tx.get(&LICENSES, &previous)? {
                        old.account = None;
                        tx.put(&LICENSES, &previous, &old)?;
                    }
                }
                license.account = Some(*prefix);
                account.license = Some(id);
                account.updated_at = now;
                tx.put(&LICENSES, &id, &license)?;
                tx.put(&ACCOUNTS, prefix, &account)?;
                Ok(license)
            })?;
            let op = IndexOp::SetAccount(*prefix, Some(license.limit), license.expires_at);
            Ok((license, vec![op]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn license_pages_use_the_id_as_cursor_and_refuse_other_cursors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for limit in 1..=3 {
            store
                .issue_license(limit, None, now())
                .unwrap()
                .durable_blocking()
                .unwrap();
        }
        let first = store.licenses_page(&PageRequest::first(2)).unwrap();
        let cursor = first.next.expect("more");
        assert_eq!(cursor.value(), first.items[1].id.0.to_string());
        let rest = store
            .licenses_page(&PageRequest {
                after: Some(Cursor::parse(cursor.as_str()).unwrap()),
                limit: 2,
            })
            .unwrap();
        assert_eq!(rest.items.iter().map(|l| l.limit).collect::<Vec<_>>(), [3]);
        assert_eq!(rest.next, None);
        let refused = store.licenses_page(&PageRequest {
            after: Some(Cursor::after("acme")),
            limit: 2,
        });
        assert!(matches!(refused, Err(StoreError::InvalidCursor(_))));
    }
}
