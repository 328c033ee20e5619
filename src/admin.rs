//! Admin commands (`upkeep account|token|license …`): the logic of each, written once.
//!
//! The CLI runs them on a store it opened itself when no server runs, or sends them to the
//! running server's admin socket (`control`), which runs this same code. Output is text
//! for people and JSON for scripts (the same views as the `/_/` API).

use crate::cli::{AccountCommand, LicenseCommand, OperatorTokenCommand, TokenCommand};
use crate::error::Error;
use crate::http::dto::{AccountAdminView, LicenseAdminView, OperatorTokenView};
use crate::model::{
    Account, AccountPrefix, LicenseId, NewAccount, OperatorTokenName, PlanLicense, Principal,
    Scopes, Timestamp, Token, TokenName, check_token_expiry,
};
use crate::store::{NewToken, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt::Write;

/// Every admin command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AdminCommand {
    Account(AccountCommand),
    Token(TokenCommand),
    OperatorToken(OperatorTokenCommand),
    License(LicenseCommand),
}

impl AdminCommand {
    /// `account create`, … (for logs; carries no argument values).
    pub fn name(&self) -> &'static str {
        match self {
            AdminCommand::Account(AccountCommand::Create { .. }) => "account create",
            AdminCommand::Account(AccountCommand::List) => "account list",
            AdminCommand::Account(AccountCommand::Delete { .. }) => "account delete",
            AdminCommand::Token(TokenCommand::Create { .. }) => "token create",
            AdminCommand::Token(TokenCommand::List { .. }) => "token list",
            AdminCommand::Token(TokenCommand::Revoke { .. }) => "token revoke",
            AdminCommand::OperatorToken(OperatorTokenCommand::Create { .. }) => {
                "operator-token create"
            }
            AdminCommand::OperatorToken(OperatorTokenCommand::List) => "operator-token list",
            AdminCommand::OperatorToken(OperatorTokenCommand::Revoke { .. }) => {
                "operator-token revoke"
            }
            AdminCommand::License(LicenseCommand::Issue { .. }) => "license issue",
            AdminCommand::License(LicenseCommand::List) => "license list",
            AdminCommand::License(LicenseCommand::Revoke { .. }) => "license revoke",
        }
    }
}

fn view_json<T: Serialize>(view: &T) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// What a command printed: text for a terminal, JSON for `--json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub text: String,
    pub json: Value,
}

/// Runs `command` against `store`; waits until its writes are on disk.
///
/// # Errors
/// Bad arguments (`InvalidRequest`), unknown names (`NotFound`), duplicates
/// (`Conflict`), or a store failure.
pub fn execute(
    store: &Store,
    default_activation_limit: u32,
    now: Timestamp,
    command: &AdminCommand,
) -> Result<Output, Error> {
    match command {
        AdminCommand::Account(command) => account(store, default_activation_limit, now, command),
        AdminCommand::Token(command) => token(store, now, command),
        AdminCommand::OperatorToken(command) => operator_token(store, now, command),
        AdminCommand::License(command) => license(store, now, command),
    }
}

/// The one wording for an unknown account, whatever the command.
fn unknown_account(prefix: &AccountPrefix) -> Error {
    Error::NotFound(format!("no account with prefix `{prefix}`"))
}

fn require_account(store: &Store, prefix: &AccountPrefix) -> Result<(), Error> {
    match store.account(prefix)? {
        Some(_) => Ok(()),
        None => Err(unknown_account(prefix)),
    }
}

/// `revoke NAME` or the older `revoke --name NAME`.
fn either_name<'a>(name: &'a Option<String>, flag: &'a Option<String>) -> Result<&'a str, Error> {
    name.as_deref()
        .or(flag.as_deref())
        .ok_or_else(|| Error::invalid("name", "give the token's name: `revoke NAME`"))
}

fn parse_prefix(text: &str) -> Result<AccountPrefix, Error> {
    AccountPrefix::parse(text).map_err(|reason| Error::invalid("account prefix", reason))
}

/// `--expires 90d` as an expiry time.
fn expiry(
    lifetime: &Option<std::time::Duration>,
    now: Timestamp,
) -> Result<Option<Timestamp>, Error> {
    lifetime
        .map(|lifetime| now.saturating_add(lifetime).as_expiry())
        .transpose()
        .map_err(|reason| Error::invalid("expires", reason))
}

/// A token's `--expires 90d` as an expiry time: at least a minute, as over HTTP.
fn token_expiry(
    lifetime: &Option<std::time::Duration>,
    now: Timestamp,
) -> Result<Option<Timestamp>, Error> {
    lifetime
        .map(|lifetime| check_token_expiry(now.saturating_add(lifetime), now))
        .transpose()
        .map_err(|reason| Error::invalid("expires", reason))
}

fn time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "never".to_owned(), |at| at.to_rfc3339())
}

fn millis(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |at| json!(at.as_millis()))
}

fn account_json(account: &Account, limit: u32) -> Value {
    view_json(&AccountAdminView::new(account, limit))
}

fn account(
    store: &Store,
    default_activation_limit: u32,
    now: Timestamp,
    command: &AccountCommand,
) -> Result<Output, Error> {
    let limit_of = |account: &Account| -> Result<u32, Error> {
        Ok(store
            .account_license(account)?
            .and_then(|license| license.limit_at(now))
            .unwrap_or(default_activation_limit))
    };
    match command {
        AccountCommand::Create {
            name,
            email,
            prefix,
        } => {
            let new = NewAccount::parse(name, email, prefix.as_deref())
                .map_err(|(field, reason)| Error::invalid(field, reason))?;
            let (account, first) = store.create_account(new, now)?.durable_blocking()?;
            let text = format!(
                "created account {prefix} ({name})\n\
                 first API token \"{token_name}\" (scope api; shown once, store it now):\n{secret}\n",
                prefix = account.prefix,
                name = account.name,
                token_name = first.token.name,
                secret = first.secret,
            );
            let json = json!({
                "account": account_json(&account, default_activation_limit),
                "token": { "name": first.token.name, "token": first.secret, "scopes": ["api"] },
            });
            Ok(Output { text, json })
        }
        AccountCommand::List => {
            let accounts = store.accounts()?;
            let mut text = format!(
                "{:<32}  {:>5}  {:<24}  NAME <EMAIL>\n",
                "PREFIX", "LIMIT", "CREATED"
            );
            let mut rows = Vec::with_capacity(accounts.len());
            for account in &accounts {
                let limit = limit_of(account)?;
                let _ = writeln!(
                    text,
                    "{:<32}  {:>5}  {:<24}  {} <{}>",
                    account.prefix,
                    limit,
                    account.created_at.to_rfc3339(),
                    account.name,
                    account.email
                );
                rows.push(account_json(account, limit));
            }
            if accounts.is_empty() {
                text = "no accounts\n".to_owned();
            }
            Ok(Output {
                text,
                json: json!({ "accounts": rows }),
            })
        }
        AccountCommand::Delete { prefix } => {
            let prefix = parse_prefix(prefix)?;
            require_account(store, &prefix)?;
            let n_tokens = store.tokens_of(Some(&prefix))?.len();
            let account = store.delete_account(&prefix)?.durable_blocking()?;
            Ok(Output {
                text: format!(
                    "deleted account {} and its {n_tokens} token(s)\n",
                    account.prefix
                ),
                json: json!({ "deleted": account.prefix.as_str(), "tokens_deleted": n_tokens }),
            })
        }
    }
}

fn token_json(token: &Token, now: Timestamp) -> Value {
    json!({
        "name": token.name,
        "scopes": token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "expires_at": millis(token.expires_at),
        "expired": token.is_expired(now),
        "created_at": token.created_at.as_millis(),
        "last_used_at": millis(token.last_used_at),
    })
}

fn token(store: &Store, now: Timestamp, command: &TokenCommand) -> Result<Output, Error> {
    match command {
        TokenCommand::Create {
            account,
            name,
            scopes,
            expires,
        } => {
            let prefix = parse_prefix(account)?;
            let name = TokenName::parse(name).map_err(|reason| Error::invalid("name", reason))?;
            let scopes = Scopes::parse_all(scopes.iter().map(String::as_str))
                .map_err(|reason| Error::invalid("scopes", reason))?;
            let new = NewToken {
                principal: Principal::Account(prefix),
                name: name.as_str().to_owned(),
                scopes,
                expires_at: token_expiry(expires, now)?,
            };
            let created = store
                .create_token(new, now)
                .map_err(|err| match Error::from(err) {
                    Error::NotFound(_) if store.account(&prefix).ok().flatten().is_none() => {
                        unknown_account(&prefix)
                    }
                    other => other,
                })?
                .durable_blocking()?;
            let token = &created.token;
            Ok(Output {
                text: format!(
                    "created token \"{}\" for account {prefix} (scopes {}, expires {}; shown once):\n{}\n",
                    token.name,
                    token.scopes,
                    time(token.expires_at),
                    created.secret
                ),
                json: json!({ "token": created.secret, "account": prefix.as_str(), "details": token_json(token, now) }),
            })
        }
        TokenCommand::List { account } => {
            let prefix = parse_prefix(account)?;
            require_account(store, &prefix)?;
            let tokens = store.tokens_of(Some(&prefix))?;
            let mut text = format!(
                "{:<32}  {:<26}  {:<24}  LAST USED\n",
                "NAME", "SCOPES", "EXPIRES"
            );
            for token in &tokens {
                let expires = if token.is_expired(now) {
                    format!("{} (expired)", time(token.expires_at))
                } else {
                    time(token.expires_at)
                };
                let _ = writeln!(
                    text,
                    "{:<32}  {:<26}  {:<24}  {}",
                    token.name,
                    token.scopes.to_string(),
                    expires,
                    token
                        .last_used_at
                        .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339())
                );
            }
            let rows: Vec<Value> = tokens.iter().map(|t| token_json(t, now)).collect();
            Ok(Output {
                text,
                json: json!({ "account": prefix.as_str(), "tokens": rows }),
            })
        }
        TokenCommand::Revoke {
            account,
            name,
            name_flag,
        } => {
            let prefix = parse_prefix(account)?;
            let name = either_name(name, name_flag)?;
            require_account(store, &prefix)?;
            let token = store
                .delete_token(Some(&prefix), name)?
                .durable_blocking()?;
            Ok(Output {
                text: format!("revoked token \"{}\" of account {prefix}\n", token.name),
                json: json!({ "revoked": token.name, "account": prefix.as_str() }),
            })
        }
    }
}

fn license_json(license: &PlanLicense, now: Timestamp) -> Value {
    view_json(&LicenseAdminView::new(license, now, None))
}

fn license(store: &Store, now: Timestamp, command: &LicenseCommand) -> Result<Output, Error> {
    match command {
        LicenseCommand::Issue { limit, expires } => {
            if *limit == 0 {
                return Err(Error::invalid("limit", "must be at least 1"));
            }
            let expires_at = expiry(expires, now)?;
            let issued = store
                .issue_license(*limit, expires_at, now)?
                .durable_blocking()?;
            Ok(Output {
                text: format!(
                    "issued plan license {} (limit {}, expires {}); key (shown once):\n{}\n",
                    issued.license.id,
                    issued.license.limit,
                    time(issued.license.expires_at),
                    issued.key
                ),
                json: json!({ "key": issued.key, "license": license_json(&issued.license, now) }),
            })
        }
        LicenseCommand::List => {
            let licenses = store.licenses()?;
            let mut text = format!("{:>6}  {:>6}  {:<24}  ACCOUNT\n", "ID", "LIMIT", "EXPIRES");
            for license in &licenses {
                let _ = writeln!(
                    text,
                    "{:>6}  {:>6}  {:<24}  {}",
                    license.id.to_string(),
                    license.limit,
                    time(license.expires_at),
                    license
                        .account
                        .map_or_else(|| "-".to_owned(), |p| p.to_string())
                );
            }
            let rows: Vec<Value> = licenses.iter().map(|l| license_json(l, now)).collect();
            Ok(Output {
                text,
                json: json!({ "licenses": rows }),
            })
        }
        LicenseCommand::Revoke { id } => {
            let license = store
                .revoke_license(LicenseId(*id), now)?
                .durable_blocking()?;
            let freed = license
                .account
                .map(|p| format!("; account {p} falls back to the default limit"))
                .unwrap_or_default();
            Ok(Output {
                text: format!("revoked plan license {}{freed}\n", license.id),
                json: json!({ "revoked": license.id.0, "account": license.account.map(|p| p.as_str().to_owned()) }),
            })
        }
    }
}

fn operator_token(
    store: &Store,
    now: Timestamp,
    command: &OperatorTokenCommand,
) -> Result<Output, Error> {
    match command {
        OperatorTokenCommand::Create {
            name,
            read_only,
            expires,
        } => {
            let name =
                OperatorTokenName::parse(name).map_err(|reason| Error::invalid("name", reason))?;
            let new = NewToken {
                principal: Principal::Operator {
                    active: true,
                    write: !read_only,
                },
                name: name.as_str().to_owned(),
                scopes: Scopes::empty(),
                expires_at: token_expiry(expires, now)?,
            };
            let created = store.create_token(new, now)?.durable_blocking()?;
            let access = if *read_only {
                "read-only"
            } else {
                "read-write"
            };
            Ok(Output {
                text: format!(
                    "created {access} operator token \"{}\" (expires {}):\n{}\n",
                    created.token.name,
                    time(created.token.expires_at),
                    created.secret
                ),
                json: view_json(&OperatorTokenView::new(
                    &created.token,
                    now,
                    Some(created.secret.clone()),
                )),
            })
        }
        OperatorTokenCommand::List => {
            let tokens = store.tokens_of(None)?;
            let mut text = format!(
                "{:<32}  {:<6}  {:<10}  {:<24}  LAST USED\n",
                "NAME", "ACTIVE", "ACCESS", "EXPIRES"
            );
            let mut rows = Vec::with_capacity(tokens.len());
            for token in &tokens {
                let view = OperatorTokenView::new(token, now, None);
                let _ = writeln!(
                    text,
                    "{:<32}  {:<6}  {:<10}  {:<24}  {}",
                    token.name,
                    if view.active { "yes" } else { "no" },
                    if view.write {
                        "read-write"
                    } else {
                        "read-only"
                    },
                    time(token.expires_at),
                    token
                        .last_used_at
                        .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339())
                );
                rows.push(view_json(&view));
            }
            Ok(Output {
                text,
                json: json!({ "tokens": rows }),
            })
        }
        OperatorTokenCommand::Revoke { name, name_flag } => {
            let name = either_name(name, name_flag)?;
            let token = store.delete_token(None, name)?.durable_blocking()?;
            Ok(Output {
                text: format!("revoked operator token \"{}\"\n", token.name),
                json: json!({ "revoked": token.name }),
            })
        }
    }
}
