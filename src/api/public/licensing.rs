//! Public licensing (SPEC §9.2): the key holder's own calls, no API token, in three
//! dialects over `service::licensing` (`check`, `activate`, `deactivate`):
//!
//! - **UpdaterCloud** — `GET|POST /api/v1/products/{id}/download-keys/check|activate|deactivate`
//!   and the holder's `…/download-keys/activations` (hosts masked). The one family here
//!   with a `404` (unknown key or product) and a `400` (no key).
//! - **EDD Software Licensing** — `edd_action=activate_license|deactivate_license|check_license`
//!   at `/edd/{prefix}` and `/` (the default account): always `200`, EDD's fields and
//!   JSON types exactly (`success` a boolean, `activations_left` an integer or
//!   `"unlimited"`, `expires` `"Y-m-d H:i:s"` or `"lifetime"`).
//! - **Lemon Squeezy** — `POST /ls/{prefix}/v1/licenses/activate|validate|deactivate` and
//!   `/v1/licenses/…` (the default account): form, JSON or JSON:API bodies; the one
//!   dialect with real HTTP statuses (404, 400, 422, 429).
//!
//! Every unknown key counts against the per-address budget `app.public.key_failures`
//! (SPEC §2, §9); past it, every answer is the dialect's `rate_limited` and no key is
//! looked up. Deactivations by the holder are limited per key
//! (`--max-deactivations-per-month`), counted in memory here ([`Deactivations`]): the
//! licensing service has no such counter, so a restart forgets them.

use super::{get, header_str, json_no_store, query};
use crate::app::App;
use crate::error::Error;
use crate::http::Body;
use crate::http::route::Call;
use crate::model::{
    AccountPrefix, Activation, ActivationId, DownloadKey, DownloadKeyId, Identity, KeyStatus,
    ProductId, ProductScope, Site, Timestamp, mask_host, normalize_site,
};
use crate::service::licensing::{self as svc, Outcome, Target, ValidationCode as Code};
use crate::service::{Actor, Ctx, Done};
use crate::update::request as wire;
use http::{Response, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The window `--max-deactivations-per-month` counts in.
const MONTH_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Deactivations made by key holders, per key, within the last 30 days: kept in memory
/// (the licensing service keeps no such counter; a restart forgets them).
#[derive(Debug, Default)]
pub struct Deactivations {
    made: Mutex<HashMap<(AccountPrefix, DownloadKeyId), Vec<Timestamp>>>,
}

impl Deactivations {
    /// Whether `key` may be deactivated once more at `now` (`limit` 0: always).
    fn allowed(
        &self,
        account: &AccountPrefix,
        key: DownloadKeyId,
        limit: u32,
        now: Timestamp,
    ) -> bool {
        if limit == 0 {
            return true;
        }
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let from = now.as_millis().saturating_sub(MONTH_MS);
        let entry = made.entry((*account, key)).or_default();
        entry.retain(|at| at.as_millis() > from);
        entry.len() < limit as usize
    }

    /// Notes a deactivation of `key` at `now`.
    fn note(&self, account: &AccountPrefix, key: DownloadKeyId, now: Timestamp) {
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let from = now.as_millis().saturating_sub(MONTH_MS);
        // Keys nobody deactivated for a month are forgotten (bounded memory).
        if made.len() > 10_000 {
            made.retain(|_, times| times.iter().any(|at| at.as_millis() > from));
        }
        made.entry((*account, key)).or_default().push(now);
    }
}

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
            agent_site: header_str(call, "user-agent")
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

/// Counts a validation that answered `code` (for `product`, when the request named one
/// of the account's products), and an unknown key against the caller's address.
fn note_unknown(app: &App, who: &Who, code: Code, product: Option<(AccountPrefix, ProductId)>) {
    app.public.counts.validation(code, product, who.now);
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
/// (nothing changed) beyond it.
async fn deactivate(
    app: &App,
    now: Timestamp,
    account: AccountPrefix,
    product: Option<ProductId>,
    record: &DownloadKey,
    key: &str,
    target: Target,
) -> Result<Outcome, Error> {
    let limit = app.settings.max_deactivations_per_month;
    let budget = &app.public.deactivations;
    if !budget.allowed(&account, record.id, limit, now) {
        return Ok(Outcome {
            code: Code::RateLimited,
            key: Some(record.clone()),
            activation: None,
        });
    }
    let key = key.to_owned();
    let outcome = write(app, now, move |ctx| {
        svc::deactivate(ctx, &account, product, Some(&key), &target)
    })
    .await?;
    if outcome.valid()
        && let Some(k) = &outcome.key
    {
        budget.note(&account, k.id, now);
    }
    Ok(outcome)
}

/// The request's pairs: the query's, then the body's (form, or a JSON object whose
/// scalar members become strings; JSON:API's `data.attributes` too).
fn pairs_of(call: &Call) -> Vec<(String, String)> {
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
                pairs.push((name.clone(), text));
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
    pairs: &[(String, String)],
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

// ----- UpdaterCloud ------------------------------------------------------------------

/// The operation an UpdaterCloud row names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum UcAction {
    Check,
    Activate,
    Deactivate,
}

fn uc_message(code: Code) -> &'static str {
    match code {
        Code::Valid => "Download key is valid.",
        Code::NotFound => "Download key not found.",
        Code::Disabled => "Download key is disabled.",
        Code::Expired => "Download key has expired.",
        Code::ProductMismatch => "Download key is not valid for this product.",
        Code::SiteInactive => "Download key is not activated for this site.",
        Code::ActivationLimitReached => "Download key has reached its activation limit.",
        Code::AccountLimitReached => "The vendor's activation limit has been reached.",
        Code::RateLimited => "Too many requests; try again later.",
        Code::MissingKey => "download_key is required.",
    }
}

fn uc_key(key: &DownloadKey) -> Value {
    json!({
        "status": key.status.as_str(),
        "expires_at": key.expires_at.map(Timestamp::to_rfc3339),
        "activations": {"limit": key.activation_limit, "usage": key.counted},
    })
}

fn uc_activation(account: &AccountPrefix, a: &Activation, masked: bool) -> Value {
    let mut view = json!({
        "id": a.id.0,
        "counts": a.counts,
        "label": a.label,
        "created_at": a.created_at.to_rfc3339(),
        "last_seen_at": a.last_seen_at.map(Timestamp::to_rfc3339),
    });
    let (name, value) = match &a.identity {
        Identity::Site(site) if masked => ("domain", mask_host(site)),
        Identity::Site(site) => ("domain", site.as_str().to_owned()),
        Identity::Machine(m) if masked => ("machine", mask_machine(m)),
        Identity::Machine(m) => ("machine", m.clone()),
        Identity::Instance => ("instance", instance_uuid(account, a.id)),
    };
    view[name] = Value::String(value);
    view
}

/// A machine fingerprint as the holder's list shows it: its first four characters.
fn mask_machine(machine: &str) -> String {
    let kept: String = machine.chars().take(4).collect();
    format!(
        "{kept}{}",
        "*".repeat(machine.chars().count().saturating_sub(4).min(12))
    )
}

fn uc_reply(status: StatusCode, body: Value) -> Result<Response<Body>, Error> {
    Ok(json_no_store(status, &body))
}

/// `…/download-keys/check|activate|deactivate`.
pub(super) async fn updatercloud(
    app: &App,
    call: Call,
    action: UcAction,
) -> Result<Response<Body>, Error> {
    let pairs = pairs_of(&call);
    let who = Who::of(app, &call);
    let uc = uc_product(app, &call)?;
    drop(call);
    let key = get(&pairs, "download_key").or_else(|| get(&pairs, "license_key"));
    let bare = |status: StatusCode, code: Code| {
        let mut body = json!({"valid": false, "code": code.as_str(), "message": uc_message(code)});
        match action {
            UcAction::Activate => body["activated"] = Value::Bool(false),
            UcAction::Deactivate => body["deactivated"] = Value::Bool(false),
            UcAction::Check => {}
        }
        uc_reply(status, body)
    };
    let Some(product) = uc else {
        return uc_reply(
            StatusCode::NOT_FOUND,
            json!({"valid": false, "code": "not_found", "message": "No such product."}),
        );
    };
    let (account, product_id) = product;
    let Some(key) = key else {
        return bare(StatusCode::BAD_REQUEST, Code::MissingKey);
    };
    if throttled(app, &who, Some(key)) {
        return bare(StatusCode::OK, Code::RateLimited);
    }
    let site = match site_in(&who, &pairs, &["domain", "url", "site"], false) {
        Ok(site) => site,
        Err(why) => {
            return uc_reply(
                StatusCode::BAD_REQUEST,
                json!({"valid": false, "code": "invalid_request", "message": format!("domain: {why}")}),
            );
        }
    };
    let machine = get(&pairs, "machine")
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let target = match (site, machine) {
        (Some(site), _) => Some(Target::Site(site)),
        (None, Some(m)) => match crate::model::licensing::check_machine(m) {
            Ok(m) => Some(Target::Machine(m)),
            Err(why) => {
                return uc_reply(
                    StatusCode::BAD_REQUEST,
                    json!({"valid": false, "code": "invalid_request", "message": format!("machine: {why}")}),
                );
            }
        },
        (None, None) => None,
    };
    let checked = svc::check(
        &app.store,
        &account,
        Some(product_id),
        Some(key),
        if action == UcAction::Check {
            target.as_ref()
        } else {
            None
        },
        who.now,
    )?;
    note_unknown(app, &who, checked.code, Some((account, product_id)));
    let Some(record) = checked.key.clone() else {
        let status = match checked.code {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MissingKey => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        return bare(status, checked.code);
    };
    let outcome = match action {
        UcAction::Check => checked,
        UcAction::Activate | UcAction::Deactivate => {
            let target = match target {
                Some(t) => t,
                None if action == UcAction::Deactivate => {
                    match activation_target(app, &account, &record, get(&pairs, "activation_id"))? {
                        Some(t) => t,
                        None => return uc_missing_target(action),
                    }
                }
                None => return uc_missing_target(action),
            };
            if action == UcAction::Activate {
                if checked.code == Code::Valid {
                    activate(
                        app,
                        who.now,
                        account,
                        Some(product_id),
                        key,
                        target,
                        get(&pairs, "environment"),
                    )
                    .await?
                } else {
                    checked
                }
            } else {
                deactivate(
                    app,
                    who.now,
                    account,
                    Some(product_id),
                    &record,
                    key,
                    target,
                )
                .await?
            }
        }
    };
    let code = outcome.code;
    let shown = outcome.key.as_ref().unwrap_or(&record);
    let mut body = json!({
        "valid": code == Code::Valid,
        "message": uc_message(code),
        "code": code.as_str(),
        "download_key": uc_key(shown),
    });
    match action {
        UcAction::Check => {}
        UcAction::Activate => {
            body["activated"] = Value::Bool(code == Code::Valid);
            body["activation"] = match (&outcome.activation, code) {
                (Some(a), Code::Valid) => uc_activation(&account, a, false),
                _ => Value::Null,
            };
            if code == Code::Valid {
                body["message"] = Value::String("Download key is activated.".into());
            }
        }
        UcAction::Deactivate => {
            body["deactivated"] = Value::Bool(code == Code::Valid);
            if code == Code::Valid {
                body["message"] = Value::String("Download key is deactivated.".into());
            }
        }
    }
    uc_reply(StatusCode::OK, body)
}

fn uc_missing_target(action: UcAction) -> Result<Response<Body>, Error> {
    let mut body = json!({
        "valid": false,
        "code": "invalid_request",
        "message": if action == UcAction::Deactivate {
            "domain, machine or activation_id is required."
        } else {
            "domain or machine is required."
        },
    });
    body[if action == UcAction::Deactivate {
        "deactivated"
    } else {
        "activated"
    }] = Value::Bool(false);
    uc_reply(StatusCode::BAD_REQUEST, body)
}

/// The target of the holder's activation `id` (from their list), if it is one of the
/// key's.
fn activation_target(
    app: &App,
    account: &AccountPrefix,
    key: &DownloadKey,
    id: Option<&str>,
) -> Result<Option<Target>, Error> {
    let Some(id) = id.and_then(|i| i.trim().parse::<u64>().ok()) else {
        return Ok(None);
    };
    let found = app
        .store
        .activations(account, key.id)?
        .into_iter()
        .find(|a| a.id.0 == id);
    Ok(found.map(|a| match a.identity {
        Identity::Site(site) => Target::Site(site),
        Identity::Machine(m) => Target::Machine(m),
        Identity::Instance => Target::Instance(a.id),
    }))
}

/// The product of the path and its account; `None`: no such product.
fn uc_product(app: &App, call: &Call) -> Result<Option<(AccountPrefix, ProductId)>, Error> {
    let Ok(id) = call.param("id").parse::<u64>() else {
        return Ok(None);
    };
    let id = ProductId(id);
    Ok(app.store.product_account(id)?.map(|account| (account, id)))
}

/// `GET /api/v1/products/{id}/download-keys/activations?download_key=K`: the key's
/// activations as its holder sees them (hosts masked, last-seen dates).
pub(super) fn updatercloud_activations(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let pairs = query(call);
    let Some((account, product)) = uc_product(app, call)? else {
        return uc_reply(
            StatusCode::NOT_FOUND,
            json!({"valid": false, "code": "not_found", "message": "No such product."}),
        );
    };
    let key = get(&pairs, "download_key").or_else(|| get(&pairs, "license_key"));
    let bare = |status: StatusCode, code: Code| {
        uc_reply(
            status,
            json!({"valid": false, "code": code.as_str(), "message": uc_message(code)}),
        )
    };
    let Some(key) = key else {
        return bare(StatusCode::BAD_REQUEST, Code::MissingKey);
    };
    if throttled(app, &Who::of(app, call), Some(key)) {
        return bare(StatusCode::OK, Code::RateLimited);
    }
    let checked = svc::check(
        &app.store,
        &account,
        Some(product),
        Some(key),
        None,
        call.now,
    )?;
    note_unknown(
        app,
        &Who::of(app, call),
        checked.code,
        Some((account, product)),
    );
    let Some(record) = checked.key else {
        return bare(
            if checked.code == Code::NotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            },
            checked.code,
        );
    };
    let code = checked.code;
    let mut body = json!({
        "valid": code == Code::Valid,
        "message": uc_message(code),
        "code": code.as_str(),
        "download_key": uc_key(&record),
    });
    // The holder sees their slots unless the key is for another product.
    if code != Code::ProductMismatch {
        let list = svc::activations(&app.public_ctx(call.now), &account, record.id)?;
        let used = app.public.deactivations.used(&account, record.id, call.now);
        let limit = app.settings.max_deactivations_per_month;
        body["activations"] = list
            .iter()
            .map(|a| uc_activation(&account, a, true))
            .collect();
        body["deactivations"] = json!({
            "limit": limit,
            "remaining": if limit == 0 { Value::Null } else { json!(limit.saturating_sub(used)) },
        });
    }
    uc_reply(StatusCode::OK, body)
}

impl Deactivations {
    /// How many deactivations of `key` are counted in the window ending at `now`.
    fn used(&self, account: &AccountPrefix, key: DownloadKeyId, now: Timestamp) -> u32 {
        let made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let from = now.as_millis().saturating_sub(MONTH_MS);
        made.get(&(*account, key)).map_or(0, |t| {
            t.iter().filter(|at| at.as_millis() > from).count() as u32
        })
    }
}

// ----- EDD Software Licensing ----------------------------------------------------------

/// Whether `action` is one of EDD's licensing actions (served here, not by `get_version`).
pub(super) fn is_edd_license_action(action: &str) -> bool {
    matches!(
        action,
        "activate_license" | "deactivate_license" | "check_license"
    )
}

/// The product an EDD request names: by `item_id` (wins) or `item_name` (slugified);
/// `matched_by_name` for the refusal's word.
struct EddItem {
    /// `Some(None)`: an item was named but is none of the account's products.
    product: Option<Option<(ProductId, String)>>,
    by_name: bool,
    item_id: Value,
    item_name: Value,
}

fn edd_item(
    app: &App,
    account: &AccountPrefix,
    pairs: &[(String, String)],
) -> Result<EddItem, Error> {
    let sent_name = get(pairs, "item_name").or_else(|| get(pairs, "name"));
    let item_name = sent_name.map_or(Value::Bool(false), |n| Value::String(n.to_owned()));
    if let Some(id) = get(pairs, "item_id") {
        let parsed = id.trim().parse::<u64>().ok();
        let product = match parsed {
            Some(id) => app
                .store
                .product(account, ProductId(id))?
                .map(|p| (p.id, p.name)),
            None => None,
        };
        let item_id = parsed.map_or_else(|| Value::String(id.to_owned()), |i| json!(i));
        let item_name = product
            .as_ref()
            .map_or(item_name, |(_, name)| Value::String(name.clone()));
        return Ok(EddItem {
            product: Some(product),
            by_name: false,
            item_id,
            item_name,
        });
    }
    if let Some(name) = sent_name {
        let wanted = wire::slugify(name);
        let product = app
            .store
            .products(account)?
            .into_iter()
            .find(|p| crate::model::catalog::slugify(&p.name) == wanted)
            .map(|p| (p.id, p.name));
        let item_id = product
            .as_ref()
            .map_or(Value::Bool(false), |(id, _)| json!(id.0));
        return Ok(EddItem {
            product: Some(product),
            by_name: true,
            item_id,
            item_name,
        });
    }
    Ok(EddItem {
        product: None,
        by_name: false,
        item_id: Value::Bool(false),
        item_name,
    })
}

/// EDD's `license` word for a check's code (SPEC §9 table).
fn edd_license_word(code: Code, by_name: bool) -> &'static str {
    match code {
        Code::Valid => "valid",
        Code::Disabled => "disabled",
        Code::Expired => "expired",
        Code::ProductMismatch if by_name => "item_name_mismatch",
        Code::ProductMismatch => "invalid_item_id",
        Code::SiteInactive => "site_inactive",
        Code::NotFound
        | Code::RateLimited
        | Code::MissingKey
        | Code::ActivationLimitReached
        | Code::AccountLimitReached => "invalid",
    }
}

/// EDD's `error` on a refused activation.
fn edd_error_word(code: Code, by_name: bool) -> &'static str {
    match code {
        Code::NotFound | Code::MissingKey => "missing",
        Code::Disabled => "disabled",
        Code::Expired => "expired",
        Code::ProductMismatch if by_name => "item_name_mismatch",
        Code::ProductMismatch => "invalid_item_id",
        Code::ActivationLimitReached | Code::AccountLimitReached => "no_activations_left",
        Code::RateLimited => "rate_limited",
        Code::SiteInactive => "site_inactive",
        Code::Valid => "",
    }
}

/// EDD's `checksum`: 32 hex digits, stable for the same answer, revealing nothing.
fn edd_checksum(parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"upkeep edd checksum");
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_hex()[..32].to_owned()
}

/// The answer to an EDD licensing action for `account` (`None`: no such account or no
/// default account). Always a JSON object for a `200`.
pub(super) async fn edd_license(
    app: &App,
    who: Who,
    account: Option<AccountPrefix>,
    pairs: &[(String, String)],
) -> Result<Value, Error> {
    let action = get(pairs, "edd_action").unwrap_or("");
    let key = get(pairs, "license")
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let item = match &account {
        Some(account) => edd_item(app, account, pairs)?,
        None => EddItem {
            product: None,
            by_name: false,
            item_id: get(pairs, "item_id").map_or(Value::Bool(false), |i| {
                i.trim()
                    .parse::<u64>()
                    .map_or_else(|_| Value::String(i.to_owned()), |n| json!(n))
            }),
            item_name: get(pairs, "item_name")
                .map_or(Value::Bool(false), |n| Value::String(n.to_owned())),
        },
    };
    let bare = |code: Code| {
        let mut body = Map::new();
        body.insert("item_id".into(), item.item_id.clone());
        body.insert("item_name".into(), item.item_name.clone());
        body.insert(
            "checksum".into(),
            Value::String(edd_checksum(&[action, code.as_str()])),
        );
        body.insert("success".into(), Value::Bool(false));
        let word = if action == "deactivate_license" {
            "failed"
        } else {
            "invalid"
        };
        body.insert("license".into(), Value::String(word.into()));
        if action != "check_license" {
            body.insert(
                "error".into(),
                Value::String(edd_error_word(code, false).into()),
            );
        }
        Value::Object(body)
    };
    let Some(account) = account else {
        return Ok(bare(Code::NotFound));
    };
    let Some(key) = key else {
        return Ok(bare(Code::MissingKey));
    };
    if throttled(app, &who, Some(key)) {
        return Ok(bare(Code::RateLimited));
    }
    let site = site_in(&who, pairs, &["url"], true).ok().flatten();
    let target = site.clone().map(Target::Site);
    let product = match &item.product {
        Some(Some((id, _))) => Some(*id),
        // An item that is none of the account's products: no key covers it (unless "all"
        // keys, which cover only the account's own products).
        Some(None) => Some(ProductId(u64::MAX)),
        None => None,
    };
    let mut checked = svc::check(
        &app.store,
        &account,
        product,
        Some(key),
        if action == "check_license" {
            target.as_ref()
        } else {
            None
        },
        who.now,
    )?;
    let named = match &item.product {
        Some(Some((id, _))) => Some((account, *id)),
        _ => None,
    };
    note_unknown(app, &who, checked.code, named);
    // An `all` key covers every product of the account, but not an item that is none.
    if matches!(item.product, Some(None))
        && matches!(checked.code, Code::Valid | Code::SiteInactive)
    {
        checked.code = Code::ProductMismatch;
        checked.activation = None;
    }
    let Some(record) = checked.key.clone() else {
        return Ok(bare(checked.code));
    };
    let outcome = match (action, &target) {
        ("activate_license", Some(target)) if checked.code == Code::Valid => {
            activate(
                app,
                who.now,
                account,
                product,
                key,
                target.clone(),
                get(pairs, "environment"),
            )
            .await?
        }
        ("deactivate_license", Some(target)) if checked.code != Code::ProductMismatch => {
            deactivate(app, who.now, account, product, &record, key, target.clone()).await?
        }
        ("activate_license" | "deactivate_license", None) => Outcome {
            code: Code::SiteInactive,
            key: Some(record.clone()),
            activation: None,
        },
        _ => checked,
    };
    let code = outcome.code;
    let shown = outcome.key.as_ref().unwrap_or(&record);
    let (customer_name, customer_email) = customer_of(app, who.now, &account, shown);
    let limit = shown.activation_limit;
    let mut body = Map::new();
    body.insert("item_id".into(), item.item_id.clone());
    body.insert("item_name".into(), item.item_name.clone());
    let site_text = site.as_ref().map_or("", Site::as_str);
    body.insert(
        "checksum".into(),
        Value::String(edd_checksum(&[
            action,
            &shown.id.0.to_string(),
            site_text,
            code.as_str(),
        ])),
    );
    let ok = code == Code::Valid;
    match action {
        "deactivate_license" => {
            body.insert("success".into(), Value::Bool(ok));
            body.insert(
                "license".into(),
                Value::String(if ok { "deactivated" } else { "failed" }.into()),
            );
            body.insert(
                "expires".into(),
                shown
                    .expires_at
                    .map_or(Value::String("lifetime".into()), |at| json!(at.as_secs())),
            );
        }
        "activate_license" => {
            body.insert("success".into(), Value::Bool(ok));
            body.insert(
                "license".into(),
                Value::String(if ok { "valid" } else { "invalid" }.into()),
            );
            if !ok {
                body.insert(
                    "error".into(),
                    Value::String(edd_error_word(code, item.by_name).into()),
                );
                if matches!(
                    code,
                    Code::ActivationLimitReached | Code::AccountLimitReached
                ) {
                    body.insert("max_sites".into(), json!(limit));
                }
            }
            edd_counts(&mut body, shown, site.as_ref(), app);
        }
        _ => {
            let word = edd_license_word(code, item.by_name);
            body.insert("success".into(), Value::Bool(word != "invalid"));
            body.insert("license".into(), Value::String(word.into()));
            edd_counts(&mut body, shown, site.as_ref(), app);
        }
    }
    body.insert("payment_id".into(), json!(0));
    body.insert("customer_name".into(), Value::String(customer_name));
    body.insert("customer_email".into(), Value::String(customer_email));
    body.insert("price_id".into(), Value::Bool(false));
    body.insert("license_limit".into(), json!(limit));
    Ok(Value::Object(body))
}

/// `site_count`, `activations_left`, `expires`, `is_local`.
fn edd_counts(body: &mut Map<String, Value>, key: &DownloadKey, site: Option<&Site>, app: &App) {
    body.insert("site_count".into(), json!(key.counted));
    body.insert(
        "activations_left".into(),
        if key.activation_limit == 0 {
            Value::String("unlimited".into())
        } else {
            json!(key.activation_limit.saturating_sub(key.counted))
        },
    );
    body.insert(
        "expires".into(),
        key.expires_at
            .map_or(Value::String("lifetime".into()), |at| {
                Value::String(crate::update::answer::wp_datetime(at))
            }),
    );
    if let Some(site) = site {
        body.insert(
            "is_local".into(),
            Value::Bool(app.settings.dev_site_patterns.is_dev(site)),
        );
    }
}

// ----- Lemon Squeezy -------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LsAction {
    Activate,
    Validate,
    Deactivate,
}

impl LsAction {
    fn flag(self) -> &'static str {
        match self {
            LsAction::Activate => "activated",
            LsAction::Validate => "valid",
            LsAction::Deactivate => "deactivated",
        }
    }
}

/// ISO 8601 in UTC with microseconds, as Lemon Squeezy writes times.
fn ls_time(at: Timestamp) -> String {
    let seconds = at.to_rfc3339();
    let micros = (at.as_millis() % 1000) * 1000;
    format!("{}.{micros:06}Z", seconds.trim_end_matches('Z'))
}

/// A stable integer per account (Lemon Squeezy's `store_id`).
fn store_id(account: &AccountPrefix) -> u64 {
    let hash = blake3::hash(format!("upkeep ls store {}", account.as_str()).as_bytes());
    let bytes: [u8; 4] = hash.as_bytes()[..4].try_into().unwrap_or([0; 4]);
    u64::from(u32::from_be_bytes(bytes) & 0x7fff_ffff) + 1
}

/// The activation `id` as a UUID (version 4, variant 1 in form): 60 bits of the id in
/// its last 15 hex digits, the rest a hash of the account and the id, so it is stable
/// and `instance_id` finds the activation again. Lemon Squeezy's `instance.id`.
pub fn instance_uuid(account: &AccountPrefix, id: ActivationId) -> String {
    let hash = blake3::hash(format!("upkeep ls instance {} {}", account.as_str(), id.0).as_bytes());
    let h = hash.to_hex();
    let idhex = format!("{:015x}", id.0 & 0x0fff_ffff_ffff_ffff);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..15],
        &idhex[..3],
        &idhex[3..]
    )
}

/// The activation id of an instance UUID made by [`instance_uuid`] for `account`.
fn instance_id(account: &AccountPrefix, text: &str) -> Option<ActivationId> {
    let text = text.trim().to_ascii_lowercase();
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = u64::from_str_radix(&hex[17..], 16).ok()?;
    let id = ActivationId(id);
    (instance_uuid(account, id) == text).then_some(id)
}

fn ls_message(code: Code) -> &'static str {
    match code {
        Code::NotFound => "license_key not found.",
        Code::Disabled => "This license key is disabled.",
        Code::Expired => "This license key is expired.",
        Code::ActivationLimitReached | Code::AccountLimitReached => {
            "This license key has reached the activation limit."
        }
        Code::RateLimited => "Too many requests.",
        Code::MissingKey => "license_key field is required.",
        Code::SiteInactive => "instance_id not found.",
        Code::ProductMismatch => "This license key is not valid for this product.",
        Code::Valid => "",
    }
}

fn ls_status(code: Code) -> StatusCode {
    match code {
        Code::Valid => StatusCode::OK,
        Code::NotFound | Code::SiteInactive => StatusCode::NOT_FOUND,
        Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Code::MissingKey => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn ls_bare(action: LsAction, status: StatusCode, error: &str) -> Response<Body> {
    let mut body = Map::new();
    body.insert(action.flag().into(), Value::Bool(false));
    body.insert("error".into(), Value::String(error.into()));
    body.insert("license_key".into(), Value::Null);
    if action != LsAction::Deactivate {
        body.insert("instance".into(), Value::Null);
    }
    body.insert("meta".into(), Value::Null);
    json_no_store(status, &Value::Object(body))
}

/// `POST /ls/{prefix}/v1/licenses/{action}`.
pub(super) async fn lemon_squeezy_prefixed(
    app: &App,
    call: Call,
    action: LsAction,
) -> Result<Response<Body>, Error> {
    let account = AccountPrefix::parse(&call.param("prefix"))
        .ok()
        .filter(|prefix| app.store.plan_limit(prefix, call.now).is_some());
    let (pairs, who) = (pairs_of(&call), Who::of(app, &call));
    drop(call);
    lemon_squeezy(app, who, pairs, account, action).await
}

/// `POST /v1/licenses/{action}`: the default account's.
pub(super) async fn lemon_squeezy_default(
    app: &App,
    call: Call,
    action: LsAction,
) -> Result<Response<Body>, Error> {
    let account = app.store.default_account()?;
    let (pairs, who) = (pairs_of(&call), Who::of(app, &call));
    drop(call);
    lemon_squeezy(app, who, pairs, account, action).await
}

async fn lemon_squeezy(
    app: &App,
    who: Who,
    pairs: Vec<(String, String)>,
    account: Option<AccountPrefix>,
    action: LsAction,
) -> Result<Response<Body>, Error> {
    let Some(key) = get(&pairs, "license_key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        return Ok(ls_bare(
            action,
            ls_status(Code::MissingKey),
            ls_message(Code::MissingKey),
        ));
    };
    let instance_name = get(&pairs, "instance_name")
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let instance_sent = get(&pairs, "instance_id")
        .map(str::trim)
        .filter(|n| !n.is_empty());
    match action {
        LsAction::Activate if instance_name.is_none() => {
            return Ok(ls_bare(
                action,
                StatusCode::UNPROCESSABLE_ENTITY,
                "instance_name field is required.",
            ));
        }
        LsAction::Deactivate if instance_sent.is_none() => {
            return Ok(ls_bare(
                action,
                StatusCode::UNPROCESSABLE_ENTITY,
                "instance_id field is required.",
            ));
        }
        _ => {}
    }
    if throttled(app, &who, Some(key)) {
        return Ok(ls_bare(
            action,
            ls_status(Code::RateLimited),
            ls_message(Code::RateLimited),
        ));
    }
    let Some(account) = account else {
        return Ok(ls_bare(
            action,
            ls_status(Code::NotFound),
            ls_message(Code::NotFound),
        ));
    };
    // An instance id that is none of ours names no activation: `Instance(0)` matches none.
    let instance = instance_sent
        .map(|text| Target::Instance(instance_id(&account, text).unwrap_or(ActivationId(0))));
    let checked = svc::check(
        &app.store,
        &account,
        None,
        Some(key),
        if action == LsAction::Validate {
            instance.as_ref()
        } else {
            None
        },
        who.now,
    )?;
    // Lemon Squeezy names no product: counted in the totals only.
    note_unknown(app, &who, checked.code, None);
    let Some(record) = checked.key.clone() else {
        return Ok(ls_bare(
            action,
            ls_status(checked.code),
            ls_message(checked.code),
        ));
    };
    let outcome = match action {
        LsAction::Activate if checked.code == Code::Valid => {
            let name = instance_name.unwrap_or_default().to_owned();
            activate(
                app,
                who.now,
                account,
                None,
                key,
                Target::NewInstance(name),
                None,
            )
            .await?
        }
        LsAction::Deactivate => {
            let target = instance.unwrap_or(Target::Instance(ActivationId(0)));
            deactivate(app, who.now, account, None, &record, key, target).await?
        }
        _ => checked,
    };
    let code = outcome.code;
    let shown = outcome.key.clone().unwrap_or(record);
    // What the table says for each code: validate answers 200 for a key's own state
    // (disabled: no error; expired: its message); everything else by `ls_status`.
    let (status, error) = match (action, code) {
        (_, Code::Valid) => (StatusCode::OK, Value::Null),
        (LsAction::Validate, Code::Disabled) => (StatusCode::OK, Value::Null),
        (LsAction::Validate, Code::Expired) => {
            (StatusCode::OK, Value::String(ls_message(code).into()))
        }
        _ => (ls_status(code), Value::String(ls_message(code).into())),
    };
    if status != StatusCode::OK && matches!(code, Code::SiteInactive | Code::RateLimited) {
        return Ok(ls_bare(action, status, ls_message(code)));
    }
    let activations = app.store.activations(&account, shown.id)?;
    let status_word = if shown.status == KeyStatus::Disabled {
        "disabled"
    } else if shown.expired(who.now) {
        "expired"
    } else if activations.is_empty() {
        "inactive"
    } else {
        "active"
    };
    let value = svc::key_value(&app.store, &shown).unwrap_or_else(|_| key.to_owned());
    let (customer_name, customer_email) = customer_of(app, who.now, &account, &shown);
    let product = single_product(app, &account, &shown);
    let mut body = Map::new();
    body.insert(action.flag().into(), Value::Bool(code == Code::Valid));
    body.insert("error".into(), error);
    body.insert(
        "license_key".into(),
        json!({
            "id": shown.id.0,
            "status": status_word,
            "key": value,
            "activation_limit": shown.activation_limit,
            "activation_usage": shown.counted,
            "created_at": ls_time(shown.created_at),
            "expires_at": shown.expires_at.map(ls_time),
            "test_mode": false,
        }),
    );
    if action != LsAction::Deactivate {
        let instance = match (&outcome.activation, code) {
            (Some(a), Code::Valid) => json!({
                "id": instance_uuid(&account, a.id),
                "name": a.label.clone().unwrap_or_default(),
                "created_at": ls_time(a.created_at),
            }),
            _ => Value::Null,
        };
        body.insert("instance".into(), instance);
    }
    body.insert(
        "meta".into(),
        json!({
            "store_id": store_id(&account),
            "order_id": 0,
            "order_item_id": 0,
            "product_id": product.as_ref().map(|(id, _)| id.0),
            "product_name": product.map(|(_, name)| name),
            "variant_id": 0,
            "variant_name": "Default",
            "customer_id": shown.customer_id.0,
            "customer_name": customer_name,
            "customer_email": customer_email,
        }),
    );
    Ok(json_no_store(status, &Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_uuids_found_again_only_in_their_account() {
        let acme = AccountPrefix::parse("acme").unwrap();
        let other = AccountPrefix::parse("other").unwrap();
        for id in [1, 42, 1 << 40] {
            let uuid = instance_uuid(&acme, ActivationId(id));
            assert_eq!(uuid.len(), 36, "{uuid}");
            assert_eq!(&uuid[14..15], "4", "{uuid}");
            assert_eq!(&uuid[19..20], "8", "{uuid}");
            assert_eq!(instance_id(&acme, &uuid), Some(ActivationId(id)));
            assert_eq!(
                instance_id(&acme, &uuid.to_uppercase()),
                Some(ActivationId(id))
            );
            assert_eq!(instance_id(&other, &uuid), None);
        }
        assert_eq!(instance_id(&acme, "not-a-uuid"), None);
    }

    #[test]
    fn times_have_microseconds_and_store_ids_are_stable() {
        let at = Timestamp::from_millis(1_611_497_707_123);
        assert_eq!(ls_time(at), "2021-01-24T14:15:07.123000Z");
        let acme = AccountPrefix::parse("acme").unwrap();
        assert_eq!(store_id(&acme), store_id(&acme));
        assert!(store_id(&acme) > 0);
    }

    #[test]
    fn deactivations_are_limited_per_key_in_a_month() {
        let budget = Deactivations::default();
        let acme = AccountPrefix::parse("acme").unwrap();
        let now = Timestamp::from_secs(1_800_000_000);
        for _ in 0..2 {
            assert!(budget.allowed(&acme, DownloadKeyId(1), 2, now));
            budget.note(&acme, DownloadKeyId(1), now);
        }
        assert!(!budget.allowed(&acme, DownloadKeyId(1), 2, now));
        assert!(budget.allowed(&acme, DownloadKeyId(2), 2, now));
        let later = Timestamp::from_millis(now.as_millis() + MONTH_MS + 1);
        assert!(budget.allowed(&acme, DownloadKeyId(1), 2, later));
    }
}
