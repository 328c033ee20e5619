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
    /// `customer …`, `key …`, `activation …` (SPEC §13), kept in [`licensing`].
    Licensing(licensing::LicensingCommand),
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
            AdminCommand::Licensing(command) => command.name(),
            AdminCommand::ProductCreate { .. } => "product create",
            AdminCommand::ProductList { .. } => "product list",
            AdminCommand::ProductDelete { .. } => "product delete",
            AdminCommand::ReleaseList { .. } => "release list",
            AdminCommand::ReleasePublish {
                published: true, ..
            } => "release publish",
            AdminCommand::ReleasePublish { .. } => "release unpublish",
            AdminCommand::ReleaseDelete { .. } => "release delete",
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
            let scopes = Scopes::parse_all(scopes.iter().map(String::as_str))
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

// ----- release push --------------------------------------------------------------

/// `upkeep release push`: everything but the file's bytes. Not an [`AdminCommand`]: the
/// content travels beside it (read from the file by the CLI when it opened the store
/// itself, streamed after this request over the admin socket, see `control`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    pub account: Option<String>,
    pub product: Option<String>,
    /// The name the file is served under (the pushed file's own name).
    pub filename: String,
    /// The file's size in bytes, as the CLI found it before sending.
    pub size: u64,
    pub version: Option<String>,
    pub maturity: Option<String>,
    /// The release notes (the content of `--notes FILE`).
    pub release_notes: Option<String>,
    pub rollout: Option<u8>,
    pub draft: bool,
    /// The license model of a product the push creates.
    pub license: Option<String>,
    /// Where the printed update URLs start, and which setting gave it.
    pub base_url: String,
    pub base_from: String,
}

/// What a push resolved before any byte of the file is stored: the account and how the
/// product is found.
#[derive(Debug)]
pub struct PushPlan {
    account: AccountPrefix,
    target: ReleaseTarget,
    options: ReleaseOptions,
}

/// Checks a push before its file is read: the account, the product, the options. A
/// refusal here stores nothing (and, over the socket, is sent before the bytes).
///
/// # Errors
/// As the fields are wrong: the message names the flag.
pub fn plan_push(ctx: &Ctx<'_>, request: &PushRequest, max_upload: u64) -> Result<PushPlan, Error> {
    crate::model::catalog::check_filename(&request.filename)
        .map_err(|why| Error::invalid("FILE", format!("its name: {why}")))?;
    if request.size == 0 {
        return Err(Error::bad(
            "invalid_package",
            format!("package: {} is empty", request.filename),
        ));
    }
    if request.size > max_upload {
        return Err(Error::Coded {
            status: http::StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!(
                "FILE: {} is {} bytes, more than the upload limit of {max_upload} bytes",
                request.filename, request.size
            ),
        });
    }
    let account = account_of(ctx, request.account.as_deref())?;
    let maturity = request
        .maturity
        .as_deref()
        .map(|m| {
            Maturity::parse(m).ok_or_else(|| {
                Error::invalid(
                    "--maturity",
                    format!("`{m}` is not dev, alpha, beta, rc or stable"),
                )
            })
        })
        .transpose()?;
    if let Some(rollout) = request.rollout
        && !(1..=100).contains(&rollout)
    {
        return Err(Error::invalid("--rollout", "must be 1–100 (% of sites)"));
    }
    if let Some(version) = &request.version {
        crate::model::Version::parse(version)
            .map_err(|err| Error::bad("invalid_version", format!("--version: {err}")))?;
    }
    let license = request.license.as_deref().map(parse_license).transpose()?;
    let target = match &request.product {
        Some(slug) => {
            let product = ctx.store.product_by_slug(&account, slug)?.ok_or_else(|| {
                Error::NotFound(format!(
                    "--product: account {account} has no product `{slug}` (omit --product to \
                     create a plugin or theme from its package, or `upkeep product create` it)"
                ))
            })?;
            ReleaseTarget::Product(product.id)
        }
        None => ReleaseTarget::BySlug {
            license: license.unwrap_or(LicenseModel::Free),
            kind: None,
        },
    };
    Ok(PushPlan {
        account,
        target,
        options: ReleaseOptions {
            version: request.version.clone(),
            maturity,
            release_notes: request.release_notes.clone(),
            rollout: request.rollout,
            draft: request.draft,
        },
    })
}

/// Stores a push's file, read from `reader` (at most `request.size` bytes are read): the
/// file itself when the CLI opened the store, the socket's byte stream in the server.
///
/// # Errors
/// Reading failed (`FILE: …`), or the blob could not be written (a full disk is
/// `storage_unavailable`).
pub fn store_file(
    ctx: &Ctx<'_>,
    request: &PushRequest,
    reader: impl std::io::Read,
) -> Result<Staged, Error> {
    use crate::store::PutError;
    ctx.store
        .blobs()
        .put_reader(reader.take(request.size), request.size)
        .map_err(|err| match err {
            PutError::Source(err) => Error::bad(
                "incomplete_upload",
                format!(
                    "FILE: reading {} failed after some bytes: {err}; nothing was stored",
                    request.filename
                ),
            ),
            PutError::TooLarge { limit } => Error::invalid(
                "FILE",
                format!(
                    "{} grew past {limit} bytes while it was read",
                    request.filename
                ),
            ),
            PutError::Io(err) if err.raw_os_error() == Some(libc::ENOSPC) => {
                Error::StorageUnavailable(crate::store::StoreError::from(err))
            }
            PutError::Io(err) => Error::Internal(Box::new(err)),
        })
}

/// Ships the release of a push whose file is stored (`staged`), and says what it did,
/// with the product's update URLs.
///
/// # Errors
/// What [`catalog::release_package`] refuses (`invalid_package`, `version_exists`, …).
pub fn push(
    ctx: &Ctx<'_>,
    request: &PushRequest,
    plan: PushPlan,
    staged: Staged,
) -> Result<Output, Error> {
    if staged.size() != request.size {
        return Err(Error::bad(
            "incomplete_upload",
            format!(
                "FILE: {} bytes of {} arrived; nothing was stored (was the file changed while \
                 it was sent?)",
                staged.size(),
                request.size
            ),
        ));
    }
    let content_type = if request.filename.to_ascii_lowercase().ends_with(".zip") {
        "application/zip"
    } else {
        "application/octet-stream"
    };
    let upload = Upload {
        staged,
        filename: request.filename.clone(),
        content_type: content_type.to_owned(),
    };
    let account = plan.account;
    let released = catalog::release_package(ctx, &account, plan.target, upload, plan.options)?
        .durable_blocking()?;
    let product = &released.product;
    let release = &released.release;
    let urls = update_urls(&request.base_url, &account, product);
    let mut text = String::new();
    let state = if release.published {
        "published"
    } else {
        "draft (unpublished): `upkeep release publish` offers it to sites"
    };
    if released.version_created {
        let _ = writeln!(
            text,
            "released {} {} ({}), {state}",
            product.slug,
            release.version,
            release.maturity.as_str()
        );
    } else {
        let _ = writeln!(
            text,
            "{} {} already holds this file: nothing changed ({})",
            product.slug,
            release.version,
            if release.published {
                "published"
            } else {
                "unpublished"
            }
        );
    }
    let _ = writeln!(
        text,
        "  product  {} ({}, id {}, license {}){}",
        product.slug,
        product.kind.as_str(),
        product.id,
        product.license.as_str(),
        if released.product_created {
            ", created from the package"
        } else {
            ""
        }
    );
    if let Some(file) = release.primary() {
        let _ = writeln!(
            text,
            "  file     {} ({}, blake3 {})",
            file.filename,
            human_size(file.size),
            file.blob.to_hex()
        );
    }
    if release.rollout < 100 {
        let _ = writeln!(text, "  rollout  {}% of sites", release.rollout);
    }
    let hint = if request.base_from == "--public-url" {
        ""
    } else {
        "; give --public-url (UPKEEP_PUBLIC_URL) for the address sites reach"
    };
    let _ = writeln!(
        text,
        "update URLs (base {}, from {}{hint}):",
        request.base_url, request.base_from
    );
    for (label, _, url) in &urls {
        let _ = writeln!(text, "  {label:<24} {url}");
    }
    let url_map: serde_json::Map<String, Value> = urls
        .iter()
        .map(|(_, key, url)| ((*key).to_owned(), Value::String(url.clone())))
        .collect();
    Ok(Output {
        text,
        json: json!({
            "account": account.as_str(),
            "product": product_json(product),
            "product_created": released.product_created,
            "version_created": released.version_created,
            "version": version_json(release),
            "update_urls": url_map,
            "base_url": request.base_url,
            "base_from": request.base_from,
        }),
    })
}

/// The product's update-check URLs, one a dialect (SPEC §8.2): `(label, key, url)`. An
/// app has only the UpdaterCloud one (the others are WordPress clients').
pub fn update_urls(
    base: &str,
    account: &AccountPrefix,
    product: &Product,
) -> Vec<(&'static str, &'static str, String)> {
    let slug = &product.slug;
    let id = product.id.0;
    let mut urls = Vec::new();
    let folder = match product.kind {
        ProductKind::Plugin => Some("plugins"),
        ProductKind::Theme => Some("themes"),
        ProductKind::App => None,
    };
    if let Some(folder) = folder {
        urls.push((
            "WunderUpdates",
            "wunderupdates",
            format!("{base}/v1/public/{account}/{folder}/{slug}"),
        ));
        urls.push((
            "Plugin Update Checker",
            "plugin_update_checker",
            format!("{base}/updates/{account}/{slug}"),
        ));
        urls.push((
            "EDD Software Licensing",
            "edd",
            format!("{base}/edd/{account}/?edd_action=get_version&item_id={id}"),
        ));
    }
    urls.push((
        "UpdaterCloud",
        "updatercloud",
        format!("{base}/api/v1/products/{id}/update"),
    ));
    urls
}

/// The base of the printed URLs: `--public-url` (trailing `/` dropped), else
/// `http://LISTEN` (an unspecified address such as `0.0.0.0` shown as loopback). Returns
/// the base and the setting it came from.
///
/// # Errors
/// A `--public-url` that is not an http(s) URL.
pub fn url_base(public_url: Option<&str>, listen: &str) -> Result<(String, String), Error> {
    if let Some(url) = public_url.map(str::trim).filter(|u| !u.is_empty()) {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.contains(' ') {
            return Err(Error::invalid(
                "--public-url",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        return Ok((
            url.trim_end_matches('/').to_owned(),
            "--public-url".to_owned(),
        ));
    }
    let host = match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            std::net::SocketAddr::new(loopback, addr.port()).to_string()
        }
        Ok(addr) => addr.to_string(),
        Err(_) => listen.to_owned(),
    };
    Ok((format!("http://{host}"), "--listen".to_owned()))
}

/// A reader that shows how much of it was read, on stderr, when stderr is a terminal:
/// `uploading plugin.zip: 1.2 MiB / 3.4 MiB (35%)`, redrawn at most every 100 ms, ended
/// with a newline. Silent when `show` is false.
pub struct Progress<R> {
    inner: R,
    label: String,
    total: u64,
    done: u64,
    show: bool,
    drawn: Option<std::time::Instant>,
}

impl<R> Progress<R> {
    pub fn new(inner: R, label: String, total: u64, show: bool) -> Self {
        Progress {
            inner,
            label,
            total,
            done: 0,
            show,
            drawn: None,
        }
    }

    fn draw(&mut self, last: bool) {
        use std::io::Write as _;
        let percent = (self.done.saturating_mul(100))
            .checked_div(self.total)
            .unwrap_or(100)
            .min(100);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2Kuploading {}: {} / {} ({percent}%)",
            self.label,
            human_size(self.done),
            human_size(self.total)
        );
        if last {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }

    /// Ends the line, if one was drawn.
    pub fn finish(&mut self) {
        if self.show && self.drawn.is_some() {
            self.draw(true);
            self.drawn = None;
        }
    }
}

impl<R: std::io::Read> std::io::Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.show {
            let now = std::time::Instant::now();
            let due = self
                .drawn
                .is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_millis(100));
            if due || n == 0 {
                self.draw(false);
                self.drawn = Some(now);
            }
        }
        Ok(n)
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_base_comes_from_public_url_else_from_the_listen_address() {
        let (base, from) = url_base(Some("https://updates.example.com/"), "0.0.0.0:80").unwrap();
        assert_eq!(base, "https://updates.example.com");
        assert_eq!(from, "--public-url");
        let (base, from) = url_base(None, "127.0.0.1:8787").unwrap();
        assert_eq!(
            (base.as_str(), from.as_str()),
            ("http://127.0.0.1:8787", "--listen")
        );
        // A wildcard address is not one a browser can use: loopback instead.
        assert_eq!(
            url_base(None, "0.0.0.0:9000").unwrap().0,
            "http://127.0.0.1:9000"
        );
        assert_eq!(url_base(None, "[::]:9000").unwrap().0, "http://[::1]:9000");
        assert_eq!(
            url_base(Some("  "), "[::1]:8787").unwrap().0,
            "http://[::1]:8787"
        );
        let refused = url_base(Some("updates.example.com"), "127.0.0.1:8787").unwrap_err();
        assert!(
            refused.to_string().starts_with("--public-url:"),
            "{refused}"
        );
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(2970), "2.9 KiB");
        assert_eq!(human_size(50_000_000), "47.7 MiB");
    }
}
