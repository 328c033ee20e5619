//! The update-check answers of each dialect (SPEC §8.2), rendered from an [`Offer`] /
//! [`Answer`] into the JSON bytes of the body: one function per dialect, nothing decided
//! here. Each document is written field by field straight into one buffer (`json.rs`;
//! no `serde_json::Value` tree, nothing copied), its fields in alphabetical order: the
//! order the answers have always had on the wire (debug builds assert it). `golden.rs`
//! pins every dialect's bytes.
//!
//! Conventions shared by the dialects, from the answers the real clients accepted
//! (`tests/fixtures/dialects/`):
//! - An optional text the product lacks is `""`, not `null` or absent: the clients read
//!   these fields as PHP strings (`empty("")` is "no requirement"), and a missing property
//!   is a PHP warning on every admin page.
//! - `download_link` / `download_url` are *absent* when the caller may not download (PUC,
//!   WunderUpdates, UpdaterCloud, our batch); EDD has no optional fields, so its `package`
//!   and `download_link` are `""` then, with `msg` saying why.
//! - `license` is `{"valid":true}` when the key is valid and `{"valid":false,"code":…}`
//!   otherwise (SPEC §9's table; the WunderUpdates class accepted `{"valid":true}`).
//! - `last_updated` is [`super::answer::wp_datetime`] (`""` when unknown).
//! - "Nothing to offer" is the same document with the fallback version and no link,
//!   except in EDD, which has its own not-found shape ([`edd_not_found`]).

use super::answer::{Answer, Kind, LicenseCode, LicenseState, NothingReason, Offer};
use super::json::{Obj, push_str};
use super::php;

/// A rendered answer: the JSON bytes of the body.
pub type Json = Vec<u8>;

/// The runs of an answer's fields that come from the offered version and its product
/// alone (names, requirements, sections — PHP-serialized for EDD —, images), rendered by
/// the first answer of each dialect and copied by every later one ([`Obj::kept`]). A
/// [`super::decide::VersionView`] holds one, so it lives exactly as long as the cached
/// view it describes; an [`Offer`] points at it only when those fields are that
/// version's.
#[derive(Debug, Clone, Default)]
pub struct Kept([super::json::Kept; Run::COUNT]);

/// A cache of what the offer's other fields say: offers compare by those fields, so any
/// two are equal here.
impl PartialEq for Kept {
    fn eq(&self, _: &Kept) -> bool {
        true
    }
}

impl Eq for Kept {}

/// The runs of [`Kept`]: between the fields that change per request (links, license,
/// versions, `msg`).
#[derive(Clone, Copy)]
enum Run {
    /// `homepage`, `last_updated`.
    WuA,
    /// `plugin_name` … `theme_name`.
    WuB,
    /// `author` … `banners`.
    PucA,
    /// `homepage` … `last_updated`.
    PucB,
    /// `name` … `upgrade_notice`.
    PucC,
    /// `banners`.
    EddA,
    /// `homepage` … `last_updated`.
    EddB,
    /// `name`.
    EddC,
    /// `requires` … `slug`.
    EddD,
    /// `tested`.
    EddE,
}

impl Run {
    const COUNT: usize = 10;
}

/// The kept run `run` of `offer`, if it has its version's.
fn run<'o>(offer: &Offer<'o>, run: Run) -> Option<&'o super::json::Kept> {
    offer.kept.map(|kept| &kept.0[run as usize])
}

/// Where an answer's own links point (SPEC §8.1 item 5): the public base URL (no trailing
/// slash needed) and the account's prefix.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    pub base_url: &'a str,
    pub prefix: &'a str,
}

impl Links<'_> {
    /// The release-notes page: `{base}/updates/{prefix}/{slug}/changelog` (PUC's theme
    /// `details_url`, EDD's `url`).
    pub fn changelog(&self, slug: &str) -> String {
        let base = self.base_url.trim_end_matches('/');
        let mut url = String::with_capacity(base.len() + self.prefix.len() + slug.len() + 21);
        url.push_str(base);
        url.push_str("/updates/");
        url.push_str(self.prefix);
        url.push('/');
        url.push_str(slug);
        url.push_str("/changelog");
        url
    }
}

/// A document written by `fill` into a buffer of `capacity` bytes (a guess: the
/// answer's texts and its field names).
fn doc(capacity: usize, fill: impl FnOnce(&mut Obj<'_>)) -> Json {
    let mut out = Vec::with_capacity(capacity);
    let mut obj = Obj::new(&mut out);
    fill(&mut obj);
    obj.end();
    out
}

fn text_len(texts: &[&str]) -> usize {
    texts.iter().map(|t| t.len()).sum()
}

fn pairs_len(pairs: &[(String, String)]) -> usize {
    pairs.iter().map(|(k, v)| k.len() + v.len() + 8).sum()
}

/// `"license":{"valid":true}` or `"license":{"code":"…","valid":false}`: a fixed text
/// per code (the codes are plain snake_case, nothing to escape; `golden.rs` pins them).
fn license(obj: &mut Obj<'_>, state: LicenseState) {
    let json: &[u8] = match state.code {
        LicenseCode::Valid => br#"{"valid":true}"#,
        LicenseCode::NotFound => br#"{"code":"not_found","valid":false}"#,
        LicenseCode::Disabled => br#"{"code":"disabled","valid":false}"#,
        LicenseCode::Expired => br#"{"code":"expired","valid":false}"#,
        LicenseCode::ProductMismatch => br#"{"code":"product_mismatch","valid":false}"#,
        LicenseCode::SiteInactive => br#"{"code":"site_inactive","valid":false}"#,
        LicenseCode::ActivationLimitReached => {
            br#"{"code":"activation_limit_reached","valid":false}"#
        }
        LicenseCode::AccountLimitReached => br#"{"code":"account_limit_reached","valid":false}"#,
        LicenseCode::RateLimited => br#"{"code":"rate_limited","valid":false}"#,
        LicenseCode::MissingKey => br#"{"code":"missing_key","valid":false}"#,
    };
    obj.raw("license", json);
}

/// WunderUpdates public check (`GET /v1/public/{prefix}/plugins|themes/{slug}…`):
/// `{"plugin_name"|"theme_name","version","requires_at_least","requires_php",
/// "tested_up_to","download_link"?,"last_updated","homepage",
/// "sections":{"description","changelog"},"license"}`. Themes say `theme_name`; plugins
/// and apps `plugin_name`. Both sections are always there (`""` when missing).
pub fn wunderupdates(offer: &Offer<'_>) -> Json {
    let changelog = offer.section("changelog").unwrap_or_default();
    let description = offer.section("description").unwrap_or_default();
    let homepage = offer.homepage.unwrap_or_default();
    let link = offer.download_link.as_deref();
    let theme = offer.kind == Kind::Theme;
    let capacity = 256
        + text_len(&[
            offer.name,
            link.unwrap_or_default(),
            homepage,
            changelog,
            description,
        ]);
    doc(capacity, |d| {
        d.opt_link("download_link", link, offer.link_plain);
        d.kept(run(offer, Run::WuA), |d| {
            d.str("homepage", homepage);
            d.str("last_updated", offer.last_updated);
        });
        license(d, offer.license);
        d.kept(run(offer, Run::WuB), |d| {
            d.opt_str("plugin_name", Some(offer.name).filter(|_| !theme));
            d.str("requires_at_least", offer.requires.unwrap_or_default());
            d.str("requires_php", offer.requires_php.unwrap_or_default());
            d.obj("sections", |sections| {
                sections.str("changelog", changelog);
                sections.str("description", description);
            });
            d.str("tested_up_to", offer.tested.unwrap_or_default());
            d.opt_str("theme_name", Some(offer.name).filter(|_| theme));
        });
        d.str("version", offer.version);
    })
}

fn puc_plugin_fields(d: &mut Obj<'_>, offer: &Offer<'_>) {
    d.kept(run(offer, Run::PucA), |d| {
        d.str("author", offer.author.unwrap_or_default());
        d.str("author_homepage", offer.author_homepage.unwrap_or_default());
        d.sorted("banners", offer.banners);
    });
    d.opt_link(
        "download_url",
        offer.download_link.as_deref(),
        offer.link_plain,
    );
    d.kept(run(offer, Run::PucB), |d| {
        d.str("homepage", offer.homepage.unwrap_or_default());
        d.sorted("icons", offer.icons);
        d.str("last_updated", offer.last_updated);
    });
    license(d, offer.license);
    d.kept(run(offer, Run::PucC), |d| {
        d.str("name", offer.name);
        d.str("requires", offer.requires.unwrap_or_default());
        d.str("requires_php", offer.requires_php.unwrap_or_default());
        d.sorted("sections", offer.sections);
        d.str("slug", offer.slug);
        d.str("tested", offer.tested.unwrap_or_default());
        d.str("upgrade_notice", offer.upgrade_notice.unwrap_or_default());
    });
    d.str("version", offer.version);
}

fn puc_plugin_capacity(offer: &Offer<'_>) -> usize {
    384 + pairs_len(offer.sections)
        + pairs_len(offer.icons)
        + pairs_len(offer.banners)
        + text_len(&[
            offer.name,
            offer.download_link.as_deref().unwrap_or_default(),
            offer.homepage.unwrap_or_default(),
            offer.upgrade_notice.unwrap_or_default(),
        ])
}

/// Plugin Update Checker's plugin document (PUC v4/v5; also the wp-update-server style
/// `get_metadata`): a flat object of exactly `name`, `slug`, `version`, `download_url`?,
/// `homepage`, `author`, `author_homepage`, `requires`, `tested`, `requires_php`,
/// `last_updated`, `upgrade_notice`, `sections` (every section the product has), `icons`,
/// `banners`, `license`. "No update" is the same document: PUC compares versions itself.
pub fn puc_plugin(offer: &Offer<'_>) -> Json {
    doc(puc_plugin_capacity(offer), |d| puc_plugin_fields(d, offer))
}

/// Plugin Update Checker's theme document: `{"version","details_url","download_url"?}`,
/// `details_url` the release-notes page.
pub fn puc_theme(offer: &Offer<'_>, links: &Links<'_>) -> Json {
    let details_url = links.changelog(offer.slug);
    doc(256 + details_url.len(), |d| {
        d.str("details_url", &details_url);
        d.opt_link(
            "download_url",
            offer.download_link.as_deref(),
            offer.link_plain,
        );
        d.str("version", offer.version);
    })
}

/// The PUC document for the product's kind: [`puc_theme`] for a theme, else
/// [`puc_plugin`].
pub fn puc(offer: &Offer<'_>, links: &Links<'_>) -> Json {
    match offer.kind {
        Kind::Theme => puc_theme(offer, links),
        Kind::Plugin | Kind::App => puc_plugin(offer),
    }
}

/// The UpdaterCloud client's check (`GET /api/v1/products/{id}/update`):
/// `{"update":{…the PUC plugin fields…}}`.
pub fn updatercloud(offer: &Offer<'_>) -> Json {
    doc(16 + puc_plugin_capacity(offer), |d| {
        d.obj("update", |update| puc_plugin_fields(update, offer));
    })
}

/// EDD `get_version`: exactly EDD's fields, every one a string — `sections`, `banners`
/// and `icons` PHP-serialized (byte lengths in UTF-8), `url` the release-notes page,
/// `package` = `download_link` (`""` when the caller may not download, `msg` then says
/// why). `stable_version` is the newest stable version the caller may see (the offered
/// version on the stable channel; EDD's `beta=1` asks for the beta channel and still
/// shows the stable one); `""` when there is none. "Nothing to offer" is
/// [`edd_not_found`].
pub fn edd_get_version(
    answer: &Answer<'_>,
    stable_version: Option<&str>,
    links: &Links<'_>,
) -> Json {
    let offer = match answer {
        Answer::Update(offer) => offer,
        Answer::Nothing(_, reason) => return edd_not_found(nothing_message(*reason)),
    };
    let package = offer.download_link.as_deref().unwrap_or_default();
    let msg = if offer.download_link.is_some() {
        ""
    } else {
        edd_license_message(offer.license.code)
    };
    // The PHP strings, each serialized only when its run is written.
    let php_of = |pairs: &[(String, String)]| {
        let mut serialized = String::with_capacity(16 + pairs_len(pairs));
        php::write_string_map(&mut serialized, pairs);
        serialized
    };
    let url = links.changelog(offer.slug);
    let homepage = offer.homepage.unwrap_or_default();
    // The kept runs are copied; quotes in the PHP strings are escaped (count them twice).
    let images = pairs_len(offer.banners) + pairs_len(offer.icons);
    let capacity = 384 + 2 * package.len() + (pairs_len(offer.sections) + images) * 5 / 4;
    doc(
        capacity + url.len() + text_len(&[offer.name, homepage]),
        |d| {
            d.kept(run(offer, Run::EddA), |d| {
                d.str("banners", &php_of(offer.banners));
            });
            // The link twice (`download_link`, `package`); `""` when there is none.
            let link = Some(package);
            d.opt_link("download_link", link, offer.link_plain);
            d.kept(run(offer, Run::EddB), |d| {
                d.str("homepage", homepage);
                d.str("icons", &php_of(offer.icons));
                d.str("last_updated", offer.last_updated);
            });
            d.str("msg", msg);
            d.kept(run(offer, Run::EddC), |d| d.str("name", offer.name));
            d.str("new_version", offer.version);
            d.opt_link("package", link, offer.link_plain);
            d.kept(run(offer, Run::EddD), |d| {
                d.str("requires", offer.requires.unwrap_or_default());
                d.str("requires_php", offer.requires_php.unwrap_or_default());
                d.str("sections", &php_of(offer.sections));
                d.str("slug", offer.slug);
            });
            d.str("stable_version", stable_version.unwrap_or_default());
            d.kept(run(offer, Run::EddE), |d| {
                d.str("tested", offer.tested.unwrap_or_default());
            });
            d.str("url", &url);
        },
    )
}

/// EDD's answer when there is nothing to offer or no such product (SPEC §8.1 item 6):
/// `{"new_version":"","stable_version":"","sections":"","msg":…}`. EDD's updater sees
/// no newer version in it.
pub fn edd_not_found(msg: &str) -> Json {
    doc(96 + msg.len(), |d| {
        d.str("msg", msg);
        d.str("new_version", "");
        d.str("sections", "");
        d.str("stable_version", "");
    })
}

/// EDD's answer to a request without an action it knows (`edd_action` missing or not
/// one of EDD's): `{"success":false,"license":"invalid","error":"missing"|"invalid_action"}`.
pub fn edd_unknown_action(action: &str) -> Json {
    doc(64, |d| {
        d.str(
            "error",
            if action.is_empty() {
                "missing"
            } else {
                "invalid_action"
            },
        );
        d.str("license", "invalid");
        d.bool("success", false);
    })
}

/// EDD's answer to a request whose body could not be read (too large, too slow, not
/// readable): `200` like every EDD answer (SPEC §9.2), the failure of both a license
/// action and `get_version` (`success` false, no `sections`, so no update), with our
/// error code and the reason in `msg`.
pub fn edd_refused(code: &str, message: &str) -> Json {
    doc(64 + code.len() + message.len(), |d| {
        d.str("error", code);
        d.str("license", "invalid");
        d.str("msg", message);
        d.bool("success", false);
    })
}

/// EDD's `msg` for an unknown product (an unknown `item_id`, `item_name` or prefix).
pub const EDD_UNKNOWN_PRODUCT: &str = "No product matches this request.";

/// EDD's `msg` for each reason there is nothing to offer.
pub const fn nothing_message(reason: NothingReason) -> &'static str {
    match reason {
        NothingReason::Unpublished => "This product is not published.",
        NothingReason::NoVersion => "No version of this product is published on this channel.",
        NothingReason::Filtered => "No version of this product is available for this site yet.",
    }
}

/// EDD's `msg` when a version is announced without a download link (SPEC §8.1 item 2).
pub const fn edd_license_message(code: LicenseCode) -> &'static str {
    match code {
        LicenseCode::Valid => "",
        LicenseCode::MissingKey => "A license key is required to download this update.",
        LicenseCode::NotFound => "The license key is not valid.",
        LicenseCode::Disabled => "The license key is disabled.",
        LicenseCode::Expired => "The license key has expired.",
        LicenseCode::ProductMismatch => "The license key is not valid for this product.",
        LicenseCode::SiteInactive => "The license key is not activated for this site.",
        LicenseCode::ActivationLimitReached => "The license key has reached its activation limit.",
        LicenseCode::AccountLimitReached => "The vendor's activation limit has been reached.",
        LicenseCode::RateLimited => "Too many requests; please try again later.",
    }
}

/// EDD's batch `get_version`: an object keyed by slug, each value an [`edd_get_version`]
/// or [`edd_not_found`] answer (a JSON object: keys in order, as a `serde_json::Map`
/// wrote them; a slug given twice keeps its last answer).
pub fn edd_batch<I>(items: I) -> Json
where
    I: IntoIterator<Item = (String, Json)>,
{
    let mut items: Vec<(String, Json)> = items.into_iter().collect();
    // Stable: of a slug given twice, the last answer stays last and is kept.
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(
        2 + items
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>(),
    );
    out.push(b'{');
    for (i, (slug, doc)) in items.iter().enumerate() {
        if items.get(i + 1).is_some_and(|next| next.0 == *slug) {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        push_str(&mut out, slug);
        out.push(b':');
        out.extend_from_slice(doc);
    }
    out.push(b'}');
    out
}

fn batch_fields(
    d: &mut Obj<'_>,
    link: Option<&str>,
    state: LicenseState,
    new_version: &str,
    slug: &str,
    installed_version: &str,
) {
    d.opt_str("download_link", link);
    license(d, state);
    d.str("new_version", new_version);
    d.str("slug", slug);
    d.str("version", installed_version);
}

/// One item of our batch check (`POST /v1/public/{prefix}/check`):
/// `{"slug","version","new_version","download_link"?,"license"}` — `version` is what the
/// site has (as sent), `new_version` what is offered (for nothing to offer, the fallback).
pub fn batch_item(offer: &Offer<'_>, installed_version: &str) -> Json {
    let link = offer.download_link.as_deref();
    let capacity = 128 + text_len(&[link.unwrap_or_default(), offer.slug, installed_version]);
    doc(capacity, |d| {
        batch_fields(
            d,
            link,
            offer.license,
            offer.version,
            offer.slug,
            installed_version,
        );
    })
}

/// Our batch's item for a slug the account does not have: `license.code = not_found`,
/// `new_version` = the version sent.
pub fn batch_unknown(slug: &str, installed_version: &str) -> Json {
    doc(96 + slug.len() + 2 * installed_version.len(), |d| {
        let state = LicenseState::new(LicenseCode::NotFound);
        batch_fields(d, None, state, installed_version, slug, installed_version);
    })
}

/// Our batch answer: `{"status":200,"items":[…]}`, items in request order.
pub fn batch(items: &[Json]) -> Json {
    let mut out = Vec::with_capacity(32 + items.iter().map(|i| i.len() + 1).sum::<usize>());
    out.extend_from_slice(b"{\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"],\"status\":200}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeSet;

    // The renderers, read back as JSON values for field-by-field comparisons (the exact
    // bytes are `golden.rs`'s).
    fn v(json: Json) -> Value {
        serde_json::from_slice(&json).unwrap()
    }
    fn wunderupdates(offer: &Offer<'_>) -> Value {
        v(super::wunderupdates(offer))
    }
    fn puc_plugin(offer: &Offer<'_>) -> Value {
        v(super::puc_plugin(offer))
    }
    fn puc(offer: &Offer<'_>, links: &Links<'_>) -> Value {
        v(super::puc(offer, links))
    }
    fn updatercloud(offer: &Offer<'_>) -> Value {
        v(super::updatercloud(offer))
    }
    fn edd_get_version(answer: &Answer<'_>, stable: Option<&str>, links: &Links<'_>) -> Value {
        v(super::edd_get_version(answer, stable, links))
    }
    fn edd_not_found(msg: &str) -> Value {
        v(super::edd_not_found(msg))
    }
    fn edd_batch(items: Vec<(String, Value)>) -> Value {
        v(super::edd_batch(items.into_iter().map(|(slug, doc)| {
            (slug, serde_json::to_vec(&doc).unwrap())
        })))
    }
    fn batch_item(offer: &Offer<'_>, installed: &str) -> Value {
        v(super::batch_item(offer, installed))
    }
    fn batch(items: Vec<Value>) -> Value {
        let items: Vec<Json> = items
            .iter()
            .map(|i| serde_json::to_vec(i).unwrap())
            .collect();
        v(super::batch(&items))
    }

    /// `pairs` as the view would hold them (leaked: a test's offers borrow them).
    fn leak(pairs: &[(&str, &str)]) -> &'static [(String, String)] {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
            .leak()
    }

    const WUNDER: &str = include_str!("../../tests/fixtures/dialects/wunderupdates-plugin.json");
    const PUC: &str = include_str!("../../tests/fixtures/dialects/puc-plugin.json");
    const EDD: &str = include_str!("../../tests/fixtures/dialects/edd-get_version.json");

    const LINKS: Links<'static> = Links {
        base_url: "https://updates.example.com/",
        prefix: "acme",
    };
    const DL: &str = "https://updates.example.com/dl/AbCdEf0123456789/example-plugin.zip";

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// The fixtures' product, as the decision would hand it over.
    fn example() -> Offer<'static> {
        Offer {
            kind: Kind::Plugin,
            name: "Example Plugin",
            slug: "example-plugin",
            version: "1.1.0",
            download_link: Some(DL.into()),
            link_plain: false,
            homepage: Some("https://updates.example.com/"),
            author: Some("Example Vendor"),
            author_homepage: None,
            requires: Some("5.8"),
            tested: Some("6.1"),
            requires_php: Some("7.4"),
            last_updated: "2026-12-01 12:00:00",
            sections: leak(&[
                (
                    "description",
                    "<p>An example plugin — its description, in HTML.</p>",
                ),
                (
                    "changelog",
                    "<h4>1.1.0</h4><ul><li>Fixed the widget.</li></ul>",
                ),
            ]),
            upgrade_notice: None,
            icons: &[],
            banners: &[],
            license: LicenseState::VALID,
            kept: None,
        }
    }

    fn locked(code: LicenseCode) -> Offer<'static> {
        Offer {
            download_link: None,
            link_plain: false,
            license: LicenseState::new(code),
            ..example()
        }
    }

    fn keys(value: &Value) -> BTreeSet<&str> {
        value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn type_of(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Every key of `expected` is in `actual` with a value of the same JSON type, nested
    /// objects compared alike; returns the keys `actual` has beyond `expected`.
    fn extra_keys(actual: &Value, expected: &Value, path: &str) -> BTreeSet<String> {
        let (a, e) = (actual.as_object().unwrap(), expected.as_object().unwrap());
        let mut extra = BTreeSet::new();
        for (key, e_value) in e {
            let a_value = a
                .get(key)
                .unwrap_or_else(|| panic!("{path}{key} is missing"));
            assert_eq!(type_of(a_value), type_of(e_value), "type of {path}{key}");
            if e_value.is_object() {
                extra.extend(extra_keys(a_value, e_value, &format!("{path}{key}.")));
            }
        }
        extra.extend(
            a.keys()
                .filter(|k| !e.contains_key(*k))
                .map(|k| format!("{path}{k}")),
        );
        extra
    }

    #[test]
    fn wunderupdates_equals_the_fixture() {
        assert_eq!(wunderupdates(&example()), fixture(WUNDER));
    }

    #[test]
    fn wunderupdates_without_a_download_and_for_themes() {
        let doc = wunderupdates(&locked(LicenseCode::Expired));
        let mut expected = fixture(WUNDER);
        let object = expected.as_object_mut().unwrap();
        object.remove("download_link");
        object.insert("license".into(), json!({"valid": false, "code": "expired"}));
        assert_eq!(doc, expected);

        let theme = wunderupdates(&Offer {
            kind: Kind::Theme,
            sections: &[],
            requires: None,
            ..example()
        });
        assert_eq!(theme["theme_name"], "Example Plugin");
        assert!(theme.get("plugin_name").is_none());
        assert_eq!(
            theme["sections"],
            json!({"description": "", "changelog": ""})
        );
        assert_eq!(theme["requires_at_least"], "");
    }

    #[test]
    fn puc_plugin_has_the_fixture_fields_and_exactly_the_spec_extras() {
        let doc = puc_plugin(&example());
        let expected = fixture(PUC);
        let extra = extra_keys(&doc, &expected, "");
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        assert_eq!(
            extra,
            [
                "author_homepage",
                "banners",
                "icons",
                "license",
                "upgrade_notice"
            ]
        );
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&doc[key], value, "{key}");
        }
        assert_eq!(doc["license"], json!({"valid": true}));
        assert_eq!(doc["icons"], json!({}));
        assert_eq!(doc["upgrade_notice"], "");
    }

    #[test]
    fn puc_plugin_carries_every_section_icon_and_banner() {
        let mut offer = locked(LicenseCode::SiteInactive);
        let mut sections = offer.sections.to_vec();
        sections.push(("faq".into(), "<p>Q?</p>".into()));
        offer.sections = sections.leak();
        offer.icons = leak(&[("1x", "https://x/i1.png")]);
        offer.banners = leak(&[("low", "https://x/l.png"), ("high", "https://x/h.png")]);
        offer.upgrade_notice = Some("Back up first.");
        let doc = puc_plugin(&offer);
        assert!(doc.get("download_url").is_none());
        assert_eq!(
            keys(&doc["sections"]),
            BTreeSet::from(["changelog", "description", "faq"])
        );
        assert_eq!(doc["icons"], json!({"1x": "https://x/i1.png"}));
        assert_eq!(doc["banners"]["high"], "https://x/h.png");
        assert_eq!(doc["upgrade_notice"], "Back up first.");
        assert_eq!(
            doc["license"],
            json!({"valid": false, "code": "site_inactive"})
        );
    }

    #[test]
    fn puc_theme_and_dispatch() {
        let theme = Offer {
            kind: Kind::Theme,
            ..example()
        };
        let doc = puc(&theme, &LINKS);
        assert_eq!(
            doc,
            json!({
                "version": "1.1.0",
                "details_url": "https://updates.example.com/updates/acme/example-plugin/changelog",
                "download_url": DL,
            })
        );
        let locked_theme = Offer {
            kind: Kind::Theme,
            ..locked(LicenseCode::MissingKey)
        };
        assert_eq!(
            keys(&puc(&locked_theme, &LINKS)),
            BTreeSet::from(["details_url", "version"])
        );
        assert_eq!(puc(&example(), &LINKS), puc_plugin(&example()));
    }

    #[test]
    fn updatercloud_wraps_the_puc_plugin_document() {
        let offer = locked(LicenseCode::NotFound);
        assert_eq!(updatercloud(&offer), json!({"update": puc_plugin(&offer)}));
    }

    #[test]
    fn edd_get_version_matches_the_fixture_field_by_field() {
        let doc = edd_get_version(&Answer::Update(example()), Some("1.1.0"), &LINKS);
        let expected = fixture(EDD);
        assert!(extra_keys(&doc, &expected, "").is_empty());
        for (key, value) in expected.as_object().unwrap() {
            if key == "url" {
                // The fixture's vendor ran another changelog page; ours is fixed.
                assert_eq!(
                    doc[key],
                    "https://updates.example.com/updates/acme/example-plugin/changelog"
                );
            } else {
                assert_eq!(&doc[key], value, "{key}");
            }
        }
    }

    #[test]
    fn edd_get_version_without_a_download() {
        let mut offer = locked(LicenseCode::Expired);
        offer.version = "1.2.0-beta.1";
        offer.icons = leak(&[("2x", "https://x/é.png")]);
        offer.homepage = None;
        let doc = edd_get_version(&Answer::Update(offer), Some("1.1.0"), &LINKS);
        assert!(extra_keys(&doc, &fixture(EDD), "").is_empty());
        assert_eq!(doc["new_version"], "1.2.0-beta.1");
        assert_eq!(doc["stable_version"], "1.1.0");
        assert_eq!(doc["package"], "");
        assert_eq!(doc["download_link"], "");
        assert_eq!(doc["homepage"], "");
        assert_eq!(doc["msg"], "The license key has expired.");
        assert_eq!(doc["icons"], r#"a:1:{s:2:"2x";s:16:"https://x/é.png";}"#);
        let none = edd_get_version(&Answer::Update(example()), None, &LINKS);
        assert_eq!(none["stable_version"], "");
    }

    #[test]
    fn edd_not_found_shape() {
        let expected_keys = BTreeSet::from(["msg", "new_version", "sections", "stable_version"]);
        let nothing = Answer::nothing(example(), "1.0.0", NothingReason::NoVersion);
        let doc = edd_get_version(&nothing, Some("1.0.0"), &LINKS);
        assert_eq!(keys(&doc), expected_keys);
        assert_eq!(doc["new_version"], "");
        assert_eq!(doc["stable_version"], "");
        assert_eq!(doc["sections"], "");
        assert_eq!(doc["msg"], nothing_message(NothingReason::NoVersion));
        let unknown = edd_not_found(EDD_UNKNOWN_PRODUCT);
        assert_eq!(keys(&unknown), expected_keys);
        for reason in [
            NothingReason::Unpublished,
            NothingReason::NoVersion,
            NothingReason::Filtered,
        ] {
            assert!(!nothing_message(reason).is_empty());
        }
        for code in LicenseCode::ALL {
            assert_eq!(
                edd_license_message(code).is_empty(),
                code == LicenseCode::Valid
            );
        }
    }

    #[test]
    fn edd_batch_is_keyed_by_slug() {
        let doc = edd_batch(vec![
            (
                "example-plugin".to_owned(),
                edd_get_version(&Answer::Update(example()), Some("1.1.0"), &LINKS),
            ),
            ("gone".to_owned(), edd_not_found(EDD_UNKNOWN_PRODUCT)),
        ]);
        assert_eq!(keys(&doc), BTreeSet::from(["example-plugin", "gone"]));
        assert_eq!(doc["example-plugin"]["new_version"], "1.1.0");
        assert_eq!(doc["gone"]["new_version"], "");
    }

    #[test]
    fn nothing_to_offer_is_the_same_document_without_a_link() {
        let nothing = Answer::nothing(example(), "1.0.0", NothingReason::Filtered);
        let wu = wunderupdates(nothing.offer());
        assert_eq!(wu["version"], "1.0.0");
        assert!(wu.get("download_link").is_none());
        let puc_doc = puc_plugin(nothing.offer());
        assert_eq!(puc_doc["version"], "1.0.0");
        assert!(puc_doc.get("download_url").is_none());
    }

    #[test]
    fn batch_items() {
        let item = batch_item(&example(), "1.0.0");
        assert_eq!(
            item,
            json!({
                "slug": "example-plugin",
                "version": "1.0.0",
                "new_version": "1.1.0",
                "download_link": DL,
                "license": {"valid": true},
            })
        );
        let locked_item = batch_item(&locked(LicenseCode::RateLimited), "1.0.0");
        assert_eq!(
            keys(&locked_item),
            BTreeSet::from(["license", "new_version", "slug", "version"])
        );
        assert_eq!(locked_item["license"]["code"], "rate_limited");
        assert_eq!(
            batch(vec![item.clone()]),
            json!({"status": 200, "items": [item]})
        );
    }

    #[test]
    fn links_join_without_double_slashes() {
        let bare = Links {
            base_url: "http://127.0.0.1:8080",
            prefix: "p1x",
        };
        assert_eq!(
            bare.changelog("s"),
            "http://127.0.0.1:8080/updates/p1x/s/changelog"
        );
        assert_eq!(
            LINKS.changelog("s"),
            "https://updates.example.com/updates/acme/s/changelog"
        );
    }
}
