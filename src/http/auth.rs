//! Credentials at the HTTP edge: the header a request carries (`x-api-key` or
//! `Authorization: Bearer`), authenticating it against the store's token index, the
//! [`Caller`] it becomes, and what a route [`Need`]s of it.

use crate::error::Error;
use crate::model::{Principal, Scope, Scopes, Timestamp, TokenHash, TokenId};
use crate::store::{Authenticated, TokenIndex};
use crate::token::{TokenKind, parse};

/// What a route needs from its caller. The router states it for every route
/// (`Route::need`), with the strictest policy as the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No token at all (health checks, later public update checks).
    Public,
    /// An account token granting this scope.
    Scope(Scope),
    /// Any valid account token, whatever its scopes (e.g. rotating itself).
    Account,
    /// An active operator token; `write` for anything that changes state.
    Operator { write: bool },
}

/// An authenticated request's identity. `Copy`: building it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub token_id: TokenId,
    pub token_hash: TokenHash,
    pub principal: Principal,
    pub scopes: Scopes,
    /// An account token's account plan limit when it authenticated (see
    /// [`Authenticated::plan_limit`]); `None` for operator tokens.
    pub plan_limit: Option<Option<u32>>,
    /// When the credential stops working: the token's expiry, or for a grace secret the
    /// end of its grace (whichever is first). `None`: never. A token never creates a
    /// token that outlives it (SPEC §2).
    pub expires_at: Option<Timestamp>,
    /// The credential is a rotated token's previous secret in its grace period: it
    /// authenticates ordinary requests only (see [`Caller::require_current_secret`]).
    pub grace: bool,
}

impl Caller {
    /// Who this caller is, for the services.
    pub fn actor(&self) -> crate::service::Actor {
        use crate::service::Actor;
        match self.principal.account() {
            Some(account) => Actor::Account {
                account,
                token: self.token_id,
                scopes: self.scopes,
                expires_at: self.expires_at,
                grace: self.grace,
            },
            None => Actor::Operator {
                token: self.token_id,
                expires_at: self.expires_at,
                grace: self.grace,
            },
        }
    }

    /// Refuses a secret in its rotation grace window: it may read, but not rotate,
    /// create or delete tokens (otherwise an old, possibly leaked, secret could lock the
    /// owner out or mint fresh credentials).
    ///
    /// # Errors
    /// `Forbidden` for a grace secret.
    pub fn require_current_secret(&self) -> Result<(), Error> {
        if self.grace {
            Err(crate::model::DomainError::GraceSecret.into())
        } else {
            Ok(())
        }
    }

    /// # Errors
    /// `Forbidden` when the token is valid but may not do what `need` asks.
    pub fn authorize(&self, need: Need) -> Result<(), Error> {
        match (need, self.principal) {
            (Need::Public, _) => Ok(()),
            (Need::Scope(scope), Principal::Account(_)) => {
                if self.scopes.grants(scope) {
                    Ok(())
                } else {
                    Err(Error::Forbidden(format!(
                        "this token lacks the `{scope}` scope"
                    )))
                }
            }
            (Need::Account, Principal::Account(_)) => Ok(()),
            (Need::Scope(_) | Need::Account, Principal::Operator { .. }) => Err(Error::Forbidden(
                "operator tokens cannot use account routes; use an account token".to_owned(),
            )),
            (
                Need::Operator { write },
                Principal::Operator {
                    write: can_write, ..
                },
            ) => {
                if write && !can_write {
                    Err(Error::Forbidden(
                        "this operator token is read-only".to_owned(),
                    ))
                } else {
                    Ok(())
                }
            }
            (Need::Operator { .. }, Principal::Account(_)) => Err(Error::Forbidden(
                "this route needs an operator token".to_owned(),
            )),
        }
    }
}

/// The credential a request carries: `x-api-key: TOKEN` or `Authorization: Bearer TOKEN`.
///
/// # Errors
/// `Unauthenticated` when there is none, the two headers disagree, or the scheme is not
/// Bearer; `InvalidRequest` naming the header when one is repeated.
pub fn credential(headers: &http::HeaderMap) -> Result<&str, Error> {
    // A repeated header is ambiguous (which one would a proxy or a log have checked?):
    // refused by name rather than silently taking the first.
    for name in ["x-api-key", "authorization"] {
        if headers.get_all(name).iter().nth(1).is_some() {
            return Err(Error::invalid(
                name,
                "the header is sent more than once; send one credential",
            ));
        }
    }
    let api_key = match headers.get("x-api-key") {
        Some(value) => Some(value.to_str().map_err(|_| Error::Unauthenticated)?.trim()),
        None => None,
    };
    let bearer = match headers.get(http::header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| Error::Unauthenticated)?.trim();
            let (scheme, token) = value.split_once(' ').ok_or(Error::Unauthenticated)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(Error::Unauthenticated);
            }
            Some(token.trim())
        }
        None => None,
    };
    match (api_key, bearer) {
        (Some(a), Some(b)) if a != b => Err(Error::Unauthenticated),
        (Some(token), _) | (None, Some(token)) => Ok(token),
        (None, None) => Err(Error::Unauthenticated),
    }
}

/// The authentication hot path: header → shape and checksum → hash → index → expiry.
///
/// # Errors
/// `Unauthenticated` for a missing, malformed, unknown, expired or inactive token, all
/// alike.
pub fn authenticate(
    headers: &http::HeaderMap,
    index: &TokenIndex,
    now: Timestamp,
) -> Result<Caller, Error> {
    let token = credential(headers)?;
    let (kind, hash) = parse(token).map_err(|_| Error::Unauthenticated)?;
    if kind == TokenKind::PlanLicense {
        return Err(Error::Unauthenticated);
    }
    let Authenticated { record, plan_limit } = index
        .authenticate(&hash, now)
        .ok_or(Error::Unauthenticated)?;
    Ok(Caller {
        token_id: record.token_id,
        token_hash: hash,
        principal: record.principal,
        scopes: record.scopes,
        plan_limit,
        expires_at: record.expires_at,
        grace: record.grace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountPrefix;

    #[test]
    fn authorization_rules() {
        let account = Principal::Account(AccountPrefix::parse("acme").unwrap());
        let caller = |principal, scopes| Caller {
            token_id: TokenId(1),
            token_hash: TokenHash::of("x"),
            principal,
            scopes,
            plan_limit: None,
            expires_at: None,
            grace: false,
        };
        let reader = caller(account, Scopes::only(Scope::ReadLicenses));
        assert!(reader.authorize(Need::Scope(Scope::ReadLicenses)).is_ok());
        assert!(matches!(
            reader.authorize(Need::Scope(Scope::ManageLicenses)),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            reader.authorize(Need::Operator { write: false }),
            Err(Error::Forbidden(_))
        ));
        let read_only_op = caller(
            Principal::Operator {
                active: true,
                write: false,
            },
            Scopes::empty(),
        );
        assert!(
            read_only_op
                .authorize(Need::Operator { write: false })
                .is_ok()
        );
        assert!(matches!(
            read_only_op.authorize(Need::Operator { write: true }),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            read_only_op.authorize(Need::Scope(Scope::ReadUser)),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn credential_reads_either_header() {
        let mut headers = http::HeaderMap::new();
        assert!(credential(&headers).is_err());
        headers.insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(credential(&headers).unwrap(), "k1");
        headers.insert("authorization", "bearer k1".parse().unwrap());
        assert_eq!(credential(&headers).unwrap(), "k1");
        headers.insert("authorization", "Bearer k2".parse().unwrap());
        assert!(credential(&headers).is_err(), "disagreeing headers");
        headers.remove("x-api-key");
        assert_eq!(credential(&headers).unwrap(), "k2");
        headers.insert("authorization", "Basic k2".parse().unwrap());
        assert!(credential(&headers).is_err());
    }
}
