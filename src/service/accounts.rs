//! Accounts: creating one (with its first `api` token), deleting one with everything it
//! owns, listing them, and the activation limit an account has (SPEC §1).

use super::{Ctx, Done, Event};
use crate::error::Error;
use crate::model::{Account, AccountPrefix, NewAccount, Timestamp};
use crate::store::{CreatedToken, Page, PageRequest, Store};

/// Creates an account and its first token (`default`, scope `api`, shown once). The
/// first token never outlives the actor that made the account.
///
/// # Errors
/// `Conflict` for a taken prefix; `Forbidden` for account tokens and grace secrets.
pub fn create<'a>(
    ctx: &Ctx<'a>,
    mut new: NewAccount,
) -> Result<Done<'a, (Account, CreatedToken)>, Error> {
    ctx.actor.require_current_secret()?;
    if !ctx.actor.is_operator() {
        return Err(Error::Forbidden(
            "account tokens cannot create accounts".to_owned(),
        ));
    }
    new.first_token_expires_at =
        crate::model::cap_expiry(new.first_token_expires_at, ctx.actor.expires_at());
    let pending = ctx.store.create_account(new, ctx.now)?;
    Ok(Done::new(
        ctx,
        pending,
        |(account, _): &(Account, CreatedToken)| {
            vec![Event::AccountCreated {
                account: account.prefix,
            }]
        },
    ))
}

/// Deletes an account, its tokens, and frees its plan license.
///
/// # Errors
/// `NotFound` for an unknown prefix; `Forbidden` for account tokens and grace secrets.
pub fn delete<'a>(ctx: &Ctx<'a>, prefix: &str) -> Result<Done<'a, Account>, Error> {
    ctx.actor.require_current_secret()?;
    if !ctx.actor.is_operator() {
        return Err(Error::Forbidden(
            "account tokens cannot delete accounts".to_owned(),
        ));
    }
    let prefix = AccountPrefix::parse(prefix)
        .map_err(|_| Error::NotFound(format!("no account with prefix `{prefix}`")))?;
    let pending = ctx.store.delete_account(&prefix)?;
    Ok(Done::new(ctx, pending, move |_| {
        vec![Event::AccountDeleted { account: prefix }]
    }))
}

/// Makes `prefix` the default account: the one the bare host's public routes serve (`/`
/// for EDD and wp-update-server requests, `/v1/licenses/…`; SPEC §8.2).
///
/// # Errors
/// `NotFound` for an unknown prefix; `Forbidden` for account tokens.
pub fn set_default<'a>(ctx: &Ctx<'a>, prefix: &str) -> Result<Done<'a, AccountPrefix>, Error> {
    if !ctx.actor.is_operator() {
        return Err(Error::Forbidden(
            "account tokens cannot choose the default account".to_owned(),
        ));
    }
    let prefix = AccountPrefix::parse(prefix)
        .map_err(|_| Error::NotFound(format!("no account with prefix `{prefix}`")))?;
    let pending = ctx.store.set_default_account(&prefix)?;
    Ok(Done::new(ctx, pending, move |_| {
        vec![Event::DefaultAccountSet { account: prefix }]
    }))
}

/// The account's `activationLimit`: its plan license's limit while that license has not
/// expired, otherwise `default_limit` (SPEC §1). From the in-memory index (no store
/// read); from the stored license only for an account the index no longer knows (deleted
/// since it was read).
///
/// # Errors
/// The store failed.
pub fn activation_limit(
    store: &Store,
    account: &Account,
    default_limit: u32,
    now: Timestamp,
) -> Result<u32, Error> {
    let limit = match store.plan_limit(&account.prefix, now) {
        Some(limit) => limit,
        None => store
            .account_license(account)?
            .and_then(|license| license.limit_at(now)),
    };
    Ok(limit.unwrap_or(default_limit))
}

/// A page of accounts, by prefix.
///
/// # Errors
/// The store failed.
pub fn page(ctx: &Ctx<'_>, page: &PageRequest) -> Result<Page<Account>, Error> {
    Ok(ctx.store.accounts_page(page)?)
}

/// One account.
///
/// # Errors
/// `NotFound` when there is none (e.g. deleted while its token was in flight).
pub fn get(store: &Store, prefix: &AccountPrefix) -> Result<Account, Error> {
    store
        .account(prefix)?
        .ok_or_else(|| Error::NotFound(format!("no account with prefix `{prefix}`")))
}
