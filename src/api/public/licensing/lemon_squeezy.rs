//! Lemon Squeezy's license API (SPEC §9.2): `POST /ls/{prefix}/v1/licenses/activate|validate|
//! deactivate` and `/v1/licenses/…` (the default account); form, JSON or JSON:API bodies;
//! the one dialect with real HTTP statuses (404, 400, 422, 429, and 408/413 for a body too
//! slow or too large), every one in the license answer's shape.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::api::public) enum LsAction {
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

/// [`ls_bare`] for a request Lemon Squeezy's routes cannot take (a body too large, too
/// slow or unreadable, a name out of bounds; [`crate::http::route::Row::refusal`]): its
/// status, with `error` the reason (SPEC §3, §9.2). One per action, for the rows.
pub(in crate::api::public) fn ls_activate_refusal(err: &Error) -> Response<Body> {
    ls_bare(LsAction::Activate, err.status(), &err.to_string())
}

/// [`ls_activate_refusal`] of `validate`.
pub(in crate::api::public) fn ls_validate_refusal(err: &Error) -> Response<Body> {
    ls_bare(LsAction::Validate, err.status(), &err.to_string())
}

/// [`ls_activate_refusal`] of `deactivate`.
pub(in crate::api::public) fn ls_deactivate_refusal(err: &Error) -> Response<Body> {
    ls_bare(LsAction::Deactivate, err.status(), &err.to_string())
}

/// `POST /ls/{prefix}/v1/licenses/{action}`.
pub(in crate::api::public) async fn lemon_squeezy_prefixed(
    app: &App,
    call: Call,
    action: LsAction,
) -> Result<Response<Body>, Error> {
    let account = AccountPrefix::parse(&call.param("prefix"))
        .ok()
        .filter(|prefix| app.store.plan_limit(prefix, call.now).is_some());
    let (pairs, who) = (owned(pairs_of(&call)), Who::of(app, &call));
    drop(call);
    lemon_squeezy(app, who, pairs, account, action).await
}

/// `POST /v1/licenses/{action}`: the default account's.
pub(in crate::api::public) async fn lemon_squeezy_default(
    app: &App,
    call: Call,
    action: LsAction,
) -> Result<Response<Body>, Error> {
    let account = app.store.default_account()?;
    let (pairs, who) = (owned(pairs_of(&call)), Who::of(app, &call));
    drop(call);
    lemon_squeezy(app, who, pairs, account, action).await
}

async fn lemon_squeezy(
    app: &App,
    who: Who,
    pairs: Vec<Pair<'static>>,
    account: Option<AccountPrefix>,
    action: LsAction,
) -> Result<Response<Body>, Error> {
    let attempt = match action {
        LsAction::Validate => Attempt::Check,
        LsAction::Activate => Attempt::Activate,
        LsAction::Deactivate => Attempt::Other,
    };
    let Some(key) = get(&pairs, "license_key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        note_check(app, &who, Code::MissingKey, None, attempt);
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
        note_check(app, &who, Code::RateLimited, None, attempt);
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
    note_check(app, &who, checked.code, None, attempt);
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
            deactivate(app, who.now, account, None, key, target).await?
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
            // Unlimited is `null` in Lemon Squeezy's answers (our 0).
            "activation_limit": (shown.activation_limit != 0).then_some(shown.activation_limit),
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
}
