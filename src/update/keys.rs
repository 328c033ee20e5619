//! Download keys in the update decision (SPEC §8.1 item 2): the licensing service's
//! checks, seen through [`DownloadKeys`]. Reads only: a check never writes (the service
//! notes the check in memory).

use super::answer::LicenseCode;
use super::decide::{DownloadKeys, KeyCheck, Place};
use crate::model::licensing::{DownloadKeyId, Identity};
use crate::model::{Product, Site, Timestamp, normalize_site};
use crate::service::licensing::{self, Target};
use crate::store::{Store, StoreError};

/// The customer download keys of SPEC §9.
pub struct LicensingKeys;

/// What identifies the caller for an activation: its site (as the adapter normalized
/// it), else its machine fingerprint.
fn target_of(place: Option<&Place>) -> Option<Target> {
    Some(match place? {
        Place::Site(site) => Target::Site(site.clone()),
        Place::Machine(machine) if !machine.is_empty() => Target::Machine(machine.clone()),
        Place::Machine(_) => return None,
    })
}

impl DownloadKeys for LicensingKeys {
    fn check(
        &self,
        store: &Store,
        product: &Product,
        key: &str,
        site: Option<&Place>,
        now: Timestamp,
    ) -> KeyCheck {
        // `require_activation`: the key must be activated for this site; without a site
        // it cannot be (SPEC §8.1: `site_inactive`).
        let target = if product.require_activation {
            match target_of(site) {
                Some(target) => Some(target),
                None => {
                    return KeyCheck {
                        code: LicenseCode::SiteInactive,
                        key_id: None,
                    };
                }
            }
        } else {
            None
        };
        match licensing::standing(
            store,
            &product.account,
            Some(product.id),
            Some(key),
            target.as_ref(),
            now,
        ) {
            Ok((code, key_id)) => KeyCheck {
                code,
                key_id: key_id.map(|id| id.0),
            },
            Err(err) => {
                tracing::error!(error = %err, "download key check failed");
                KeyCheck {
                    code: LicenseCode::NotFound,
                    key_id: None,
                }
            }
        }
    }

    fn recheck(
        &self,
        store: &Store,
        product: &Product,
        key_id: u64,
        site: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<LicenseCode>, StoreError> {
        let Some(key) = store.download_key(&product.account, DownloadKeyId(key_id))? else {
            return Ok(Some(LicenseCode::NotFound));
        };
        if key.status == crate::model::licensing::KeyStatus::Disabled {
            return Ok(Some(LicenseCode::Disabled));
        }
        if key.expired(now) {
            return Ok(Some(LicenseCode::Expired));
        }
        if !key.products.covers(product.id) {
            return Ok(Some(LicenseCode::ProductMismatch));
        }
        if product.require_activation {
            let wanted: Option<Site> = site.and_then(|s| normalize_site(s).ok());
            let active = store
                .activations(&product.account, key.id)?
                .iter()
                .any(|a| match (&a.identity, &wanted, site) {
                    (Identity::Site(theirs), Some(ours), _) => theirs == ours,
                    // The link binds a machine as sent, and a fingerprint may read as a
                    // host name (`fp-1234abcd`): a machine activation matches it as text.
                    (Identity::Machine(theirs), _, Some(machine)) => theirs == machine,
                    _ => false,
                });
            if !active {
                return Ok(Some(LicenseCode::SiteInactive));
            }
        }
        Ok(None)
    }
}
