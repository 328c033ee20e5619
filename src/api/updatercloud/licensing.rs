//! `/api/v1/customers|download-keys|activations|settings/download-keys` (SPEC §9.1):
//! customer licensing in the UpdaterCloud family's shapes — single records
//! `{"data":{…}}`, lists `{"data":[…],"next_cursor"}`, RFC 3339 times, JSON or form
//! bodies. Reads need `read_licenses`, changes `manage_licenses`. The account is always
//! the caller's own: another account's id is `404`. A key's value is shown to the vendor
//! (on creation and on reads), never stored in the clear.

use super::catalog::Flex;
use super::{double, list, one, time};
use crate::api::account_of;
use crate::app::App;
use crate::error::Error;
use crate::http::request;
use crate::http::route::Call;
use crate::http::{Body, response};
use crate::model::{
    Activation, ActivationId, Customer, CustomerId, DownloadKeyId, Entity, Identity, KeyGenerator,
    KeyStatus, LicensingSettings, ProductId, ProductScope, Timestamp,
};
use crate::service::licensing::{
    self as svc, CustomerChanges, KeyChanges, KeyQuery, KeyWithValue, NewKey,
};
use crate::store::Page;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::time::Duration;

// ----- views ---------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct CustomerView {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub entity: &'static str,
    pub business_name: Option<String>,
    pub vat_number: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl CustomerView {
    pub fn new(c: &Customer) -> Self {
        CustomerView {
            id: c.id.0,
            name: c.name.clone(),
            email: c.email.clone(),
            entity: c.entity.as_str(),
            business_name: c.business_name.clone(),
            vat_number: c.vat_number.clone(),
            country: c.country.clone(),
            state: c.state.clone(),
            city: c.city.clone(),
            address: c.address.clone(),
            postcode: c.postcode.clone(),
            phone: c.phone.clone(),
            notes: c.notes.clone(),
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ActivationsUse {
    pub limit: u32,
    pub usage: u32,
}

#[derive(Debug, Serialize)]
pub struct DownloadKeyView {
    pub id: u64,
    pub key: String,
    pub customer_id: u64,
    /// `"all"` or a list of product ids.
    pub product_ids: serde_json::Value,
    pub activation_limit: u32,
    pub expires_at: Option<String>,
    pub status: &'static str,
    pub notes: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_checked_at: Option<String>,
    pub activations: ActivationsUse,
}

/// `"all"` or `[ids…]`.
pub fn products_json(products: &ProductScope) -> serde_json::Value {
    match products {
        ProductScope::All => serde_json::Value::String("all".to_owned()),
        ProductScope::Only(ids) => ids.iter().map(|id| serde_json::json!(id.0)).collect(),
    }
}

impl DownloadKeyView {
    pub fn new(k: &KeyWithValue) -> Self {
        let r = &k.record;
        DownloadKeyView {
            id: r.id.0,
            key: k.key.clone(),
            customer_id: r.customer_id.0,
            product_ids: products_json(&r.products),
            activation_limit: r.activation_limit,
            expires_at: r.expires_at.map(time),
            status: r.status.as_str(),
            notes: r.notes.clone(),
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
            last_checked_at: r.last_checked_at.map(time),
            activations: ActivationsUse {
                limit: r.activation_limit,
                usage: r.counted,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ActivationView {
    pub id: u64,
    pub key_id: u64,
    /// `site`, `machine` or `instance`.
    pub kind: &'static str,
    pub site: Option<String>,
    pub machine: Option<String>,
    pub label: Option<String>,
    pub counts: bool,
    pub created_at: String,
    pub last_seen_at: Option<String>,
}

impl ActivationView {
    pub fn new(a: &Activation) -> Self {
        let (site, machine) = match &a.identity {
            Identity::Site(site) => (Some(site.to_string()), None),
            Identity::Machine(machine) => (None, Some(machine.clone())),
            Identity::Instance => (None, None),
        };
        ActivationView {
            id: a.id.0,
            key_id: a.key_id.0,
            kind: a.identity.kind(),
            site,
            machine,
            label: a.label.clone(),
            counts: a.counts,
            created_at: time(a.created_at),
            last_seen_at: a.last_seen_at.map(time),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GeneratorView {
    /// `uuid4` or `segmented`.
    pub generator: &'static str,
    /// The segmented generator's settings (`null` for `uuid4`).
    pub alphabet: Option<String>,
    pub segments: Option<u8>,
    pub segment_len: Option<u8>,
}

impl GeneratorView {
    pub fn new(settings: &LicensingSettings) -> Self {
        match &settings.generator {
            KeyGenerator::Uuid4 => GeneratorView {
                generator: "uuid4",
                alphabet: None,
                segments: None,
                segment_len: None,
            },
            KeyGenerator::Segmented {
                alphabet,
                segments,
                segment_len,
            } => GeneratorView {
                generator: "segmented",
                alphabet: Some(alphabet.clone()),
                segments: Some(*segments),
                segment_len: Some(*segment_len),
            },
        }
    }
}

// ----- requests ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerBody {
    name: Option<String>,
    email: Option<String>,
    entity: Option<String>,
    #[serde(default, deserialize_with = "double")]
    business_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    vat_number: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    country: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    state: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    city: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    address: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    postcode: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    notes: Option<Option<String>>,
}

impl CustomerBody {
    fn changes(self) -> Result<CustomerChanges, Error> {
        let entity = match self.entity.as_deref() {
            Some(text) => Some(Entity::parse(text).ok_or_else(|| {
                Error::invalid(
                    "entity",
                    format!("`{text}` is not one of individual, business"),
                )
            })?),
            None => None,
        };
        Ok(CustomerChanges {
            name: self.name,
            email: self.email,
            entity,
            business_name: self.business_name,
            vat_number: self.vat_number,
            country: self.country,
            state: self.state,
            city: self.city,
            address: self.address,
            postcode: self.postcode,
            phone: self.phone,
            notes: self.notes,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    customer_id: Option<Flex<u64>>,
    product_ids: Option<serde_json::Value>,
    activation_limit: Option<Flex<i64>>,
    #[serde(default, deserialize_with = "double")]
    expires_at: Option<Option<String>>,
    expires_in: Option<String>,
    key: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "double")]
    notes: Option<Option<String>>,
}

/// `"all"`, a list of ids (numbers or numeric strings), or a comma-separated string.
fn product_scope(value: serde_json::Value) -> Result<ProductScope, Error> {
    use serde_json::Value;
    let bad = |what: &str| {
        Error::invalid(
            "product_ids",
            format!("{what}: give `\"all\"` or a list of product ids"),
        )
    };
    let id = |item: &Value| -> Result<ProductId, Error> {
        match item {
            Value::Number(n) => n.as_u64().map(ProductId).ok_or_else(|| bad("not an id")),
            // Digits only (no sign, no blank between commas): what the schema documents.
            Value::String(s) => Some(s.trim())
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .map(ProductId)
                .ok_or_else(|| bad(&format!("`{s}` is not an id"))),
            _ => Err(bad("not an id")),
        }
    };
    let ids = match &value {
        Value::String(s) if s.trim().eq_ignore_ascii_case("all") => return Ok(ProductScope::All),
        Value::String(s) if s.trim().is_empty() => Vec::new(),
        Value::String(s) => s
            .split(',')
            .map(|s| id(&Value::String(s.to_owned())))
            .collect::<Result<Vec<_>, _>>()?,
        Value::Number(_) => vec![id(&value)?],
        Value::Array(items) => items.iter().map(id).collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("unexpected type")),
    };
    if ids.is_empty() {
        return Err(bad("no product given"));
    }
    Ok(ProductScope::Only(ids))
}

fn expiry(
    expires_at: Option<Option<String>>,
    expires_in: Option<String>,
    now: Timestamp,
) -> Result<Option<Option<Timestamp>>, Error> {
    match (expires_at, expires_in) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "expires_in",
            "give expires_in or expires_at, not both",
        )),
        (None, Some(lifetime)) => {
            let lifetime: Duration = humantime::parse_duration(lifetime.trim()).map_err(|err| {
                Error::invalid(
                    "expires_in",
                    format!("`{lifetime}` is not a duration like 365d ({err})"),
                )
            })?;
            if lifetime.is_zero() {
                return Err(Error::invalid("expires_in", "must be longer than 0s"));
            }
            Ok(Some(Some(now.saturating_add(lifetime))))
        }
        (Some(Some(at)), None) => {
            let at = Timestamp::parse_rfc3339(&at).map_err(|err| {
                Error::invalid(
                    "expires_at",
                    format!("`{at}` is not an RFC 3339 time ({err})"),
                )
            })?;
            Ok(Some(Some(at)))
        }
        (Some(None), None) => Ok(Some(None)),
        (None, None) => Ok(None),
    }
}

fn status(text: &str) -> Result<KeyStatus, Error> {
    KeyStatus::parse(text)
        .ok_or_else(|| Error::invalid("status", format!("`{text}` is not one of active, disabled")))
}

/// A path id: not a number is simply no such record.
fn id(call: &Call, what: &str) -> Result<u64, Error> {
    let text = call.param("id");
    text.parse::<u64>()
        .map_err(|_| Error::NotFound(format!("no {what} with id {text}")))
}

/// An optional numeric query filter.
fn query_id(call: &Call, name: &str) -> Result<Option<u64>, Error> {
    match request::query_param(call.query(), name) {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Error::invalid(name, format!("`{text}` is not an id"))),
    }
}

// ----- customers -----------------------------------------------------------------

pub(super) fn list_customers(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let page = request::paging(call.query())?;
    let q = request::query_param(call.query(), "q");
    let found = svc::customers(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        q.as_deref(),
        &page,
    )?;
    Ok(list(found, CustomerView::new))
}

pub(super) fn get_customer(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let customer = svc::customer(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        CustomerId(id(call, "customer")?),
    )?;
    Ok(one(StatusCode::OK, CustomerView::new(&customer)))
}

pub(super) async fn put_customer(
    app: &App,
    call: Call,
    create: bool,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = if create {
        None
    } else {
        Some(CustomerId(id(&call, "customer")?))
    };
    let body: CustomerBody = request::json_or_form(&call.input)?;
    let changes = body.changes()?;
    let customer = app
        .write(caller, call.now, move |ctx| match target {
            None => svc::create_customer(ctx, &account, changes),
            Some(target) => svc::update_customer(ctx, &account, target, changes),
        })
        .await?;
    let code = if create {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(one(code, CustomerView::new(&customer)))
}

pub(super) async fn delete_customer(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = CustomerId(id(&call, "customer")?);
    app.write(caller, call.now, move |ctx| {
        svc::delete_customer(ctx, &account, target)
    })
    .await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

// ----- download keys -------------------------------------------------------------

pub(super) fn list_keys(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let page = request::paging(call.query())?;
    let query = KeyQuery {
        customer_id: query_id(call, "customer_id")?.map(CustomerId),
        product_id: query_id(call, "product_id")?.map(ProductId),
        key: request::query_param(call.query(), "key").filter(|k| !k.trim().is_empty()),
    };
    let found = svc::keys(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        &query,
        &page,
    )?;
    Ok(list(found, DownloadKeyView::new))
}

pub(super) fn get_key(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let key = svc::key(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        DownloadKeyId(id(call, "download key")?),
    )?;
    Ok(one(StatusCode::OK, DownloadKeyView::new(&key)))
}

/// `POST /api/v1/download-keys`: *Generate Download Key*, `201` with the key.
pub(super) async fn create_key(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let body: KeyBody = request::json_or_form(&call.input)?;
    if body.status.is_some() {
        return Err(Error::invalid(
            "status",
            "a new key is active; disable it afterwards",
        ));
    }
    let customer_id = body
        .customer_id
        .map(|c| CustomerId(c.0))
        .ok_or_else(|| Error::invalid("customer_id", "is required"))?;
    let products = product_scope(
        body.product_ids
            .ok_or_else(|| Error::invalid("product_ids", "is required"))?,
    )?;
    let expires_at = expiry(body.expires_at, body.expires_in, call.now)?.flatten();
    let new = NewKey {
        customer_id,
        products,
        activation_limit: body.activation_limit.map(|l| l.0),
        expires_at,
        key: body.key,
        notes: body.notes.flatten(),
    };
    let key = app
        .write(caller, call.now, move |ctx| {
            svc::generate_key(ctx, &account, new)
        })
        .await?;
    Ok(one(StatusCode::CREATED, DownloadKeyView::new(&key)))
}

pub(super) async fn update_key(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = DownloadKeyId(id(&call, "download key")?);
    let body: KeyBody = request::json_or_form(&call.input)?;
    if body.key.is_some() {
        return Err(Error::invalid(
            "key",
            "cannot be changed; generate a new key instead",
        ));
    }
    let changes = KeyChanges {
        customer_id: body.customer_id.map(|c| CustomerId(c.0)),
        products: body.product_ids.map(product_scope).transpose()?,
        activation_limit: body.activation_limit.map(|l| l.0),
        expires_at: expiry(body.expires_at, body.expires_in, call.now)?,
        status: body.status.as_deref().map(status).transpose()?,
        notes: body.notes,
    };
    let key = app
        .write(caller, call.now, move |ctx| {
            svc::update_key(ctx, &account, target, changes)
        })
        .await?;
    Ok(one(StatusCode::OK, DownloadKeyView::new(&key)))
}

pub(super) async fn delete_key(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = DownloadKeyId(id(&call, "download key")?);
    app.write(caller, call.now, move |ctx| {
        svc::delete_key(ctx, &account, target)
    })
    .await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

// ----- activations ---------------------------------------------------------------

pub(super) fn list_activations(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let page = request::paging(call.query())?;
    let found = svc::activations(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        DownloadKeyId(id(call, "download key")?),
    )?;
    Ok(list(
        Page::of_list(found, |a| a.id.0, &page)?,
        ActivationView::new,
    ))
}

pub(super) async fn delete_activation(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = ActivationId(id(&call, "activation")?);
    app.write(caller, call.now, move |ctx| {
        svc::delete_activation(ctx, &account, target)
    })
    .await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

// ----- settings ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneratorBody {
    generator: String,
    alphabet: Option<String>,
    segments: Option<Flex<u8>>,
    segment_len: Option<Flex<u8>>,
}

pub(super) fn get_settings(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let settings = svc::key_settings(&app.ctx(call.caller.as_ref(), call.now), &account)?;
    Ok(one(StatusCode::OK, GeneratorView::new(&settings)))
}

pub(super) async fn put_settings(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let body: GeneratorBody = request::json_or_form(&call.input)?;
    let generator = match body.generator.as_str() {
        "uuid4" => {
            if body.alphabet.is_some() || body.segments.is_some() || body.segment_len.is_some() {
                return Err(Error::invalid(
                    "generator",
                    "`uuid4` takes no alphabet, segments or segment_len",
                ));
            }
            KeyGenerator::Uuid4
        }
        "segmented" => {
            let KeyGenerator::Segmented {
                alphabet,
                segments,
                segment_len,
            } = KeyGenerator::segmented_default()
            else {
                return Err(Error::Internal("the default is segmented".into()));
            };
            KeyGenerator::Segmented {
                alphabet: body.alphabet.unwrap_or(alphabet),
                segments: body.segments.map_or(segments, |s| s.0),
                segment_len: body.segment_len.map_or(segment_len, |s| s.0),
            }
        }
        other => {
            return Err(Error::invalid(
                "generator",
                format!("`{other}` is not one of uuid4, segmented"),
            ));
        }
    };
    let settings = app
        .write(caller, call.now, move |ctx| {
            svc::put_key_settings(ctx, &account, generator)
        })
        .await?;
    Ok(one(StatusCode::OK, GeneratorView::new(&settings)))
}
