//! EDD Software Licensing's `activate_license`, `deactivate_license` and `check_license`
//! (SPEC §9.2), at `/edd/{prefix}` and `/` (the default account): always `200`, EDD's
//! fields and JSON types exactly.

use super::*;

/// Whether `action` is one of EDD's licensing actions (served here, not by `get_version`).
pub(in crate::api::public) fn is_edd_license_action(action: &str) -> bool {
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

fn edd_item(app: &App, account: &AccountPrefix, pairs: &[Pair<'_>]) -> Result<EddItem, Error> {
    let sent_name = get(pairs, "item_name").or_else(|| get(pairs, "name"));
    let item_name = sent_name.map_or(Value::Bool(false), |n| Value::String(n.to_owned()));
    // `item_id=0` (or a value that is not a number) is EDD's "not sent": by name then.
    if let Some(id) = edd_item_id(pairs) {
        let product = app
            .store
            .product(account, ProductId(id))?
            .map(|p| (p.id, p.name));
        let item_id = json!(id);
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
        let product = match app
            .public
            .views
            .slug_by_name(&app.store, account, &wanted)?
        {
            Some(slug) => app
                .public
                .views
                .by_slug(&app.store, account, &slug)?
                .map(|view| (view.product.id, view.product.name.clone())),
            None => None,
        };
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
pub(in crate::api::public) async fn edd_license(
    app: &App,
    who: Who,
    account: Option<AccountPrefix>,
    pairs: &[Pair<'_>],
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
    let attempt = match action {
        "check_license" => Attempt::Check,
        "activate_license" => Attempt::Activate,
        _ => Attempt::Other,
    };
    let Some(key) = key else {
        note_check(app, &who, Code::MissingKey, None, attempt);
        return Ok(bare(Code::MissingKey));
    };
    if throttled(app, &who, Some(key)) {
        note_check(app, &who, Code::RateLimited, None, attempt);
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
    // An `all` key covers every product of the account, but not an item that is none.
    if matches!(item.product, Some(None))
        && matches!(checked.code, Code::Valid | Code::SiteInactive)
    {
        checked.code = Code::ProductMismatch;
        checked.activation = None;
    }
    note_check(app, &who, checked.code, named, attempt);
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
            deactivate(app, who.now, account, product, key, target.clone()).await?
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
