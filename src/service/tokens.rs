//! Tokens: creating, deleting and rotating account and operator tokens, changing
//! operator tokens, reading operator-token values back. Every rule about who may make
//! which token lives here (SPEC §1, §2).

use super::{Actor, Ctx, Done, Event};
use crate::error::Error;
use crate::model::{
    AccountPrefix, OperatorTokenName, Principal, Scopes, Timestamp, Token, TokenChanges, TokenHash,
    TokenName, cap_expiry, check_token_expiry,
};
use crate::store::{CreatedToken, Page, PageRequest};
use std::time::Duration;

/// Longest grace a rotation may give the old secret.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 86_400);

/// Whose a new token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Account(AccountPrefix),
    Operator { active: bool, write: bool },
}

/// A token to create. The wire formats differ in how they say the expiry (days,
/// `90d`, RFC 3339, Unix ms); each adapter turns its own into `expires_at` and names its
/// field in `expires_field`, so a refusal names what the client sent.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub owner: Owner,
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
    pub expires_field: &'static str,
}

/// The account an account token acts for.
fn own_account(actor: &Actor) -> Result<&AccountPrefix, Error> {
    actor
        .account()
        .ok_or_else(|| Error::Forbidden("this route needs an account token".to_owned()))
}

/// Creates a token and returns it with its secret (shown once).
///
/// Rules: the name follows its owner's naming rule; a lifetime is at least a minute; the
/// expiry is capped at the actor's own (a token never outlives the token that made it);
/// an account token creates tokens only for its own account and only with scopes it
/// holds; a grace secret creates nothing; the account's token quota holds (the store).
///
/// # Errors
/// `InvalidRequest` naming the field, `Forbidden`, `Conflict` (duplicate name, quota).
pub fn create<'a>(ctx: &Ctx<'a>, new: NewToken) -> Result<Done<'a, CreatedToken>, Error> {
    ctx.actor.require_current_secret()?;
    let (principal, name) = match &new.owner {
        Owner::Account(account) => {
            if let Some(own) = ctx.actor.account()
                && own != account
            {
                return Err(Error::Forbidden(
                    "an account token creates tokens for its own account only".to_owned(),
                ));
            }
            let name =
                TokenName::parse(&new.name).map_err(|reason| Error::invalid("name", reason))?;
            (Principal::Account(*account), name.as_str().to_owned())
        }
        Owner::Operator { active, write } => {
            if !ctx.actor.is_operator() {
                return Err(Error::Forbidden(
                    "account tokens cannot create operator tokens".to_owned(),
                ));
            }
            let name = OperatorTokenName::parse(&new.name)
                .map_err(|reason| Error::invalid("name", reason))?;
            (
                Principal::Operator {
                    active: *active,
                    write: *write,
                },
                name.as_str().to_owned(),
            )
        }
    };
    let expires_at = new
        .expires_at
        .map(|at| check_token_expiry(at, ctx.now))
        .transpose()
        .map_err(|reason| Error::invalid(new.expires_field, reason))?;
    if matches!(new.owner, Owner::Account(_)) && new.scopes.is_empty() {
        return Err(Error::invalid("scopes", "at least one scope is required"));
    }
    if let Actor::Account { scopes, .. } = ctx.actor
        && !scopes.covers(new.scopes)
    {
        return Err(Error::Forbidden(format!(
            "a token cannot grant scopes it does not hold (asked for {}, holds {scopes})",
            new.scopes
        )));
    }
    let expires_at = cap_expiry(expires_at, ctx.actor.expires_at());
    let account = principal.account();
    let pending = ctx.store.create_token(
        crate::store::NewToken {
            principal,
            name: name.clone(),
            scopes: new.scopes,
            expires_at,
        },
        ctx.now,
    )?;
    Ok(Done::new(ctx, pending, move |_| {
        vec![Event::TokenCreated {
            account,
            name,
            expires_at,
        }]
    }))
}

/// Deletes a token by name: an account's (`Some(account)`) or an operator token. The token
/// stops working at once, with every grace secret of it.
///
/// # Errors
/// `NotFound` for a name the owner does not have (or that breaks the naming rule);
/// `Forbidden` for a grace secret, or an account token naming another account.
pub fn delete<'a>(
    ctx: &Ctx<'a>,
    account: Option<&AccountPrefix>,
    name: &str,
) -> Result<Done<'a, Token>, Error> {
    ctx.actor.require_current_secret()?;
    match (account, ctx.actor.account()) {
        (Some(account), Some(own)) if account != own => {
            // Another account's token is simply not there.
            return Err(Error::NotFound(format!("no token named `{name}`")));
        }
        (None, Some(_)) => {
            return Err(Error::Forbidden(
                "account tokens cannot delete operator tokens".to_owned(),
            ));
        }
        _ => {}
    }
    let name = match account {
        Some(_) => TokenName::parse(name)
            .map_err(|_| Error::NotFound(format!("no token named `{name}`")))?
            .as_str()
            .to_owned(),
        // Also names made under an older, looser rule.
        None => OperatorTokenName::lookup(name)
            .map_err(|reason| Error::invalid("name", reason))?
            .as_str()
            .to_owned(),
    };
    let pending = ctx.store.delete_token(account, &name)?;
    let account = account.cloned();
    Ok(Done::new(ctx, pending, move |_| {
        vec![Event::TokenDeleted { account, name }]
    }))
}

/// Gives the actor's own token a new secret (shown once). With `grace`, the old secret
/// keeps working that long (at most [`MAX_GRACE`]); without, it stops at once. A secret
/// in its grace may not rotate.
///
/// # Errors
/// `Forbidden` for a grace secret or a non-account actor; `InvalidRequest` for a grace
/// over 30 days.
pub fn rotate_own<'a>(
    ctx: &Ctx<'a>,
    token: &TokenHash,
    grace: Option<Duration>,
) -> Result<Done<'a, CreatedToken>, Error> {
    ctx.actor.require_current_secret()?;
    let account = *own_account(&ctx.actor)?;
    if grace.is_some_and(|grace| grace > MAX_GRACE) {
        return Err(Error::invalid("grace", "may be at most 30 days"));
    }
    let grace_until = grace
        .filter(|grace| !grace.is_zero())
        .map(|grace| ctx.now.saturating_add(grace));
    let pending = ctx.store.rotate_token(token, grace_until, ctx.now)?;
    Ok(Done::new(ctx, pending, move |rotated: &CreatedToken| {
        vec![Event::TokenRotated {
            account: Some(account),
            name: rotated.token.name.clone(),
            grace_until,
        }]
    }))
}

/// Changes an operator token's expiry, `active` or `write`; the value stays. A new expiry
/// is capped at the actor's own, as on creation.
///
/// # Errors
/// `NotFound` unknown; `InvalidRequest` naming `expires_field`; `Forbidden` for account
/// tokens and grace secrets.
pub fn update_operator<'a>(
    ctx: &Ctx<'a>,
    name: &str,
    mut changes: TokenChanges,
    expires_field: &'static str,
) -> Result<Done<'a, Token>, Error> {
    ctx.actor.require_current_secret()?;
    if !ctx.actor.is_operator() {
        return Err(Error::Forbidden(
            "account tokens cannot change operator tokens".to_owned(),
        ));
    }
    let name = OperatorTokenName::lookup(name).map_err(|reason| Error::invalid("name", reason))?;
    if let Some(Some(at)) = changes.expires_at {
        let at = check_token_expiry(at, ctx.now)
            .map_err(|reason| Error::invalid(expires_field, reason))?;
        changes.expires_at = Some(cap_expiry(Some(at), ctx.actor.expires_at()));
    } else if changes.expires_at == Some(None) {
        changes.expires_at = Some(ctx.actor.expires_at());
    }
    let pending = ctx
        .store
        .update_operator_token(name.as_str(), changes, ctx.now)?;
    let name = name.as_str().to_owned();
    Ok(Done::new(ctx, pending, move |_| {
        vec![Event::OperatorTokenUpdated { name }]
    }))
}

/// An operator token's value, derived again from `server.key` (SPEC §2), unless the
/// server refuses read-back.
///
/// # Errors
/// `Forbidden` when `allowed` is false; `NotFound` unknown.
pub fn operator_value(ctx: &Ctx<'_>, name: &str, allowed: bool) -> Result<String, Error> {
    if !ctx.actor.is_operator() {
        return Err(Error::Forbidden(
            "only operators read operator token values".to_owned(),
        ));
    }
    let name = OperatorTokenName::lookup(name).map_err(|reason| Error::invalid("name", reason))?;
    if !allowed {
        return Err(Error::Forbidden(
            "token values cannot be read back on this server (--no-token-values)".to_owned(),
        ));
    }
    Ok(ctx.store.operator_token_value(name.as_str())?)
}

/// A page of an account's tokens, or of the operator tokens (`None`), by name.
///
/// # Errors
/// The store failed.
pub fn page(
    ctx: &Ctx<'_>,
    account: Option<&AccountPrefix>,
    page: &PageRequest,
) -> Result<Page<Token>, Error> {
    Ok(ctx.store.tokens_page(account, page)?)
}
