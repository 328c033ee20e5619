//! `upkeep customer|key|activation …` (SPEC §13): what each prints, over the licensing
//! services (`service::licensing`) as the CLI. JSON output uses the same views as
//! `/api/v1` (`api::updatercloud::licensing`).

use super::{Output, parse_prefix, require_account, view_json};
use crate::api::updatercloud::licensing::{ActivationView, CustomerView, DownloadKeyView};
use crate::error::Error;
use crate::model::{
    AccountPrefix, ActivationId, CustomerId, DownloadKeyId, Identity, ProductId, ProductScope,
};
use crate::service::licensing::{self as svc, CustomerChanges, KeyQuery, KeyWithValue, NewKey};
use crate::service::{self, Ctx};
use crate::store::PageRequest;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write;
use std::time::Duration;

/// The licensing admin commands, as the admin socket carries them (inside
/// `AdminCommand::Licensing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "licensing", rename_all = "snake_case")]
pub enum LicensingCommand {
    CustomerCreate {
        account: String,
        name: String,
        email: String,
        business: Option<String>,
        country: Option<String>,
    },
    CustomerList {
        account: String,
        query: Option<String>,
    },
    CustomerDelete {
        account: String,
        id: u64,
    },
    KeyGenerate {
        account: String,
        customer: u64,
        /// Slugs or ids, or `all`.
        products: Vec<String>,
        limit: Option<i64>,
        expires: Option<Duration>,
        key: Option<String>,
    },
    KeyList {
        account: String,
        customer: Option<u64>,
        product: Option<String>,
    },
    KeyShow {
        account: String,
        id: u64,
    },
    KeyEnable {
        account: String,
        id: u64,
        enabled: bool,
    },
    KeyDelete {
        account: String,
        id: u64,
    },
    ActivationList {
        account: String,
        key: u64,
    },
    ActivationDelete {
        account: String,
        id: u64,
    },
}

impl LicensingCommand {
    /// `customer create`, … (for logs; no argument values).
    pub fn name(&self) -> &'static str {
        use LicensingCommand as L;
        match self {
            L::CustomerCreate { .. } => "customer create",
            L::CustomerList { .. } => "customer list",
            L::CustomerDelete { .. } => "customer delete",
            L::KeyGenerate { .. } => "key generate",
            L::KeyList { .. } => "key list",
            L::KeyShow { .. } => "key show",
            L::KeyEnable { enabled: true, .. } => "key enable",
            L::KeyEnable { enabled: false, .. } => "key disable",
            L::KeyDelete { .. } => "key delete",
            L::ActivationList { .. } => "activation list",
            L::ActivationDelete { .. } => "activation delete",
        }
    }
}

fn account(ctx: &Ctx<'_>, text: &str) -> Result<AccountPrefix, Error> {
    let prefix = parse_prefix(text)?;
    require_account(ctx, &prefix)?;
    Ok(prefix)
}

/// A product by slug or id.
fn product(ctx: &Ctx<'_>, account: &AccountPrefix, text: &str) -> Result<ProductId, Error> {
    let text = text.trim();
    if let Ok(id) = text.parse::<u64>()
        && let Ok(product) = service::catalog::product(ctx, account, ProductId(id))
    {
        return Ok(product.id);
    }
    service::catalog::product_by_slug(ctx, account, text)
        .map(|p| p.id)
        .map_err(|_| Error::invalid("product", format!("no product `{text}` in {account}")))
}

fn key_line(k: &KeyWithValue) -> String {
    let r = &k.record;
    let products = match &r.products {
        ProductScope::All => "all".to_owned(),
        ProductScope::Only(ids) if ids.is_empty() => "none".to_owned(),
        ProductScope::Only(ids) => ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    };
    let limit = if r.activation_limit == 0 {
        "unlimited".to_owned()
    } else {
        r.activation_limit.to_string()
    };
    format!(
        "{:<17}  {:<8}  {:>4}/{:<9}  {:<20}  {:<17}  {}",
        r.id,
        r.status.as_str(),
        r.counted,
        limit,
        r.expires_at
            .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339()),
        r.customer_id,
        products,
    ) + &format!("\n  {}", k.key)
}

const KEY_HEADER: &str = "ID                 STATUS    USED/LIMIT      EXPIRES               CUSTOMER           PRODUCTS\n";

fn activation_line(a: &crate::model::Activation) -> String {
    let what = match &a.identity {
        Identity::Site(site) => site.to_string(),
        Identity::Machine(machine) => machine.clone(),
        Identity::Instance => a.label.clone().unwrap_or_else(|| "-".to_owned()),
    };
    format!(
        "{:<17}  {:<8}  {:<6}  {:<20}  {}\n",
        a.id,
        a.identity.kind(),
        if a.counts { "yes" } else { "no" },
        a.created_at.to_rfc3339(),
        what
    )
}

const ACTIVATION_HEADER: &str =
    "ID                 KIND      COUNTS  CREATED               SITE / MACHINE / LABEL\n";

/// Runs a licensing command.
///
/// # Errors
/// Bad arguments, unknown ids, or a store failure.
pub fn execute(ctx: &Ctx<'_>, command: &LicensingCommand) -> Result<Output, Error> {
    use LicensingCommand as L;
    let now = ctx.now;
    match command {
        L::CustomerCreate {
            account: a,
            name,
            email,
            business,
            country,
        } => {
            let prefix = account(ctx, a)?;
            let changes = CustomerChanges {
                name: Some(name.clone()),
                email: Some(email.clone()),
                entity: business.as_ref().map(|_| crate::model::Entity::Business),
                business_name: business.clone().map(Some),
                country: country.clone().map(Some),
                ..CustomerChanges::default()
            };
            let c = svc::create_customer(ctx, &prefix, changes)?.durable_blocking()?;
            Ok(Output {
                text: format!("created customer {} ({} <{}>)\n", c.id, c.name, c.email),
                json: view_json(&CustomerView::new(&c)),
            })
        }
        L::CustomerList { account: a, query } => {
            let prefix = account(ctx, a)?;
            let page = svc::customers(ctx, &prefix, query.as_deref(), &PageRequest::all())?;
            let mut text = format!("{:<17}  {:<24}  NAME <EMAIL>\n", "ID", "CREATED");
            for c in &page.items {
                let _ = writeln!(
                    text,
                    "{:<17}  {:<24}  {} <{}>",
                    c.id,
                    c.created_at.to_rfc3339(),
                    c.name,
                    c.email
                );
            }
            if page.items.is_empty() {
                text = "no customers\n".to_owned();
            }
            let rows: Vec<_> = page.items.iter().map(CustomerView::new).collect();
            Ok(Output {
                text,
                json: json!({ "customers": rows }),
            })
        }
        L::CustomerDelete { account: a, id } => {
            let prefix = account(ctx, a)?;
            let (c, keys) =
                svc::delete_customer(ctx, &prefix, CustomerId(*id))?.durable_blocking()?;
            Ok(Output {
                text: format!("deleted customer {} and its {keys} key(s)\n", c.id),
                json: json!({ "deleted": c.id.0, "keys_deleted": keys }),
            })
        }
        L::KeyGenerate {
            account: a,
            customer,
            products,
            limit,
            expires,
            key,
        } => {
            let prefix = account(ctx, a)?;
            let scope = if products
                .iter()
                .any(|p| p.trim().eq_ignore_ascii_case("all"))
            {
                ProductScope::All
            } else {
                ProductScope::Only(
                    products
                        .iter()
                        .map(|p| product(ctx, &prefix, p))
                        .collect::<Result<_, _>>()?,
                )
            };
            let new = NewKey {
                customer_id: CustomerId(*customer),
                products: scope,
                activation_limit: *limit,
                expires_at: expires.map(|lifetime| now.saturating_add(lifetime)),
                key: key.clone(),
                notes: None,
            };
            let issued = svc::generate_key(ctx, &prefix, new)?.durable_blocking()?;
            Ok(Output {
                text: format!(
                    "generated download key {} for customer {}:\n{}\n",
                    issued.record.id, issued.record.customer_id, issued.key
                ),
                json: view_json(&DownloadKeyView::new(&issued)),
            })
        }
        L::KeyList {
            account: a,
            customer,
            product: p,
        } => {
            let prefix = account(ctx, a)?;
            let query = KeyQuery {
                customer_id: customer.map(CustomerId),
                product_id: p.as_deref().map(|p| product(ctx, &prefix, p)).transpose()?,
                key: None,
            };
            let page = svc::keys(ctx, &prefix, &query, &PageRequest::all())?;
            let mut text = KEY_HEADER.to_owned();
            for k in &page.items {
                text.push_str(&key_line(k));
                text.push('\n');
            }
            if page.items.is_empty() {
                text = "no download keys\n".to_owned();
            }
            let rows: Vec<_> = page.items.iter().map(DownloadKeyView::new).collect();
            Ok(Output {
                text,
                json: json!({ "keys": rows }),
            })
        }
        L::KeyShow { account: a, id } => {
            let prefix = account(ctx, a)?;
            let k = svc::key(ctx, &prefix, DownloadKeyId(*id))?;
            let activations = svc::activations(ctx, &prefix, k.record.id)?;
            let mut text = KEY_HEADER.to_owned() + &key_line(&k) + "\n";
            if !activations.is_empty() {
                text.push('\n');
                text.push_str(ACTIVATION_HEADER);
                for a in &activations {
                    text.push_str(&activation_line(a));
                }
            }
            let mut json = view_json(&DownloadKeyView::new(&k));
            json["activation_list"] = json!(
                activations
                    .iter()
                    .map(ActivationView::new)
                    .collect::<Vec<_>>()
            );
            Ok(Output { text, json })
        }
        L::KeyEnable {
            account: a,
            id,
            enabled,
        } => {
            let prefix = account(ctx, a)?;
            let k = svc::set_key_enabled(ctx, &prefix, DownloadKeyId(*id), *enabled)?
                .durable_blocking()?;
            Ok(Output {
                text: format!(
                    "download key {} is {}\n",
                    k.record.id,
                    k.record.status.as_str()
                ),
                json: view_json(&DownloadKeyView::new(&k)),
            })
        }
        L::KeyDelete { account: a, id } => {
            let prefix = account(ctx, a)?;
            let k = svc::delete_key(ctx, &prefix, DownloadKeyId(*id))?.durable_blocking()?;
            Ok(Output {
                text: format!("deleted download key {} and its activations\n", k.id),
                json: json!({ "deleted": k.id.0 }),
            })
        }
        L::ActivationList { account: a, key } => {
            let prefix = account(ctx, a)?;
            let activations = svc::activations(ctx, &prefix, DownloadKeyId(*key))?;
            let mut text = ACTIVATION_HEADER.to_owned();
            for a in &activations {
                text.push_str(&activation_line(a));
            }
            if activations.is_empty() {
                text = "no activations\n".to_owned();
            }
            let rows: Vec<_> = activations.iter().map(ActivationView::new).collect();
            Ok(Output {
                text,
                json: json!({ "activations": rows }),
            })
        }
        L::ActivationDelete { account: a, id } => {
            let prefix = account(ctx, a)?;
            let gone =
                svc::delete_activation(ctx, &prefix, ActivationId(*id))?.durable_blocking()?;
            Ok(Output {
                text: format!(
                    "deleted activation {} of download key {}\n",
                    gone.id, gone.key_id
                ),
                json: json!({ "deleted": gone.id.0, "key_id": gone.key_id.0 }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::AdminCommand;

    #[test]
    fn licensing_commands_travel_over_the_admin_socket() {
        for command in [
            AdminCommand::Licensing(LicensingCommand::KeyGenerate {
                account: "acme".into(),
                customer: 7,
                products: vec!["pro".into(), "all".into()],
                limit: Some(0),
                expires: Some(Duration::from_secs(86_400)),
                key: None,
            }),
            AdminCommand::Licensing(LicensingCommand::ActivationDelete {
                account: "acme".into(),
                id: 9,
            }),
        ] {
            let wire = serde_json::to_string(&command).unwrap();
            let back: AdminCommand = serde_json::from_str(&wire).unwrap();
            assert_eq!(back, command, "{wire}");
        }
    }
}
