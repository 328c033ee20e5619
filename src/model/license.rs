use super::{AccountPrefix, LicenseId, Timestamp, TokenHash};
use serde::{Deserialize, Serialize};

/// A plan license: issued by the operator, applied by one account to itself.
/// Stored in `licenseid_license`; its key is kept only as a hash.
///
/// Format version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLicense {
    pub id: LicenseId,
    /// `blake3` of the `upk_pl_…` key.
    pub key_hash: TokenHash,
    /// The activation limit it grants the account it is bound to.
    pub limit: u32,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// The account it is bound to, if any.
    pub account: Option<AccountPrefix>,
}

impl PlanLicense {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The activation limit it grants at `now`: none once it has expired (the account
    /// then falls back to the server's default limit).
    pub fn limit_at(&self, now: Timestamp) -> Option<u32> {
        (!self.is_expired(now)).then_some(self.limit)
    }
}
