//! UpdaterCloud's public licensing (SPEC §9.2): `GET|POST /api/v1/products/{id}/download-keys/
//! check|activate|deactivate` and the holder's own `…/download-keys/activations` (hosts
//! masked). The one family here with a `404` (unknown key or product) and a `400` (no key);
//! a body too slow or too large is `408`/`413`, all in the key answer's shape.

use super::*;

/// The operation an UpdaterCloud row names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::api::public) enum UcAction {
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

/// The key answer of a refusal: `valid` false, `code` and `message`, and the action's
/// `activated`/`deactivated` false.
fn uc_bare(action: UcAction, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let mut body = json!({"valid": false, "code": code, "message": message});
    match action {
        UcAction::Activate => body["activated"] = Value::Bool(false),
        UcAction::Deactivate => body["deactivated"] = Value::Bool(false),
        UcAction::Check => {}
    }
    json_no_store(status, &body)
}

/// [`uc_bare`] for a request the key routes cannot take (a body too large, too slow or
/// unreadable; [`crate::http::route::Row::refusal`]): its status and our error code
/// (SPEC §3, §9.2). One per action, for the rows.
pub(in crate::api::public) fn uc_check_refusal(err: &Error) -> Response<Body> {
    uc_bare(UcAction::Check, err.status(), err.code(), &err.to_string())
}

/// [`uc_check_refusal`] of `activate`.
pub(in crate::api::public) fn uc_activate_refusal(err: &Error) -> Response<Body> {
    uc_bare(
        UcAction::Activate,
        err.status(),
        err.code(),
        &err.to_string(),
    )
}

/// [`uc_check_refusal`] of `deactivate`.
pub(in crate::api::public) fn uc_deactivate_refusal(err: &Error) -> Response<Body> {
    uc_bare(
        UcAction::Deactivate,
        err.status(),
        err.code(),
        &err.to_string(),
    )
}

/// `…/download-keys/check|activate|deactivate`.
pub(in crate::api::public) async fn updatercloud(
    app: &App,
    call: Call,
    action: UcAction,
) -> Result<Response<Body>, Error> {
    let pairs = owned(pairs_of(&call));
    let who = Who::of(app, &call);
    let uc = uc_product(app, &call)?;
    drop(call);
    let key = get(&pairs, "download_key").or_else(|| get(&pairs, "license_key"));
    let bare = |status: StatusCode, code: Code| {
        Ok(uc_bare(action, status, code.as_str(), uc_message(code)))
    };
    let Some(product) = uc else {
        return Ok(uc_bare(
            action,
            StatusCode::NOT_FOUND,
            "not_found",
            "No such product.",
        ));
    };
    let (account, product_id) = product;
    let attempt = match action {
        UcAction::Check => Attempt::Check,
        UcAction::Activate => Attempt::Activate,
        UcAction::Deactivate => Attempt::Other,
    };
    let named = Some((account, product_id));
    let Some(key) = key else {
        note_check(app, &who, Code::MissingKey, named, attempt);
        return bare(StatusCode::BAD_REQUEST, Code::MissingKey);
    };
    if throttled(app, &who, Some(key)) {
        note_check(app, &who, Code::RateLimited, named, attempt);
        return bare(StatusCode::OK, Code::RateLimited);
    }
    let site = match site_in(&who, &pairs, &["domain", "url", "site"], false) {
        Ok(site) => site,
        Err(why) => {
            return Ok(uc_bare(
                action,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("domain: {why}"),
            ));
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
                return Ok(uc_bare(
                    action,
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("machine: {why}"),
                ));
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
    note_check(app, &who, checked.code, named, attempt);
    let Some(record) = checked.key.clone() else {
        let status = match checked.code {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MissingKey => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        return bare(status, checked.code);
    };
    // The key's own state (for `valid` and `code` after a deactivation, which may free a
    // disabled or expired key's slot).
    let key_code = checked.code;
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
                deactivate(app, who.now, account, Some(product_id), key, target).await?
            }
        }
    };
    // A deactivation that freed its slot reports the key as it stands (`valid:false`,
    // `disabled`, for a disabled key); one that did not, why not.
    let code = match action {
        UcAction::Deactivate if outcome.code == Code::Valid => key_code,
        _ => outcome.code,
    };
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
            let deactivated = outcome.code == Code::Valid;
            body["deactivated"] = Value::Bool(deactivated);
            if deactivated {
                body["message"] = Value::String("Download key is deactivated.".into());
            }
        }
    }
    uc_reply(StatusCode::OK, body)
}

/// A write without its target (`action` is activate or deactivate).
fn uc_missing_target(action: UcAction) -> Result<Response<Body>, Error> {
    let message = if action == UcAction::Deactivate {
        "domain, machine or activation_id is required."
    } else {
        "domain or machine is required."
    };
    Ok(uc_bare(
        action,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        message,
    ))
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
pub(in crate::api::public) fn updatercloud_activations(
    app: &App,
    call: &Call,
) -> Result<Response<Body>, Error> {
    let pairs = query(call);
    let Some((account, product)) = uc_product(app, call)? else {
        return Ok(uc_bare(
            UcAction::Check,
            StatusCode::NOT_FOUND,
            "not_found",
            "No such product.",
        ));
    };
    let key = get(&pairs, "download_key").or_else(|| get(&pairs, "license_key"));
    let bare = |status: StatusCode, code: Code| {
        Ok(uc_bare(
            UcAction::Check,
            status,
            code.as_str(),
            uc_message(code),
        ))
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
    note_check(
        app,
        &Who::of(app, call),
        checked.code,
        Some((account, product)),
        Attempt::Other,
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
        let limit = app.settings.max_deactivations_per_month;
        body["activations"] = list
            .iter()
            .map(|a| uc_activation(&account, a, true))
            .collect();
        body["deactivations"] = json!({
            "limit": limit,
            "remaining": if limit == 0 {
                Value::Null
            } else {
                let used = app.store.holder_deactivations(&account, record.id, call.now)?.at.len();
                json!((limit as usize).saturating_sub(used))
            },
        });
    }
    uc_reply(StatusCode::OK, body)
}
