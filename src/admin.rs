//! Admin commands (`upkeep account|token|operator-token|license|product|release …`): what
//! each prints.
//!
//! The rules live in the services (`service`), which these call as
//! [`service::Actor::Cli`]: the same code as the HTTP API, so the CLI can no more grant a
//! bad name or a too-short lifetime than a token can. The CLI runs them on a store it
//! opened itself when no server runs, or sends them to the running server's admin socket
//! (`control`), which runs this same code (and publishes the same events). Output is text
//! for people and JSON for scripts (the same views as the `/_/` API).

use crate::error::Error;
use crate::http::dto::{AccountAdminView, LicenseAdminView, OperatorTokenView};
use crate::model::{
    Account, AccountPrefix, FileRecord, LicenseId, LicenseModel, Maturity, NewAccount, PlanLicense,
    Product, ProductKind, Release, Scopes, Timestamp, Token,
};
use crate::service::catalog::{self, ReleaseOptions, ReleaseTarget, Upload};
use crate::service::{self, Ctx};
use crate::store::Staged;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt::Write;
use std::time::Duration;

pub mod licensing;
mod release;

pub use release::{
    Progress, PushPlan, PushRequest, plan_push, push, store_file, update_urls, url_base,
};

/// Every admin command, in the shape the admin socket carries (`control`): its own type,
/// not the command line's, so the CLI's spelling can change without breaking a running
/// server. The CLI converts its parsed arguments into these (`cli`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AdminCommand {
    AccountCreate {
        name: String,
        email: String,
        prefix: Option<String>,
    },
    AccountList,
    AccountDelete {
        prefix: String,
    },
    AccountSetDefault {
        prefix: String,
    },
    TokenCreate {
        account: String,
        name: String,
        scopes: Vec<String>,
        expires: Option<Duration>,
    },
    TokenList {
        account: String,
    },
    TokenRevoke {
        account: String,
        name: String,
    },
    OperatorTokenCreate {
        name: String,
        read_only: bool,
        expires: Option<Duration>,
    },
    OperatorTokenList,
    OperatorTokenRevoke {
        name: String,
    },
    LicenseIssue {
        limit: u32,
        expires: Option<Duration>,
    },
    LicenseList,
    LicenseRevoke {
        id: u64,
    },
    ProductCreate {
        account: Option<String>,
        slug: String,
        kind: String,
        name: Option<String>,
        license: Option<String>,
    },
    ProductList {
        account: Option<String>,
    },
    ProductDelete {
        account: Option<String>,
        slug: String,
    },
    ReleaseList {
        account: Option<String>,
        product: Option<String>,
    },
    /// `release publish` (`published: true`) and `release unpublish`.
    ReleasePublish {
        account: Option<String>,
        product: String,
        version: String,
        published: bool,
    },
    ReleaseDelete {
        account: Option<String>,
        product: String,
        version: String,
    },
    /// `customer …`, `key …`, `activation …` (SPEC §13), kept in [`licensing`].
    Licensing(licensing::LicensingCommand),
}

impl AdminCommand {
    /// `account create`, … (for logs; carries no argument values).
    pub fn name(&self) -> &'static str {
        match self {
            AdminCommand::AccountCreate { .. } => "account create",
            AdminCommand::AccountList => "account list",
            AdminCommand::AccountDelete { .. } => "account delete",
            AdminCommand::AccountSetDefault { .. } => "account set-default",
            AdminCommand::TokenCreate { .. } => "token create",
            AdminCommand::TokenList { .. } => "token list",
            AdminCommand::TokenRevoke { .. } => "token revoke",
            AdminCommand::OperatorTokenCreate { .. } => "operator-token create",
            AdminCommand::OperatorTokenList => "operator-token list",
            AdminCommand::OperatorTokenRevoke { .. } => "operator-token revoke",
            AdminCommand::LicenseIssue { .. } => "license issue",
            AdminCommand::LicenseList => "license list",
            AdminCommand::LicenseRevoke { .. } => "license revoke",
            AdminCommand::ProductCreate { .. } => "product create",
            AdminCommand::ProductList { .. } => "product list",
            AdminCommand::ProductDelete { .. } => "product delete",
            AdminCommand::ReleaseList { .. } => "release list",
            AdminCommand::ReleasePublish {
                published: true, ..
            } => "release publish",
            AdminCommand::ReleasePublish { .. } => "release unpublish",
            AdminCommand::ReleaseDelete { .. } => "release delete",
            AdminCommand::Licensing(command) => command.name(),
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

/// Runs `command` through the services as `ctx.actor` (the CLI), waiting until its writes
/// are on disk and their events published.
///
/// # Errors
/// Bad arguments (`InvalidRequest`), unknown names (`NotFound`), duplicates
/// (`Conflict`), or a store failure.
pub fn execute(
    ctx: &Ctx<'_>,
    default_activation_limit: u32,
    command: &AdminCommand,
) -> Result<Output, Error> {
    use AdminCommand as C;
    let now = ctx.now;
    match command {
        C::AccountCreate {
            name,
            email,
            prefix,
        } => {
            let new = NewAccount::parse(name, email, prefix.as_deref())
                .map_err(|(field, reason)| Error::invalid(field, reason))?;
            let (account, first) = service::accounts::create(ctx, new)?.durable_blocking()?;
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
        C::AccountList => {
            let accounts = ctx.store.accounts()?;
            let mut text = format!(
                "{:<32}  {:>5}  {:<24}  NAME <EMAIL>\n",
                "PREFIX", "LIMIT", "CREATED"
            );
            let mut rows = Vec::with_capacity(accounts.len());
            for account in &accounts {
                let limit = service::accounts::activation_limit(
                    ctx.store,
                    account,
                    default_activation_limit,
                    now,
                )?;
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
        C::AccountDelete { prefix } => {
            let prefix = parse_prefix(prefix)?;
            require_account(ctx, &prefix)?;
            let n_tokens = ctx.store.tokens_of(Some(&prefix))?.len();
            let account = service::accounts::delete(ctx, prefix.as_str())?.durable_blocking()?;
            Ok(Output {
                text: format!(
                    "deleted account {} and its {n_tokens} token(s)\n",
                    account.prefix
                ),
                json: json!({ "deleted": account.prefix.as_str(), "tokens_deleted": n_tokens }),
            })
        }
        C::AccountSetDefault { prefix } => {
            let prefix = service::accounts::set_default(ctx, prefix)?.durable_blocking()?;
            Ok(Output {
                text: format!(
                    "account {prefix} is now the default account: the bare host's EDD and \
                     wp-update-server routes (/) serve it\n"
                ),
                json: json!({ "default": prefix.as_str() }),
            })
        }
        C::TokenCreate {
            account,
            name,
            scopes,
            expires,
        } => {
            let prefix = parse_prefix(account)?;
            require_account(ctx, &prefix)?;
            // `--scopes "api, reports"`: clap splits on the comma; the space goes here.
            let scopes = Scopes::parse_all(scopes.iter().map(|s| s.trim()))
                .map_err(|reason| Error::invalid("scopes", reason))?;
            let new = service::tokens::NewToken {
                owner: service::tokens::Owner::Account(prefix),
                name: name.clone(),
                scopes,
                expires_at: expiry(*expires, now),
                expires_field: "expires",
            };
            let created = service::tokens::create(ctx, new)?.durable_blocking()?;
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
        C::TokenList { account } => {
            let prefix = parse_prefix(account)?;
            require_account(ctx, &prefix)?;
            let tokens = ctx.store.tokens_of(Some(&prefix))?;
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
                    time(token.last_used_at)
                );
            }
            let rows: Vec<Value> = tokens.iter().map(|t| token_json(t, now)).collect();
            Ok(Output {
                text,
                json: json!({ "account": prefix.as_str(), "tokens": rows }),
            })
        }
        C::TokenRevoke { account, name } => {
            let prefix = parse_prefix(account)?;
            require_account(ctx, &prefix)?;
            let token = service::tokens::delete(ctx, Some(&prefix), name)?.durable_blocking()?;
            Ok(Output {
                text: format!("revoked token \"{}\" of account {prefix}\n", token.name),
                json: json!({ "revoked": token.name, "account": prefix.as_str() }),
            })
        }
        C::OperatorTokenCreate {
            name,
            read_only,
            expires,
        } => {
            let new = service::tokens::NewToken {
                owner: service::tokens::Owner::Operator {
                    active: true,
                    write: !read_only,
                },
                name: name.clone(),
                scopes: Scopes::empty(),
                expires_at: expiry(*expires, now),
                expires_field: "expires",
            };
            let created = service::tokens::create(ctx, new)?.durable_blocking()?;
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
        C::OperatorTokenList => {
            let tokens = ctx.store.tokens_of(None)?;
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
                    time(token.last_used_at)
                );
                rows.push(view_json(&view));
            }
            Ok(Output {
                text,
                json: json!({ "tokens": rows }),
            })
        }
        C::OperatorTokenRevoke { name } => {
            let token = service::tokens::delete(ctx, None, name)?.durable_blocking()?;
            Ok(Output {
                text: format!("revoked operator token \"{}\"\n", token.name),
                json: json!({ "revoked": token.name }),
            })
        }
        C::LicenseIssue { limit, expires } => {
            let issued =
                service::plan_licenses::issue(ctx, *limit, expiry(*expires, now), "expires")?
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
        C::LicenseList => {
            let licenses = ctx.store.licenses()?;
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
        C::Licensing(command) => licensing::execute(ctx, command),
        C::LicenseRevoke { id } => {
            let license =
                service::plan_licenses::revoke(ctx, LicenseId(*id))?.durable_blocking()?;
            let freed = license
                .account
                .map(|p| format!("; account {p} falls back to the default limit"))
                .unwrap_or_default();
            Ok(Output {
                text: format!("revoked plan license {}{freed}\n", license.id),
                json: json!({ "revoked": license.id.0, "account": license.account.map(|p| p.as_str().to_owned()) }),
            })
        }
        C::ProductCreate {
            account,
            slug,
            kind,
            name,
            license,
        } => {
            let account = account_of(ctx, account.as_deref())?;
            let kind = ProductKind::parse(kind).ok_or_else(|| {
                Error::invalid("--kind", format!("`{kind}` is not plugin, theme or app"))
            })?;
            let changes = catalog::ProductChanges {
                name: name.clone(),
                license: license.as_deref().map(parse_license).transpose()?,
                ..catalog::ProductChanges::default()
            };
            let product = catalog::create_product(ctx, &account, slug.clone(), kind, changes)?
                .durable_blocking()?;
            Ok(Output {
                text: format!(
                    "created {} `{}` (id {}, name \"{}\", license {}) in account {account}\n",
                    product.kind.as_str(),
                    product.slug,
                    product.id,
                    product.name,
                    product.license.as_str()
                ),
                json: json!({ "account": account.as_str(), "product": product_json(&product) }),
            })
        }
        C::ProductList { account } => {
            let account = account_of(ctx, account.as_deref())?;
            let products = ctx.store.products(&account)?;
            let mut text = format!(
                "{:<32}  {:<6}  {:<13}  {:>16}  NAME\n",
                "SLUG", "KIND", "LICENSE", "ID"
            );
            for product in &products {
                let _ = writeln!(
                    text,
                    "{:<32}  {:<6}  {:<13}  {:>16}  {}",
                    product.slug,
                    product.kind.as_str(),
                    product.license.as_str(),
                    product.id.0,
                    product.name
                );
            }
            if products.is_empty() {
                text = format!("no products in account {account}\n");
            }
            let rows: Vec<Value> = products.iter().map(product_json).collect();
            Ok(Output {
                text,
                json: json!({ "account": account.as_str(), "products": rows }),
            })
        }
        C::ProductDelete { account, slug } => {
            let account = account_of(ctx, account.as_deref())?;
            let product = catalog::product_by_slug(ctx, &account, slug)?;
            let gone = catalog::delete_product(ctx, &account, product.id)?.durable_blocking()?;
            Ok(Output {
                text: format!(
                    "deleted product `{}` (id {}) with its {} version(s)\n",
                    gone.product.slug,
                    gone.product.id,
                    gone.releases.len()
                ),
                json: json!({
                    "account": account.as_str(),
                    "deleted": product_json(&gone.product),
                    "versions_deleted": gone.releases.len(),
                }),
            })
        }
        C::ReleaseList { account, product } => {
            let account = account_of(ctx, account.as_deref())?;
            let products = match product {
                Some(slug) => vec![catalog::product_by_slug(ctx, &account, slug)?],
                None => ctx.store.products(&account)?,
            };
            let mut text = format!(
                "{:<32}  {:<16}  {:<8}  {:<9}  {:>7}  {:<20}  FILE\n",
                "PRODUCT", "VERSION", "MATURITY", "PUBLISHED", "ROLLOUT", "RELEASED"
            );
            let mut rows = Vec::new();
            for product in &products {
                let found = catalog::catalogued(ctx, &account, product.id)?;
                for release in &found.releases {
                    let file = release.primary().map_or_else(
                        || "-".to_owned(),
                        |f| format!("{} ({})", f.filename, human_size(f.size)),
                    );
                    let _ = writeln!(
                        text,
                        "{:<32}  {:<16}  {:<8}  {:<9}  {:>6}%  {:<20}  {file}",
                        product.slug,
                        release.version,
                        release.maturity.as_str(),
                        if release.published { "yes" } else { "no" },
                        release.rollout,
                        release
                            .released_at
                            .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339()),
                    );
                    rows.push(version_json(release));
                }
            }
            if rows.is_empty() {
                text = match product {
                    Some(slug) => format!("product `{slug}` has no versions\n"),
                    None => format!("no versions in account {account}\n"),
                };
            }
            let products: Vec<Value> = products.iter().map(product_json).collect();
            Ok(Output {
                text,
                json: json!({ "account": account.as_str(), "products": products, "versions": rows }),
            })
        }
        C::ReleasePublish {
            account,
            product,
            version,
            published,
        } => {
            let account = account_of(ctx, account.as_deref())?;
            let product = catalog::product_by_slug(ctx, &account, product)?;
            let release = catalog::release_by_version(ctx, &account, product.id, version)?;
            let changes = catalog::VersionChanges {
                published: Some(*published),
                ..catalog::VersionChanges::default()
            };
            let changed =
                catalog::update_version(ctx, &account, release.id, changes)?.durable_blocking()?;
            let what = match (release.published, *published) {
                (false, true) => "published",
                (true, false) => "unpublished",
                (true, true) => "was already published",
                (false, false) => "was already unpublished",
            };
            Ok(Output {
                text: format!("{} {} {what}\n", product.slug, changed.version),
                json: json!({ "account": account.as_str(), "product": product_json(&product), "version": version_json(&changed) }),
            })
        }
        C::ReleaseDelete {
            account,
            product,
            version,
        } => {
            let account = account_of(ctx, account.as_deref())?;
            let product = catalog::product_by_slug(ctx, &account, product)?;
            let release = catalog::release_by_version(ctx, &account, product.id, version)?;
            let gone = catalog::delete_version(ctx, &account, release.id)?.durable_blocking()?;
            Ok(Output {
                text: format!(
                    "deleted version {} of `{}` and its {} file(s)\n",
                    gone.version,
                    product.slug,
                    gone.files.len()
                ),
                json: json!({ "account": account.as_str(), "product": product_json(&product), "deleted": version_json(&gone) }),
            })
        }
    }
}

/// The one wording for an unknown account, whatever the command.
fn unknown_account(prefix: &AccountPrefix) -> Error {
    Error::NotFound(format!("no account with prefix `{prefix}`"))
}

fn require_account(ctx: &Ctx<'_>, prefix: &AccountPrefix) -> Result<(), Error> {
    match ctx.store.account(prefix)? {
        Some(_) => Ok(()),
        None => Err(unknown_account(prefix)),
    }
}

fn parse_prefix(text: &str) -> Result<AccountPrefix, Error> {
    AccountPrefix::parse(text).map_err(|reason| Error::invalid("account prefix", reason))
}

/// `--expires 90d` as a point in time (the services check what it may be).
fn expiry(lifetime: Option<Duration>, now: Timestamp) -> Option<Timestamp> {
    lifetime.map(|lifetime| now.saturating_add(lifetime))
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

fn license_json(license: &PlanLicense, now: Timestamp) -> Value {
    view_json(&LicenseAdminView::new(license, now, None))
}

// ----- the catalogue -------------------------------------------------------------

/// The account a catalogue command works on: the one given, or — when none is given —
/// the only account of the store.
///
/// # Errors
/// A bad or unknown prefix; none given while the store holds no account or several.
pub fn account_of(ctx: &Ctx<'_>, given: Option<&str>) -> Result<AccountPrefix, Error> {
    if let Some(text) = given {
        let prefix = AccountPrefix::parse(text).map_err(|why| Error::invalid("--account", why))?;
        if ctx.store.account(&prefix)?.is_none() {
            return Err(Error::NotFound(format!(
                "--account: no account with prefix `{prefix}`"
            )));
        }
        return Ok(prefix);
    }
    let accounts = ctx.store.accounts()?;
    match accounts.as_slice() {
        [only] => Ok(only.prefix),
        [] => Err(Error::invalid(
            "--account",
            "the store holds no account yet: create one with `upkeep account create`",
        )),
        several => {
            let mut names: Vec<&str> = several.iter().take(5).map(|a| a.prefix.as_str()).collect();
            if several.len() > 5 {
                names.push("…");
            }
            Err(Error::invalid(
                "--account",
                format!(
                    "the store holds {} accounts ({}): say which with --account",
                    several.len(),
                    names.join(", ")
                ),
            ))
        }
    }
}

fn parse_license(text: &str) -> Result<LicenseModel, Error> {
    LicenseModel::parse(text).ok_or_else(|| {
        Error::invalid(
            "--license",
            format!("`{text}` is not free, static_keys or download_keys"),
        )
    })
}

/// A product, as the admin output shows it.
pub fn product_json(product: &Product) -> Value {
    json!({
        "id": product.id.0,
        "slug": product.slug,
        "kind": product.kind.as_str(),
        "name": product.name,
        "license": product.license.as_str(),
        "require_activation": product.require_activation,
        "published": product.published,
        "group_id": product.group_id.0,
        "created_at": product.created_at.to_rfc3339(),
        "updated_at": product.updated_at.to_rfc3339(),
    })
}

/// A version with its files, in the shape of the `/api/v1` version view.
pub fn version_json(release: &Release) -> Value {
    let files: Vec<Value> = release.files.iter().map(file_json).collect();
    json!({
        "id": release.id.0,
        "product_id": release.product_id.0,
        "version": release.version,
        "maturity": release.maturity.as_str(),
        "published": release.published,
        "rollout": release.rollout,
        "released_at": release.released_at.map(|at| at.to_rfc3339()),
        "files": files,
    })
}

fn file_json(file: &FileRecord) -> Value {
    json!({
        "id": file.id.0,
        "name": file.name,
        "filename": file.filename,
        "size": file.size,
        "blake3": file.blob.to_hex(),
        "primary": file.primary,
        "published": file.published,
    })
}

/// `2.9 KiB`: a size for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(2970), "2.9 KiB");
        assert_eq!(human_size(50_000_000), "47.7 MiB");
    }
}
