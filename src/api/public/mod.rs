//! The public update-check and download routes (SPEC §8): no API token. Each dialect is a
//! thin adapter: it reads its client's request into an [`crate::update::decide::Check`], asks the
//! one decision, and renders the [`crate::update::answer::Answer`] in its client's shape
//! (`update::render`). Every business outcome is a `200` in the WordPress dialects; only an
//! unknown prefix or slug is a `404` (PUC, WunderUpdates, UpdaterCloud), and EDD answers
//! even that with its not-found shape. A credential sent here is ignored.

mod edd;
pub mod licensing;

use crate::app::App;
use crate::error::Error;
use crate::http::auth::Need;
use crate::http::route::{Call, Family, Handler, Row};
use crate::http::{Body, response};
use crate::model::{AccountPrefix, Channel, ProductId, ProductKind, Timestamp};
use crate::update::answer::{Answer, LicenseCode};
use crate::update::decide::{self, Check, LinkContext, Place, ProductView};
use crate::update::render::{self, Links};
use crate::update::request::{self as wire, Pair};
use http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;
use std::sync::Arc;

const F: Family = Family::Public;

/// The public routes.
pub static ROWS: &[Row] = &[
    F.row(
        Method::GET,
        "wu_plugin",
        "/v1/public/{prefix}/plugins/{slug}",
        Need::Public,
        Handler::Read(|app, call| wunderupdates(app, call, ProductKind::Plugin)),
    ),
    F.row(
        Method::GET,
        "wu_plugin_channel",
        "/v1/public/{prefix}/plugins/{slug}/{channel}",
        Need::Public,
        Handler::Read(|app, call| wunderupdates(app, call, ProductKind::Plugin)),
    ),
    F.row(
        Method::GET,
        "wu_theme",
        "/v1/public/{prefix}/themes/{slug}",
        Need::Public,
        Handler::Read(|app, call| wunderupdates(app, call, ProductKind::Theme)),
    ),
    F.row(
        Method::GET,
        "wu_theme_channel",
        "/v1/public/{prefix}/themes/{slug}/{channel}",
        Need::Public,
        Handler::Read(|app, call| wunderupdates(app, call, ProductKind::Theme)),
    ),
    F.row(
        Method::POST,
        "batch_check",
        "/v1/public/{prefix}/check",
        Need::Public,
        Handler::Read(batch),
    ),
    F.row(
        Method::GET,
        "puc",
        "/updates/{prefix}/{slug}",
        Need::Public,
        Handler::Read(puc),
    ),
    F.row(
        Method::GET,
        "puc_channel",
        "/updates/{prefix}/{slug}/{channel}",
        Need::Public,
        Handler::Read(puc),
    ),
    F.row(
        Method::GET,
        "changelog",
        "/updates/{prefix}/{slug}/changelog",
        Need::Public,
        Handler::Read(changelog),
    ),
    F.row(
        Method::GET,
        "updatercloud_update",
        "/api/v1/products/{id}/update",
        Need::Public,
        Handler::Read(updatercloud),
    ),
    F.row(
        Method::GET,
        "edd",
        "/edd/{prefix}",
        Need::Public,
        Handler::ReadFirst(edd_check, |app, call| Box::pin(edd_prefixed(app, call))),
    )
    .refusing(edd_refusal),
    F.row(
        Method::POST,
        "edd_post",
        "/edd/{prefix}",
        Need::Public,
        Handler::ReadFirst(edd_check, |app, call| Box::pin(edd_prefixed(app, call))),
    )
    .refusing(edd_refusal),
    F.row(
        Method::GET,
        "download",
        "/dl/{token}/{filename}",
        Need::Public,
        Handler::Write(|app, call| Box::pin(download(app, call))),
    ),
    F.row(
        Method::POST,
        "root_post",
        "/",
        Need::Public,
        Handler::Write(|app, call| Box::pin(root_post(app, call))),
    )
    .refusing(edd_refusal),
    // ----- public licensing (SPEC §9.2): `licensing/` -----
    F.row(
        Method::GET,
        "uc_key_check",
        "/api/v1/products/{id}/download-keys/check",
        Need::Public,
        Handler::Write(|app, call| Box::pin(licensing::updatercloud(app, call, UcAction::Check))),
    )
    .refusing(licensing::uc_check_refusal),
    F.row(
        Method::POST,
        "uc_key_check_post",
        "/api/v1/products/{id}/download-keys/check",
        Need::Public,
        Handler::Write(|app, call| Box::pin(licensing::updatercloud(app, call, UcAction::Check))),
    )
    .refusing(licensing::uc_check_refusal),
    F.row(
        Method::GET,
        "uc_key_activate",
        "/api/v1/products/{id}/download-keys/activate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::updatercloud(app, call, UcAction::Activate))
        }),
    )
    .refusing(licensing::uc_activate_refusal),
    F.row(
        Method::POST,
        "uc_key_activate_post",
        "/api/v1/products/{id}/download-keys/activate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::updatercloud(app, call, UcAction::Activate))
        }),
    )
    .refusing(licensing::uc_activate_refusal),
    F.row(
        Method::GET,
        "uc_key_deactivate",
        "/api/v1/products/{id}/download-keys/deactivate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::updatercloud(app, call, UcAction::Deactivate))
        }),
    )
    .refusing(licensing::uc_deactivate_refusal),
    F.row(
        Method::POST,
        "uc_key_deactivate_post",
        "/api/v1/products/{id}/download-keys/deactivate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::updatercloud(app, call, UcAction::Deactivate))
        }),
    )
    .refusing(licensing::uc_deactivate_refusal),
    F.row(
        Method::GET,
        "uc_key_activations",
        "/api/v1/products/{id}/download-keys/activations",
        Need::Public,
        Handler::Read(licensing::updatercloud_activations),
    )
    .refusing(licensing::uc_check_refusal),
    F.row(
        Method::POST,
        "ls_activate",
        "/ls/{prefix}/v1/licenses/activate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::lemon_squeezy_prefixed(
                app,
                call,
                LsAction::Activate,
            ))
        }),
    )
    .refusing(licensing::ls_activate_refusal),
    F.row(
        Method::POST,
        "ls_validate",
        "/ls/{prefix}/v1/licenses/validate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::lemon_squeezy_prefixed(
                app,
                call,
                LsAction::Validate,
            ))
        }),
    )
    .refusing(licensing::ls_validate_refusal),
    F.row(
        Method::POST,
        "ls_deactivate",
        "/ls/{prefix}/v1/licenses/deactivate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::lemon_squeezy_prefixed(
                app,
                call,
                LsAction::Deactivate,
            ))
        }),
    )
    .refusing(licensing::ls_deactivate_refusal),
    F.row(
        Method::POST,
        "ls_default_activate",
        "/v1/licenses/activate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::lemon_squeezy_default(
                app,
                call,
                LsAction::Activate,
            ))
        }),
    )
    .refusing(licensing::ls_activate_refusal),
    F.row(
        Method::POST,
        "ls_default_validate",
        "/v1/licenses/validate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::lemon_squeezy_default(
                app,
                call,
                LsAction::Validate,
            ))
        }),
    )
    .refusing(licensing::ls_validate_refusal),
    F.row(
        Method::POST,
        "ls_default_deactivate",
        "/v1/licenses/deactivate",
        Need::Public,
        Handler::Write(|app, call| {
            Box::pin(licensing::lemon_squeezy_default(
                app,
                call,
                LsAction::Deactivate,
            ))
        }),
    )
    .refusing(licensing::ls_deactivate_refusal),
];

use edd::*;
pub use edd::{asks_download, root_download, root_get};
use licensing::{LsAction, UcAction};

// ----- request reading ---------------------------------------------------------------

/// A 404 in the token families' envelope (PUC, WunderUpdates and UpdaterCloud read only
/// the status).
fn unknown(what: &str) -> Error {
    Error::NotFound(what.to_owned())
}

fn prefix_of(call: &Call) -> Result<AccountPrefix, Error> {
    AccountPrefix::parse(&call.param("prefix")).map_err(|_| unknown("no such account"))
}

fn channel_of(call: &Call) -> Result<Channel, Error> {
    if call.row.path.ends_with("{channel}") {
        Channel::parse(&call.param("channel"))
            .ok_or_else(|| unknown("no such channel: use stable, rc, beta, alpha or dev"))
    } else {
        Ok(Channel::Stable)
    }
}

/// The query's pairs, decoded.
fn query(call: &Call) -> Vec<Pair<'_>> {
    call.query().map(wire::parse_form).unwrap_or_default()
}

/// The query's pairs, decoded, for reading only (no allocation for an update check's).
fn query_pairs(call: &Call) -> wire::Pairs<'_> {
    call.query().map(wire::parse_query).unwrap_or_default()
}

/// `pairs` owning their text, to outlive the request.
fn owned(pairs: Vec<Pair<'_>>) -> Vec<Pair<'static>> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.into_owned().into(), value.into_owned().into()))
        .collect()
}

fn get<'a>(pairs: &'a [Pair<'_>], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_ref())
        .filter(|v| !v.is_empty())
}

/// The `X-License-Key` header (PUC, WunderUpdates): a name made once, not parsed per request.
static X_LICENSE_KEY: header::HeaderName = header::HeaderName::from_static("x-license-key");

/// EDD's `item_id`, when it names a product: EDD's updater sends `item_id=0` (PHP's
/// `false`) when a plugin is set up by `item_name` alone, and EDD's own server reads a
/// zero (or a value that is not a number) as "not sent" and goes by the name.
fn edd_item_id(pairs: &[Pair<'_>]) -> Option<u64> {
    get(pairs, "item_id")
        .and_then(|id| id.trim().parse::<u64>().ok())
        .filter(|&id| id != 0)
}

fn header_str<'a>(call: &'a Call, name: &header::HeaderName) -> Option<&'a str> {
    call.input
        .parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

/// The site: `url`, `domain` or `site` as sent, else the WordPress User-Agent's URL;
/// normalized (SPEC §9 *Sites*). An app's `machine` stands in for it.
fn site_of(agent: Option<&str>, pairs: &[Pair<'_>]) -> Option<Place> {
    let sent = ["url", "domain", "site"].iter().find_map(|n| get(pairs, n));
    if let Some(site) = sent.or_else(|| agent.and_then(crate::model::site_from_user_agent))
        && let Ok(site) = crate::model::normalize_site(site)
    {
        return Some(Place::Site(site));
    }
    // As activations store it (trimmed, no blanks or controls, ≤ 128 characters).
    get(pairs, "machine")
        .and_then(|m| crate::model::licensing::check_machine(m).ok())
        .map(Place::Machine)
}

/// The request's `User-Agent`, read once for both [`site_of`] and [`wordpress_version`].
fn user_agent(call: &Call) -> Option<&str> {
    header_str(call, &header::USER_AGENT)
}

/// The WordPress version from `WordPress/6.4; https://…` (the [`user_agent`]).
fn wordpress_version(agent: Option<&str>) -> Option<&str> {
    let rest = agent?.strip_prefix("WordPress/")?;
    // `;` is ASCII: cutting at its byte keeps a char boundary.
    let end = rest.bytes().position(|b| b == b';').unwrap_or(rest.len());
    Some(crate::model::trim(&rest[..end]))
}

/// The base of the absolute links in answers (SPEC §8.1 item 5): `--public-url`, else the
/// request's Host (and `X-Forwarded-Proto`/`-Host` under `--trust-proxy`).
pub fn base_url<'a>(app: &'a App, call: &Call) -> std::borrow::Cow<'a, str> {
    if let Some(url) = &app.settings.public_url {
        return std::borrow::Cow::Borrowed(url);
    }
    let headers = &call.input.parts.headers;
    let forwarded = |name: &str| {
        app.settings
            .trust_proxy
            .then(|| headers.get(name).and_then(|v| v.to_str().ok()))
            .flatten()
            .map(|v| v.split(',').next_back().unwrap_or(v).trim())
    };
    let host = forwarded("x-forwarded-host")
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'.' | b':' | b'[' | b']' | b'_')
                })
        })
        .unwrap_or("localhost");
    let scheme = match forwarded("x-forwarded-proto") {
        Some("https") => "https://",
        _ => "http://",
    };
    let mut url = String::with_capacity(scheme.len() + host.len());
    url.push_str(scheme);
    url.push_str(host);
    std::borrow::Cow::Owned(url)
}

fn json_no_store(status: StatusCode, value: &Value) -> Response<Body> {
    no_store(response::json(status, value))
}

/// A rendered answer (`update::render`), `200`, not to be cached.
fn answer_no_store(json: render::Json) -> Response<Body> {
    no_store(response::json_bytes(StatusCode::OK, json.into()))
}

fn no_store(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Decides for `view` with what the caller sent.
fn answer<'a>(
    app: &App,
    call: &Call,
    view: &'a ProductView,
    check: &Check<'a>,
    base: &str,
) -> (Answer<'a>, Option<&'a str>) {
    let now = call.now;
    let links = LinkContext {
        key: &app.public.links,
        base_url: base,
        ttl_secs: app.settings.download_url_ttl.as_secs(),
    };
    let licensed = view.product.license != crate::model::LicenseModel::Free;
    let keyed = check.key.is_some_and(|k| !crate::model::trim(k).is_empty());
    let client = crate::throttle::client_addr(
        call.peer,
        &call.input.parts.headers,
        app.settings.trust_proxy,
    );
    // Past the budget the key is not even looked up: the answer says so (200).
    let blocked = licensed && keyed && app.public.key_failures.blocked(client, now);
    let unkeyed;
    let check = if blocked {
        unkeyed = Check {
            key: None,
            ..check.clone()
        };
        &unkeyed
    } else {
        check
    };
    let (answer, stable) = decide::decide(
        &app.store,
        view,
        check,
        app.public.download_keys.as_ref(),
        &app.public.vault,
        &links,
        now,
    );
    let answer = if blocked {
        with_code(answer, LicenseCode::RateLimited)
    } else {
        answer
    };
    let code = answer.offer().license.code;
    if licensed && keyed && !blocked && code == LicenseCode::NotFound {
        // An unknown key is a failed authentication for the throttle (SPEC §9).
        let _ = app.public.key_failures.fail(client, now);
    }
    // Counted for reports (SPEC §10), with the license outcome when a key was checked. A
    // HEAD (an uptime monitor, a link checker) is no site checking for updates.
    if call.input.parts.method != http::Method::HEAD {
        app.public.counts.check(
            view.product.account,
            view.product.id,
            (licensed && keyed).then_some(code),
            now,
        );
    }
    (answer, stable)
}

/// The answer with its license code replaced (and so no download link).
fn with_code(answer: Answer<'_>, code: LicenseCode) -> Answer<'_> {
    let state = crate::update::answer::LicenseState::new(code);
    match answer {
        Answer::Update(mut offer) => {
            offer.license = state;
            offer.download_link = None;
            Answer::Update(offer)
        }
        Answer::Nothing(mut offer, reason) => {
            offer.license = state;
            Answer::Nothing(offer, reason)
        }
    }
}

fn view_by_slug(
    app: &App,
    account: &AccountPrefix,
    slug: &str,
) -> Result<Option<Arc<ProductView>>, Error> {
    Ok(app.public.views.by_slug(&app.store, account, slug)?)
}

// ----- WunderUpdates, PUC, UpdaterCloud -----------------------------------------------

/// `GET /v1/public/{prefix}/plugins|themes/{slug}[/{channel}]?key=K`.
fn wunderupdates(app: &App, call: &Call, kind: ProductKind) -> Result<Response<Body>, Error> {
    let account = prefix_of(call)?;
    let channel = channel_of(call)?;
    let slug = call.param("slug");
    let view = view_by_slug(app, &account, &slug)?
        .filter(|v| v.product.kind == kind)
        .ok_or_else(|| unknown("no such product"))?;
    let pairs = query_pairs(call);
    let agent = user_agent(call);
    let site = site_of(agent, &pairs);
    let check = Check {
        channel,
        installed: get(&pairs, "installed_version").or_else(|| get(&pairs, "version")),
        site: site.as_ref(),
        key: get(&pairs, "key")
            .or_else(|| get(&pairs, "license_key"))
            .or_else(|| header_str(call, &X_LICENSE_KEY)),
        platform: get(&pairs, "wp_version").or_else(|| wordpress_version(agent)),
        php: get(&pairs, "php").or_else(|| get(&pairs, "php_version")),
    };
    let base = base_url(app, call);
    let (answer, _) = answer(app, call, &view, &check, &base);
    // The view's kind is the route's: a theme's offer says `theme_name`.
    Ok(answer_no_store(render::wunderupdates(answer.offer())))
}

/// The PUC-style check: `installed_version`, `php`, `license_key` (or `X-License-Key`).
fn puc_check<'a>(
    call: &'a Call,
    pairs: &'a [Pair<'a>],
    channel: Channel,
    agent: Option<&'a str>,
    site: Option<&'a Place>,
) -> Check<'a> {
    Check {
        channel,
        installed: get(pairs, "installed_version"),
        site,
        key: get(pairs, "license_key").or_else(|| header_str(call, &X_LICENSE_KEY)),
        platform: get(pairs, "wp_version").or_else(|| wordpress_version(agent)),
        php: get(pairs, "php"),
    }
}

/// `GET /updates/{prefix}/{slug}[/{channel}]`: the Plugin Update Checker document.
fn puc(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = prefix_of(call)?;
    let channel = channel_of(call)?;
    let slug = call.param("slug");
    let view = view_by_slug(app, &account, &slug)?.ok_or_else(|| unknown("no such product"))?;
    puc_answer(app, call, &account, &view, channel)
}

fn puc_answer(
    app: &App,
    call: &Call,
    account: &AccountPrefix,
    view: &ProductView,
    channel: Channel,
) -> Result<Response<Body>, Error> {
    let pairs = query_pairs(call);
    let agent = user_agent(call);
    let site = site_of(agent, &pairs);
    let check = puc_check(call, &pairs, channel, agent, site.as_ref());
    let base = base_url(app, call);
    let (answer, _) = answer(app, call, view, &check, &base);
    let links = Links {
        base_url: &base,
        prefix: account.as_str(),
    };
    Ok(answer_no_store(render::puc(answer.offer(), &links)))
}

/// `GET /api/v1/products/{id}/update`: the UpdaterCloud client's `{"update":{…}}`.
fn updatercloud(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let id = call
        .param("id")
        .parse::<u64>()
        .map_err(|_| unknown("no such product"))?;
    let view = app
        .public
        .views
        .by_id(&app.store, ProductId(id))?
        .ok_or_else(|| unknown("no such product"))?;
    let pairs = query_pairs(call);
    let agent = user_agent(call);
    let site = site_of(agent, &pairs);
    let channel = get(&pairs, "channel")
        .and_then(Channel::parse)
        .unwrap_or_default();
    let check = Check {
        channel,
        installed: get(&pairs, "installed_version"),
        site: site.as_ref(),
        key: get(&pairs, "download_key").or_else(|| get(&pairs, "license_key")),
        platform: get(&pairs, "wp_version").or_else(|| wordpress_version(agent)),
        php: get(&pairs, "php_version").or_else(|| get(&pairs, "php")),
    };
    let base = base_url(app, call);
    let (answer, _) = answer(app, call, &view, &check, &base);
    Ok(answer_no_store(render::updatercloud(answer.offer())))
}

/// `GET /updates/{prefix}/{slug}/changelog`: the release notes as a sandboxed HTML page.
fn changelog(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = prefix_of(call)?;
    let slug = call.param("slug");
    let view = view_by_slug(app, &account, &slug)?.ok_or_else(|| unknown("no such product"))?;
    let mut page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — changelog</title></head><body>\n<h1>{}</h1>\n",
        escape(&view.product.name),
        escape(&view.product.name)
    );
    for v in view.versions.iter().filter(|_| view.product.published) {
        page.push_str(&format!("<h2>{}</h2>\n", escape(v.version.as_str())));
        let readme = v
            .sections
            .iter()
            .find(|(k, _)| k == "changelog")
            .map(|(_, html)| html.clone());
        let notes = v
            .release_notes
            .as_deref()
            .map(crate::package::markdown_to_safe_html);
        if let Some(html) = notes.or(readme) {
            page.push_str(&html);
            page.push('\n');
        }
    }
    page.push_str("</body></html>\n");
    let mut res = response::text(StatusCode::OK, "text/html; charset=utf-8", page.into());
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src https:; style-src 'unsafe-inline'",
        ),
    );
    Ok(res)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ----- batch (ours) --------------------------------------------------------------------

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    site: Option<String>,
    items: Vec<crate::http::request::Object<BatchItem>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    slug: String,
    kind: Option<String>,
    version: Option<String>,
    channel: Option<String>,
    key: Option<String>,
}

/// `POST /v1/public/{prefix}/check`: up to 100 items; unknown slugs are left out of the
/// answer only as `license.code = not_found` items with `new_version` = their version.
fn batch(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = prefix_of(call)?;
    let body: BatchBody = crate::http::request::decode_json(&call.input.body)?;
    if body.items.len() > wire::MAX_BATCH_ITEMS {
        return Err(Error::invalid(
            "items",
            format!("at most {} items", wire::MAX_BATCH_ITEMS),
        ));
    }
    let site = body
        .site
        .as_deref()
        .and_then(|s| crate::model::normalize_site(s).ok())
        .map(Place::Site);
    let base = base_url(app, call);
    let mut items = Vec::with_capacity(body.items.len());
    for crate::http::request::Object(item) in &body.items {
        let installed = item.version.clone().unwrap_or_default();
        // A bad channel is a bad request whether or not the slug is found.
        let channel = match item.channel.as_deref() {
            None => Channel::Stable,
            Some(text) => Channel::parse(text).ok_or_else(|| {
                Error::invalid(
                    "items.channel",
                    format!("`{text}` is not one of stable, rc, beta, alpha, dev"),
                )
            })?,
        };
        let view = view_by_slug(app, &account, &item.slug)?.filter(|v| {
            item.kind
                .as_deref()
                .is_none_or(|k| ProductKind::parse(k) == Some(v.product.kind))
        });
        let Some(view) = view else {
            items.push(render::batch_unknown(&item.slug, &installed));
            continue;
        };
        let check = Check {
            channel,
            installed: item.version.as_deref(),
            site: site.as_ref(),
            key: item.key.as_deref(),
            platform: None,
            php: None,
        };
        let (answer, _) = answer(app, call, &view, &check, &base);
        items.push(render::batch_item(answer.offer(), &installed));
    }
    Ok(answer_no_store(render::batch(&items)))
}

// ----- downloads ---------------------------------------------------------------------

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    response::text(
        status,
        "text/plain; charset=utf-8",
        format!("{text}\n").into(),
    )
}

/// `GET|HEAD /dl/{token}/{filename}` (SPEC §8.4): the signed link's file, streamed with
/// `Range`/`ETag`; `410` when the link expired, its file is gone or changed, or its
/// version or product was pulled since; `403` when its key was disabled, expired, removed
/// or deactivated since, or the link was made without a key while the product was free
/// and the product needs one now; `404` for a token that is not ours.
async fn download(app: &App, call: Call) -> Result<Response<Body>, Error> {
    use crate::update::link::LinkError;
    let now = call.now;
    let claims = match app.public.links.verify(&call.param("token"), now.as_secs()) {
        Ok(claims) => claims,
        Err(LinkError::Expired) => {
            return Ok(plain(
                StatusCode::GONE,
                "This download link has expired; check for updates again.",
            ));
        }
        Err(LinkError::Malformed | LinkError::BadMac) => {
            return Ok(plain(StatusCode::NOT_FOUND, "No such download."));
        }
    };
    let Ok(account) = AccountPrefix::parse(&claims.account) else {
        return Ok(plain(StatusCode::NOT_FOUND, "No such download."));
    };
    let gone = || {
        plain(
            StatusCode::GONE,
            "This file is no longer available; check for updates again.",
        )
    };
    let Some(release) = app
        .store
        .release_of_file(&account, crate::model::FileId(claims.file_id))?
    else {
        return Ok(gone());
    };
    let Some(file) = release.file(crate::model::FileId(claims.file_id)).cloned() else {
        return Ok(gone());
    };
    if file.blob.as_bytes() != &claims.blob {
        return Ok(gone());
    }
    // Pulled (the version, or the whole product) since the link was made: no longer
    // handed out (SPEC §8.3: pulling stops the offer; a link in a site's cache stops too).
    let Some(product) = app.store.product(&account, release.product_id)? else {
        return Ok(gone());
    };
    if !release.published || !product.published {
        return Ok(gone());
    }
    // The key is checked again: disabled or expired since the link was made.
    if let Some(reason) = key_refusal(app, &product, claims.key_id, claims.site.as_deref(), now)? {
        return Ok(plain(StatusCode::FORBIDDEN, reason));
    }
    let path = app.store.blobs().path(&file.blob);
    let etag = file.blob.to_hex();
    let res = response::file(
        response::FileMeta {
            path: &path,
            len: file.size,
            content_type: &file.content_type,
            etag: &etag,
            filename: Some(&file.filename),
        },
        &call.input.parts.headers,
    )
    .await;
    let res = match res {
        // Deleted since its record was read above.
        Err(Error::NotFound(_)) => return Ok(gone()),
        res => res?,
    };
    if is_download(&call, &res) {
        app.public
            .counts
            .download(account, release.product_id, file.id, now);
    }
    Ok(res)
}

/// Whether a file response counts as a download in the reports: a `GET` that sends the
/// file from its first byte (`200`, or a `206` from byte 0). A `HEAD`, a `416`, and a
/// resumed transfer's later ranges do not count.
pub(super) fn is_download(call: &Call, res: &Response<Body>) -> bool {
    call.input.parts.method == http::Method::GET
        && match res.status() {
            StatusCode::OK => true,
            StatusCode::PARTIAL_CONTENT => res
                .headers()
                .get(http::header::CONTENT_RANGE)
                .is_some_and(|range| range.as_bytes().starts_with(b"bytes 0-")),
            _ => false,
        }
}

/// Why the download of a link made for `key_id` (`None`: made without a key) must be
/// refused now, if it must: the key was disabled, expired, removed or deactivated since,
/// or the product needs a key and the link was made without one (while it was free).
///
/// # Errors
/// The store failed.
fn key_refusal(
    app: &App,
    product: &crate::model::Product,
    key_id: Option<u64>,
    site: Option<&str>,
    now: Timestamp,
) -> Result<Option<&'static str>, Error> {
    use crate::model::LicenseModel;
    let Some(key_id) = key_id else {
        return Ok(match product.license {
            LicenseModel::Free => None,
            LicenseModel::StaticKeys | LicenseModel::DownloadKeys => {
                Some(render::edd_license_message(LicenseCode::MissingKey))
            }
        });
    };
    Ok(match product.license {
        LicenseModel::Free => None,
        LicenseModel::StaticKeys => {
            let today = decide::date_of(now);
            match product
                .static_keys
                .iter()
                .find(|k| decide::static_key_id(k) == key_id)
            {
                None => Some("The license key was removed."),
                Some(k)
                    if k.expires
                        .as_deref()
                        .is_some_and(|last| last < today.as_str()) =>
                {
                    Some("The license key has expired.")
                }
                Some(_) => None,
            }
        }
        LicenseModel::DownloadKeys => app
            .public
            .download_keys
            .recheck(&app.store, product, key_id, site, now)?
            .map(render::edd_license_message),
    })
}
