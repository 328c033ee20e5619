//! Public licensing (SPEC §9.2): the key holder's own calls, no API token, in three
//! dialects over `service::licensing` (`check`, `activate`, `deactivate`):
//!
//! - **UpdaterCloud** — `GET|POST /api/v1/products/{id}/download-keys/check|activate|deactivate`
//!   and the holder's `…/download-keys/activations` (hosts masked). The one family here
//!   with a `404` (unknown key or product) and a `400` (no key); `408`/`413` for a body
//!   too slow or too large.
//! - **EDD Software Licensing** — `edd_action=activate_license|deactivate_license|check_license`
//!   at `/edd/{prefix}` and `/` (the default account): always `200`, EDD's fields and
//!   JSON types exactly (`success` a boolean, `activations_left` an integer or
//!   `"unlimited"`, `expires` `"Y-m-d H:i:s"` or `"lifetime"`); a body too large or too
//!   slow or unreadable too (`success` false, `error` `payload_too_large`,
//!   `request_timeout` or `invalid_request`).
//! - **Lemon Squeezy** — `POST /ls/{prefix}/v1/licenses/activate|validate|deactivate` and
//!   `/v1/licenses/…` (the default account): form, JSON or JSON:API bodies; the one
//!   dialect with real HTTP statuses (404, 400, 422, 429; 408, 413).
//!
//! Every unknown key counts against the per-address budget `app.public.key_failures`
//! (SPEC §2, §9); past it, every answer is the dialect's `rate_limited` and no key is
//! looked up. Deactivations by the holder are limited per key
//! (`--max-deactivations-per-month`), counted by the store in the deletion's transaction
//! (`holder_deactivations`), so a restart forgets none.
//!
//! One file per dialect (`updatercloud.rs`, `edd.rs`, `lemon_squeezy.rs`); what they
//! share (the caller, the unknown-key budget, the writes, the holder's deactivation
//! budget) is here.

mod edd;
mod lemon_squeezy;
mod updatercloud;

pub(in crate::api::public) use edd::{edd_license, is_edd_license_action};
pub use lemon_squeezy::instance_uuid;
pub(in crate::api::public) use lemon_squeezy::{
    LsAction, lemon_squeezy_default, lemon_squeezy_prefixed, ls_activate_refusal,
    ls_deactivate_refusal, ls_validate_refusal,
};
pub(in crate::api::public) use updatercloud::{
    UcAction, uc_activate_refusal, uc_check_refusal, uc_deactivate_refusal, updatercloud,
    updatercloud_activations,
};

use super::{Pair, edd_item_id, get, header_str, json_no_store, owned, query};
use crate::app::App;
use crate::error::Error;
use crate::http::Body;
use crate::http::route::Call;
use crate::model::{
    AccountPrefix, Activation, ActivationId, DownloadKey, Identity, KeyStatus, ProductId,
    ProductScope, Site, Timestamp, mask_host, normalize_site,
};
use crate::service::licensing::{self as svc, Outcome, Target, ValidationCode as Code};
use crate::service::{Actor, Ctx, Done};
use crate::update::request as wire;
use http::{Response, StatusCode};
use serde_json::{Map, Value, json};
use std::net::IpAddr;

// ----- shared ------------------------------------------------------------------------

/// What the licensing answers need of a request besides its pairs, owned (a request's
/// [`Call`] is not kept across the awaits of a write).
pub(super) struct Who {
    now: Timestamp,
    client: IpAddr,
    /// The site of a WordPress User-Agent, as sent.
    agent_site: Option<String>,
}

impl Who {
    pub(super) fn of(app: &App, call: &Call) -> Who {
        Who {
            now: call.now,
            client: crate::throttle::client_addr(
                call.peer,
                &call.input.parts.headers,
                app.settings.trust_proxy,
            ),
            agent_site: header_str(call, &http::header::USER_AGENT)
                .and_then(crate::model::site_from_user_agent)
                .map(str::to_owned),
        }
    }
}

/// Whether the caller's address has used its budget of unknown keys (nothing is looked
/// up then).
fn throttled(app: &App, who: &Who, key: Option<&str>) -> bool {
    key.is_some_and(|k| !k.trim().is_empty())
        && app.public.key_failures.blocked(who.client, who.now)
}

/// What a licensing request was, for the reports: each request counts once, by its
/// outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// A check or validate: a validation.
    Check,
    /// An activate: an activation, counted here only when the key's check refused it
    /// ([`activate`] counts the ones that reach the service).
    Activate,
    /// A deactivation or the holder's listing: not counted.
    Other,
}

/// Counts the key check that answered `code` (for `product`, when the request named one
/// of the account's products) as `attempt` says, and an unknown key against the
/// caller's address.
fn note_check(
    app: &App,
    who: &Who,
    code: Code,
    product: Option<(AccountPrefix, ProductId)>,
    attempt: Attempt,
) {
    match attempt {
        Attempt::Check => app.public.counts.validation(code, product, who.now),
        Attempt::Activate if code != Code::Valid => {
            app.public.counts.activation(code, product, who.now);
        }
        Attempt::Activate | Attempt::Other => {}
    }
    if code == Code::NotFound {
        let _ = app.public.key_failures.fail(who.client, who.now);
    }
}

/// Runs a licensing write (activate, deactivate) off the runtime, as the public caller
/// (no token: `Actor::Public`, which the audit log names as a key holder).
async fn write<F>(app: &App, now: Timestamp, f: F) -> Result<Outcome, Error>
where
    F: for<'c> FnOnce(&Ctx<'c>) -> Result<Done<'c, Outcome>, Error> + Send + 'static,
{
    crate::service::write(&app.store, &app.events, Actor::Public, None, now, f).await
}

/// Activates `key` for `target` (after a read-only check said the key is valid), under
/// the server's activation rules.
async fn activate(
    app: &App,
    now: Timestamp,
    account: AccountPrefix,
    product: Option<ProductId>,
    key: &str,
    target: Target,
    environment: Option<&str>,
) -> Result<Outcome, Error> {
    let rules = app.settings.activation_rules();
    let key = key.to_owned();
    let environment = environment.map(str::to_owned);
    let outcome = write(app, now, move |ctx| {
        svc::activate(
            ctx,
            &rules,
            &account,
            product,
            Some(&key),
            target,
            None,
            environment.as_deref(),
        )
    })
    .await?;
    // `u64::MAX`: EDD's "none of the account's products" (never activated, but not a
    // product to count for either).
    let counted = product.filter(|p| p.0 != u64::MAX).map(|p| (account, p));
    app.public.counts.activation(outcome.code, counted, now);
    Ok(outcome)
}

/// Deactivates `key` for `target`, within the holder's monthly budget: `rate_limited`
/// (nothing changed) beyond it. The store counts the budget, in the deletion's
/// transaction.
async fn deactivate(
    app: &App,
    now: Timestamp,
    account: AccountPrefix,
    product: Option<ProductId>,
    key: &str,
    target: Target,
) -> Result<Outcome, Error> {
    let limit = app.settings.max_deactivations_per_month;
    let key = key.to_owned();
    write(app, now, move |ctx| {
        svc::deactivate(ctx, &account, product, Some(&key), &target, limit)
    })
    .await
}

/// The request's pairs: the query's, then the body's (form, or a JSON object whose
/// scalar members become strings; JSON:API's `data.attributes` too).
fn pairs_of(call: &Call) -> Vec<Pair<'_>> {
    let mut pairs = query(call);
    let body = &call.input.body;
    if body.iter().all(u8::is_ascii_whitespace) {
        return pairs;
    }
    if crate::http::request::looks_like_json(body) {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            let attributes = map
                .get("data")
                .and_then(|d| d.get("attributes"))
                .and_then(Value::as_object)
                .cloned();
            for (name, value) in map.iter().chain(attributes.iter().flatten()) {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => continue,
                };
                pairs.push((name.clone().into(), text.into()));
            }
        }
    } else if let Ok(text) = std::str::from_utf8(body) {
        pairs.extend(wire::parse_form(text));
    }
    pairs
}

/// A site from `names` (`url`, `domain`…), or else the WordPress User-Agent's when
/// `agent` (EDD: SPEC §9.2), normalized; `Err` when one was sent but is no host.
fn site_in(
    who: &Who,
    pairs: &[Pair<'_>],
    names: &[&str],
    agent: bool,
) -> Result<Option<Site>, String> {
    let sent = names.iter().find_map(|n| get(pairs, n));
    let sent = sent.or(who.agent_site.as_deref().filter(|_| agent));
    match sent {
        None => Ok(None),
        Some(text) => normalize_site(text)
            .map(Some)
            .map_err(|e| e.reason().to_owned()),
    }
}

fn customer_of(
    app: &App,
    now: Timestamp,
    account: &AccountPrefix,
    key: &DownloadKey,
) -> (String, String) {
    svc::customer(&app.public_ctx(now), account, key.customer_id)
        .map(|c| (c.name, c.email))
        .unwrap_or_default()
}

/// The key's single product (its name too), when it covers exactly one.
fn single_product(
    app: &App,
    account: &AccountPrefix,
    key: &DownloadKey,
) -> Option<(ProductId, String)> {
    match &key.products {
        ProductScope::Only(ids) if ids.len() == 1 => {
            let product = app.store.product(account, ids[0]).ok().flatten()?;
            Some((ids[0], product.name))
        }
        _ => None,
    }
}
