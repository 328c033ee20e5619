//! Validation and the key holder's activations (SPEC §9): the §9 code for (account,
//! product, key, site|machine|instance) — from the store's in-memory indexes
//! ([`standing`]) or with the records ([`check`]) — and `activate` / `deactivate` with
//! every refusal of §9. The public dialects and the update decision call these.

use super::*;

/// What an activation is for, as a dialect read it from its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A site (normalized: `model::normalize_site`, or `site_from_user_agent`).
    Site(Site),
    /// An app's machine fingerprint (`model::licensing::check_machine`).
    Machine(String),
    /// An existing Lemon Squeezy instance (validate, deactivate).
    Instance(ActivationId),
    /// A new Lemon Squeezy instance, labelled with its `instance_name` (activate: every
    /// call makes one).
    NewInstance(String),
}

impl Target {
    fn matches(&self, activation: &Activation) -> bool {
        match (self, &activation.identity) {
            (Target::Site(site), Identity::Site(theirs)) => site == theirs,
            (Target::Machine(machine), Identity::Machine(theirs)) => machine == theirs,
            (Target::Instance(id), Identity::Instance) => *id == activation.id,
            _ => false,
        }
    }
}

/// The result of a public licensing call: the code, and the records where the key
/// exists (dialects show its status, limit, usage and the activation).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: ValidationCode,
    pub key: Option<DownloadKey>,
    /// The activation concerned (found, created, or removed), if any.
    pub activation: Option<Activation>,
}

impl Outcome {
    fn bare(code: ValidationCode) -> Self {
        Outcome {
            code,
            key: None,
            activation: None,
        }
    }

    pub fn valid(&self) -> bool {
        self.code == ValidationCode::Valid
    }
}

/// The key of `account` whose value is `key` (any case for segmented and UUID keys);
/// `None` for a string that is no key.
///
/// # Errors
/// The store failed.
pub fn find_key(
    store: &Store,
    account: &AccountPrefix,
    key: &str,
) -> Result<Option<DownloadKey>, Error> {
    match lookup_of(store, account, key) {
        Some(lookup) => Ok(store.download_key_by_lookup(account, &lookup)?),
        None => Ok(None),
    }
}

/// The key's own state: disabled, expired, or not covering `product`.
fn key_state(key: &DownloadKey, product: Option<ProductId>, now: Timestamp) -> ValidationCode {
    if key.status == KeyStatus::Disabled {
        ValidationCode::Disabled
    } else if key.expired(now) {
        ValidationCode::Expired
    } else if product.is_some_and(|p| !key.products.covers(p)) {
        ValidationCode::ProductMismatch
    } else {
        ValidationCode::Valid
    }
}

/// The §9 code for `key` in `account`, for `product` (when product-scoped) and, when a
/// target is given, activated for it (`site_inactive` otherwise). Reads only: no write,
/// whatever the answer (the check is noted in memory, `Store::note_key_check`, and
/// persisted in batches). Unknown keys are `not_found` (the caller counts them as failed
/// authentications for throttling).
///
/// # Errors
/// The store failed.
pub fn validate(
    store: &Store,
    account: &AccountPrefix,
    product: Option<ProductId>,
    key: Option<&str>,
    target: Option<&Target>,
    now: Timestamp,
) -> Result<ValidationCode, Error> {
    Ok(standing(store, account, product, key, target, now)?.0)
}

/// [`validate`] with the key's id (when it exists): what the update decision needs. From
/// memory (`Store::key_standing`: no record read, no scan of activations) unless memory
/// cannot say exactly, then as [`check`]. Notes the check like [`check`].
///
/// # Errors
/// The store failed.
pub fn standing(
    store: &Store,
    account: &AccountPrefix,
    product: Option<ProductId>,
    key: Option<&str>,
    target: Option<&Target>,
    now: Timestamp,
) -> Result<(ValidationCode, Option<DownloadKeyId>), Error> {
    let Some(text) = key.map(crate::model::trim).filter(|k| !k.is_empty()) else {
        return Ok((ValidationCode::MissingKey, None));
    };
    let identity = match target {
        None => None,
        Some(Target::Site(site)) => Some(IdentityRef::Site(site.as_str())),
        Some(Target::Machine(machine)) => Some(IdentityRef::Machine(machine)),
        Some(Target::Instance(_) | Target::NewInstance(_)) => {
            let outcome = check(store, account, product, key, target, now)?;
            return Ok((outcome.code, outcome.key.map(|k| k.id)));
        }
    };
    let Some(lookup) = lookup_of(store, account, text) else {
        return Ok((ValidationCode::NotFound, None));
    };
    let known = match store.key_standing(&lookup, product, identity) {
        Standing::Unknown => return Ok((ValidationCode::NotFound, None)),
        Standing::Known(known) => known,
        Standing::AskRecords => {
            let outcome = check(store, account, product, key, target, now)?;
            return Ok((outcome.code, outcome.key.map(|k| k.id)));
        }
    };
    let code = if known.disabled {
        ValidationCode::Disabled
    } else if known.expires_at.is_some_and(|at| at <= now) {
        ValidationCode::Expired
    } else if !known.covers {
        ValidationCode::ProductMismatch
    } else if target.is_some() && known.activation.is_none() {
        ValidationCode::SiteInactive
    } else {
        ValidationCode::Valid
    };
    // As `check`: the activation is seen only when the key is otherwise valid.
    let seen = known.activation.filter(|_| code == ValidationCode::Valid);
    store.note_key_check(account, known.id, seen, now);
    Ok((code, Some(known.id)))
}

/// [`validate`] with the records: the key (when it exists) and the target's activation.
///
/// # Errors
/// The store failed.
pub fn check(
    store: &Store,
    account: &AccountPrefix,
    product: Option<ProductId>,
    key: Option<&str>,
    target: Option<&Target>,
    now: Timestamp,
) -> Result<Outcome, Error> {
    let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
        return Ok(Outcome::bare(ValidationCode::MissingKey));
    };
    let Some(record) = find_key(store, account, key)? else {
        return Ok(Outcome::bare(ValidationCode::NotFound));
    };
    let mut code = key_state(&record, product, now);
    let mut activation = None;
    if code == ValidationCode::Valid
        && let Some(target) = target
    {
        activation = store
            .activations(account, record.id)?
            .into_iter()
            .find(|a| target.matches(a));
        if activation.is_none() {
            code = ValidationCode::SiteInactive;
        }
    }
    // In memory only: `last_checked_at` / `last_seen_at` are written in batches.
    store.note_key_check(account, record.id, activation.as_ref().map(|a| a.id), now);
    Ok(Outcome {
        code,
        key: Some(record),
        activation,
    })
}

/// Whether an activation for `target` (declared `environment`) uses the key's limit.
fn counts(rules: &ActivationRules, target: &Target, environment: Option<&str>) -> bool {
    let declared_dev = environment
        .map(str::trim)
        .is_some_and(|e| !e.is_empty() && !e.eq_ignore_ascii_case("production"));
    let dev_site = matches!(target, Target::Site(site) if rules.dev_sites.is_dev(site));
    !(declared_dev || dev_site)
}

/// Activates `key` for `target` (SPEC §9 *Activation*): an already active site or
/// machine succeeds and uses no slot; a development site (or a declared non-production
/// `environment`) does not count, at most 10 per key; refusals are
/// `activation_limit_reached`, `account_limit_reached` (the account's pool, its plan
/// license's limit or `rules.default_activation_limit`, 0 = unlimited) and
/// `rate_limited` (more than `rules.max_activations_per_day` new activations of the key
/// in 24 h). A refusal, or a site already active, writes nothing (no flush, no cache
/// turnover, no audit line). The rules are applied under the store's write lock, so
/// concurrent activations cannot both take the last slot.
///
/// # Errors
/// `InvalidRequest` for a label (or an instance's name) that is too long or holds a
/// control character; the store failed.
#[allow(clippy::too_many_arguments)]
pub fn activate<'a>(
    ctx: &Ctx<'a>,
    rules: &ActivationRules,
    account: &AccountPrefix,
    product: Option<ProductId>,
    key: Option<&str>,
    target: Target,
    label: Option<String>,
    environment: Option<&str>,
) -> Result<Done<'a, Outcome>, Error> {
    // A Lemon Squeezy instance's name is its label, held to the same rules.
    let (label, field) = match &target {
        Target::NewInstance(name) => (Some(name.clone()), "instance_name"),
        _ => (label, "label"),
    };
    let label = match label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()) {
        Some(l) if l.chars().count() > MAX_LABEL_LEN || l.chars().any(char::is_control) => {
            return Err(Error::invalid(
                field,
                format!("must be at most {MAX_LABEL_LEN} characters, no control characters"),
            ));
        }
        other => other,
    };
    let found = check(ctx.store, account, product, key, None, ctx.now)?;
    if found.code != ValidationCode::Valid {
        return Ok(Done::new(ctx, ctx.store.already(found), |_| Vec::new()));
    }
    let Some(record) = found.key else {
        return Err(Error::Internal("a valid outcome without its key".into()));
    };
    let now = ctx.now;
    let counts = counts(rules, &target, environment);
    let account_limit = match ctx.store.plan_limit(account, now) {
        Some(Some(limit)) => limit,
        _ => rules.default_activation_limit,
    };
    let per_day = rules.max_activations_per_day;
    let pending = ctx
        .store
        .activate(account, record.id, |stored, existing, usage| {
            let refuse = |code| Ok((ActivationPlan::Nothing, (code, None)));
            let state = key_state(stored, product, now);
            if state != ValidationCode::Valid {
                return refuse(state);
            }
            if let Some(found) = existing.iter().find(|a| target.matches(a)) {
                return Ok((
                    ActivationPlan::Nothing,
                    (ValidationCode::Valid, Some(found.clone())),
                ));
            }
            let identity = match &target {
                Target::Site(site) => Identity::Site(site.clone()),
                Target::Machine(machine) => Identity::Machine(machine.clone()),
                Target::NewInstance(_) => Identity::Instance,
                Target::Instance(_) => return refuse(ValidationCode::SiteInactive),
            };
            if !counts && existing.iter().filter(|a| !a.counts).count() >= MAX_DEV_ACTIVATIONS {
                return refuse(ValidationCode::ActivationLimitReached);
            }
            if per_day > 0 && stored.activations_since(now) >= per_day as usize {
                return refuse(ValidationCode::RateLimited);
            }
            if counts {
                if stored.full() {
                    return refuse(ValidationCode::ActivationLimitReached);
                }
                if account_limit != 0 && usage >= u64::from(account_limit) {
                    return refuse(ValidationCode::AccountLimitReached);
                }
            }
            let mut key = stored.clone();
            key.note_activation(now);
            let activation = Activation {
                id: ActivationId(0),
                key_id: stored.id,
                identity,
                label: label.clone(),
                counts,
                created_at: now,
                last_seen_at: Some(now),
            };
            Ok((
                ActivationPlan::Create {
                    key: Box::new(key),
                    activation,
                },
                (ValidationCode::Valid, None),
            ))
        })?;
    let mut wrote = false;
    let outcome = pending.map(|(key, created, (code, existing))| {
        wrote = created.is_some();
        Outcome {
            code,
            key: Some(key),
            activation: created.or(existing),
        }
    });
    if !wrote {
        // Already active, or refused under the lock: nothing was written, nothing to say.
        return Ok(Done::new(ctx, outcome, |_| Vec::new()));
    }
    Ok(changed(ctx, account, outcome, |o: &Outcome| {
        match (&o.key, &o.activation) {
            (Some(k), Some(a)) => {
                format!("activated key {} ({} {})", k.id, a.identity.kind(), a.id)
            }
            _ => "activation refused".to_owned(),
        }
    }))
}

/// Deactivates `key` for `target` (frees the slot) at the key holder's request.
/// `site_inactive` when the key has no such activation; the key's own state (disabled,
/// expired) does not prevent freeing a slot, but a product mismatch does (the caller
/// named the wrong product); `rate_limited`, nothing changed, when the holder already
/// freed `limit` of the key's slots in the last 30 days (SPEC §9.2
/// `--max-deactivations-per-month`; 0: no limit), as the store records them.
///
/// # Errors
/// The store failed.
pub fn deactivate<'a>(
    ctx: &Ctx<'a>,
    account: &AccountPrefix,
    product: Option<ProductId>,
    key: Option<&str>,
    target: &Target,
    limit: u32,
) -> Result<Done<'a, Outcome>, Error> {
    let Some(text) = key.map(str::trim).filter(|k| !k.is_empty()) else {
        let bare = Outcome::bare(ValidationCode::MissingKey);
        return Ok(Done::new(ctx, ctx.store.already(bare), |_| Vec::new()));
    };
    let Some(record) = find_key(ctx.store, account, text)? else {
        let bare = Outcome::bare(ValidationCode::NotFound);
        return Ok(Done::new(ctx, ctx.store.already(bare), |_| Vec::new()));
    };
    let refused = |code, activation| Outcome {
        code,
        key: Some(record.clone()),
        activation,
    };
    if product.is_some_and(|p| !record.products.covers(p)) {
        let out = refused(ValidationCode::ProductMismatch, None);
        return Ok(Done::new(ctx, ctx.store.already(out), |_| Vec::new()));
    }
    let Some(found) = ctx
        .store
        .activations(account, record.id)?
        .into_iter()
        .find(|a| target.matches(a))
    else {
        let out = refused(ValidationCode::SiteInactive, None);
        return Ok(Done::new(ctx, ctx.store.already(out), |_| Vec::new()));
    };
    // A spent budget is answered without a write (no flush, no cache turnover, no audit
    // line); the store checks again under its write lock, which is the check that holds.
    if limit > 0
        && !ctx
            .store
            .holder_deactivations(account, record.id, ctx.now)?
            .allows_one_more(limit)
    {
        let out = refused(ValidationCode::RateLimited, None);
        return Ok(Done::new(ctx, ctx.store.already(out), |_| Vec::new()));
    }
    let pending = ctx
        .store
        .delete_activation_for_holder(account, found.id, limit, ctx.now)?;
    let outcome = pending.map(|done| match done {
        HolderDeactivation::Deleted(deleted) => {
            let (key, activation) = *deleted;
            Outcome {
                code: ValidationCode::Valid,
                key: Some(key),
                activation: Some(activation),
            }
        }
        HolderDeactivation::LimitReached => refused(ValidationCode::RateLimited, None),
        HolderDeactivation::Gone => refused(ValidationCode::SiteInactive, None),
    });
    Ok(changed(ctx, account, outcome, |o: &Outcome| {
        match &o.activation {
            Some(a) => format!("deactivated activation {}", a.id),
            None => format!("deactivation refused: {}", o.code.as_str()),
        }
    }))
}
