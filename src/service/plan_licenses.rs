//! Plan licenses: issuing (the key shown once), revoking, and an account applying one to
//! itself (SPEC §1, §4.1).

use super::{Actor, Ctx, Done, Event};
use crate::error::Error;
use crate::model::{AccountPrefix, LicenseId, PlanLicense, Timestamp};
use crate::store::{IssuedLicense, Page, PageRequest};

/// Issues a plan license of `limit` activations.
///
/// # Errors
/// `InvalidRequest` for a limit of 0 or an expiry not in the future; `Forbidden` for
/// account tokens.
pub fn issue<'a>(
    ctx: &Ctx<'a>,
    limit: u32,
    expires_at: Option<Timestamp>,
    expires_field: &'static str,
) -> Result<Done<'a, IssuedLicense>, Error> {
    ctx.actor.require_current_secret()?;
    if !ctx.actor.is_operator() {
        return Err(Error::Forbidden(
            "account tokens cannot issue plan licenses".to_owned(),
        ));
    }
    if limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1"));
    }
    let expires_at = match expires_at {
        Some(at) if at <= ctx.now => {
            return Err(Error::invalid(expires_field, "must be in the future"));
        }
        Some(at) => Some(
            at.as_expiry()
                .map_err(|reason| Error::invalid(expires_field, reason))?,
        ),
        None => None,
    };
    let pending = ctx.store.issue_license(limit, expires_at, ctx.now)?;
    Ok(Done::new(ctx, pending, |issued: &IssuedLicense| {
        vec![Event::PlanLicenseIssued {
            id: issued.license.id,
        }]
    }))
}

/// Revokes a plan license; the account using it falls back to the default limit.
///
/// # Errors
/// `NotFound` unknown; `Forbidden` for account tokens.
pub fn revoke<'a>(ctx: &Ctx<'a>, id: LicenseId) -> Result<Done<'a, PlanLicense>, Error> {
    ctx.actor.require_current_secret()?;
    if !ctx.actor.is_operator() {
        return Err(Error::Forbidden(
            "account tokens cannot revoke plan licenses".to_owned(),
        ));
    }
    let pending = ctx.store.revoke_license(id, ctx.now)?;
    Ok(Done::new(ctx, pending, move |_| {
        vec![Event::PlanLicenseRevoked { id }]
    }))
}

/// Binds the plan license with key `key` to `account`, replacing its previous one.
///
/// # Errors
/// `InvalidLicense` (malformed, unknown or revoked), `LicenseExpired`, `LicenseInUse`.
pub fn apply<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    key: &str,
) -> Result<Done<'a, PlanLicense>, Error> {
    if ctx.actor == Actor::Public {
        return Err(Error::Forbidden(
            "the public routes cannot apply plan licenses".to_owned(),
        ));
    }
    if let Some(own) = ctx.actor.account()
        && own != account
    {
        return Err(Error::NotFound("no such account".to_owned()));
    }
    let hash = crate::token::parse_kind(key.trim(), crate::token::TokenKind::PlanLicense)
        .map_err(|_| Error::InvalidLicense)?;
    let pending = ctx.store.apply_license(account, &hash, ctx.now)?;
    let account = *account;
    Ok(Done::new(ctx, pending, move |license: &PlanLicense| {
        vec![Event::PlanLicenseApplied {
            id: license.id,
            account,
        }]
    }))
}

/// A page of plan licenses, oldest first.
///
/// # Errors
/// The store failed.
pub fn page(ctx: &Ctx<'_>, page: &PageRequest) -> Result<Page<PlanLicense>, Error> {
    Ok(ctx.store.licenses_page(page)?)
}
