//! The update-check answers of each dialect (SPEC §8.2), rendered from an [`Offer`] /
//! [`Answer`] as `serde_json` values: one function per dialect, nothing decided here.
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
//! - `last_updated` is [`wp_datetime`] (`""` when unknown).
//! - "Nothing to offer" is the same document with the fallback version and no link,
//!   except in EDD, which has its own not-found shape ([`edd_not_found`]).

use serde_json::{Map, Value, json};

use super::answer::{Answer, Kind, LicenseCode, LicenseState, NothingReason, Offer, wp_datetime};
use super::php;

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
        format!(
            "{}/updates/{}/{slug}/changelog",
            self.base_url.trim_end_matches('/'),
            self.prefix
        )
    }
}

fn text(value: Option<&String>) -> Value {
    Value::String(value.cloned().unwrap_or_default())
}

fn last_updated(offer: &Offer) -> Value {
    Value::String(offer.last_updated.map(wp_datetime).unwrap_or_default())
}

fn pairs(items: &[(String, String)]) -> Value {
    Value::Object(
        items
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// `{"valid":true}` or `{"valid":false,"code":"…"}`.
pub fn license(state: LicenseState) -> Value {
    if state.valid() {
        json!({ "valid": true })
    } else {
        json!({ "valid": false, "code": state.code.as_str() })
    }
}

/// WunderUpdates public check (`GET /v1/public/{prefix}/plugins|themes/{slug}…`):
/// `{"plugin_name"|"theme_name","version","requires_at_least","requires_php",
/// "tested_up_to","download_link"?,"last_updated","homepage",
/// "sections":{"description","changelog"},"license"}`. Themes say `theme_name`; plugins
/// and apps `plugin_name`. Both sections are always there (`""` when missing).
pub fn wunderupdates(offer: &Offer) -> Value {
    let name_key = match offer.kind {
        Kind::Theme => "theme_name",
        Kind::Plugin | Kind::App => "plugin_name",
    };
    let mut doc = Map::new();
    doc.insert(name_key.into(), offer.name.clone().into());
    doc.insert("version".into(), offer.version.clone().into());
    doc.insert("requires_at_least".into(), text(offer.requires.as_ref()));
    doc.insert("requires_php".into(), text(offer.requires_php.as_ref()));
    doc.insert("tested_up_to".into(), text(offer.tested.as_ref()));
    if let Some(link) = &offer.download_link {
        doc.insert("download_link".into(), link.clone().into());
    }
    doc.insert("last_updated".into(), last_updated(offer));
    doc.insert("homepage".into(), text(offer.homepage.as_ref()));
    doc.insert(
        "sections".into(),
        json!({
            "description": offer.section("description").unwrap_or_default(),
            "changelog": offer.section("changelog").unwrap_or_default(),
        }),
    );
    doc.insert("license".into(), license(offer.license));
    Value::Object(doc)
}

/// Plugin Update Checker's plugin document (PUC v4/v5; also the wp-update-server style
/// `get_metadata`): a flat object of exactly `name`, `slug`, `version`, `download_url`?,
/// `homepage`, `author`, `author_homepage`, `requires`, `tested`, `requires_php`,
/// `last_updated`, `upgrade_notice`, `sections` (every section the product has), `icons`,
/// `banners`, `license`. "No update" is the same document: PUC compares versions itself.
pub fn puc_plugin(offer: &Offer) -> Value {
    let mut doc = Map::new();
    doc.insert("name".into(), offer.name.clone().into());
    doc.insert("slug".into(), offer.slug.clone().into());
    doc.insert("version".into(), offer.version.clone().into());
    if let Some(link) = &offer.download_link {
        doc.insert("download_url".into(), link.clone().into());
    }
    doc.insert("homepage".into(), text(offer.homepage.as_ref()));
    doc.insert("author".into(), text(offer.author.as_ref()));
    doc.insert(
        "author_homepage".into(),
        text(offer.author_homepage.as_ref()),
    );
    doc.insert("requires".into(), text(offer.requires.as_ref()));
    doc.insert("tested".into(), text(offer.tested.as_ref()));
    doc.insert("requires_php".into(), text(offer.requires_php.as_ref()));
    doc.insert("last_updated".into(), last_updated(offer));
    doc.insert("upgrade_notice".into(), text(offer.upgrade_notice.as_ref()));
    doc.insert("sections".into(), pairs(&offer.sections));
    doc.insert("icons".into(), pairs(&offer.icons));
    doc.insert("banners".into(), pairs(&offer.banners));
    doc.insert("license".into(), license(offer.license));
    Value::Object(doc)
}

/// Plugin Update Checker's theme document: `{"version","details_url","download_url"?}`,
/// `details_url` the release-notes page.
pub fn puc_theme(offer: &Offer, links: &Links<'_>) -> Value {
    let mut doc = Map::new();
    doc.insert("version".into(), offer.version.clone().into());
    doc.insert("details_url".into(), links.changelog(&offer.slug).into());
    if let Some(link) = &offer.download_link {
        doc.insert("download_url".into(), link.clone().into());
    }
    Value::Object(doc)
}

/// The PUC document for the product's kind: [`puc_theme`] for a theme, else
/// [`puc_plugin`].
pub fn puc(offer: &Offer, links: &Links<'_>) -> Value {
    match offer.kind {
        Kind::Theme => puc_theme(offer, links),
        Kind::Plugin | Kind::App => puc_plugin(offer),
    }
}

/// The UpdaterCloud client's check (`GET /api/v1/products/{id}/update`):
/// `{"update":{…the PUC plugin fields…}}`.
pub fn updatercloud(offer: &Offer) -> Value {
    json!({ "update": puc_plugin(offer) })
}

/// EDD `get_version`: exactly EDD's fields, every one a string — `sections`, `banners`
/// and `icons` PHP-serialized (byte lengths in UTF-8), `url` the release-notes page,
/// `package` = `download_link` (`""` when the caller may not download, `msg` then says
/// why). `stable_version` is the newest stable version the caller may see (the offered
/// version on the stable channel; EDD's `beta=1` asks for the beta channel and still
/// shows the stable one); `""` when there is none. "Nothing to offer" is
/// [`edd_not_found`].
pub fn edd_get_version(answer: &Answer, stable_version: Option<&str>, links: &Links<'_>) -> Value {
    let offer = match answer {
        Answer::Update(offer) => offer,
        Answer::Nothing(_, reason) => return edd_not_found(nothing_message(*reason)),
    };
    let package = offer.download_link.clone().unwrap_or_default();
    let msg = if offer.download_link.is_some() {
        ""
    } else {
        edd_license_message(offer.license.code)
    };
    json!({
        "new_version": offer.version,
        "stable_version": stable_version.unwrap_or_default(),
        "name": offer.name,
        "slug": offer.slug,
        "url": links.changelog(&offer.slug),
        "last_updated": last_updated(offer),
        "homepage": text(offer.homepage.as_ref()),
        "package": package,
        "download_link": package,
        "sections": php::serialize_string_map(&offer.sections),
        "banners": php::serialize_string_map(&offer.banners),
        "icons": php::serialize_string_map(&offer.icons),
        "tested": text(offer.tested.as_ref()),
        "requires": text(offer.requires.as_ref()),
        "requires_php": text(offer.requires_php.as_ref()),
        "msg": msg,
    })
}

/// EDD's answer when there is nothing to offer or no such product (SPEC §8.1 item 6):
/// `{"new_version":"","stable_version":"","sections":"","msg":…}`. EDD's updater sees
/// no newer version in it.
pub fn edd_not_found(msg: &str) -> Value {
    json!({ "new_version": "", "stable_version": "", "sections": "", "msg": msg })
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
/// or [`edd_not_found`] answer (a JSON object: key order carries no meaning; a slug given
/// twice keeps its last answer).
pub fn edd_batch<I>(items: I) -> Value
where
    I: IntoIterator<Item = (String, Value)>,
{
    Value::Object(items.into_iter().collect())
}

/// One item of our batch check (`POST /v1/public/{prefix}/check`):
/// `{"slug","version","new_version","download_link"?,"license"}` — `version` is what the
/// site has (as sent), `new_version` what is offered (for nothing to offer, the fallback).
pub fn batch_item(offer: &Offer, installed_version: &str) -> Value {
    let mut doc = Map::new();
    doc.insert("slug".into(), offer.slug.clone().into());
    doc.insert("version".into(), installed_version.into());
    doc.insert("new_version".into(), offer.version.clone().into());
    if let Some(link) = &offer.download_link {
        doc.insert("download_link".into(), link.clone().into());
    }
    doc.insert("license".into(), license(offer.license));
    Value::Object(doc)
}

/// Our batch answer: `{"status":200,"items":[…]}`, items in request order.
pub fn batch(items: Vec<Value>) -> Value {
    json!({ "status": 200, "items": items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;
    use std::collections::BTreeSet;

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
    fn example() -> Offer {
        Offer {
            kind: Kind::Plugin,
            name: "Example Plugin".into(),
            slug: "example-plugin".into(),
            version: "1.1.0".into(),
            download_link: Some(DL.into()),
            homepage: Some("https://updates.example.com/".into()),
            author: Some("Example Vendor".into()),
            author_homepage: None,
            requires: Some("5.8".into()),
            tested: Some("6.1".into()),
            requires_php: Some("7.4".into()),
            last_updated: Some(Timestamp::parse_rfc3339("2026-12-01T12:00:00Z").unwrap()),
            sections: vec![
                (
                    "description".into(),
                    "<p>An example plugin — its description, in HTML.</p>".into(),
                ),
                (
                    "changelog".into(),
                    "<h4>1.1.0</h4><ul><li>Fixed the widget.</li></ul>".into(),
                ),
            ]
            .into(),
            upgrade_notice: None,
            icons: vec![],
            banners: vec![],
            license: LicenseState::VALID,
        }
    }

    fn locked(code: LicenseCode) -> Offer {
        Offer {
            download_link: None,
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
            sections: Vec::new().into(),
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
        offer.sections = sections.into();
        offer.icons = vec![("1x".into(), "https://x/i1.png".into())];
        offer.banners = vec![
            ("low".into(), "https://x/l.png".into()),
            ("high".into(), "https://x/h.png".into()),
        ];
        offer.upgrade_notice = Some("Back up first.".into());
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
        offer.version = "1.2.0-beta.1".into();
        offer.icons = vec![("2x".into(), "https://x/é.png".into())];
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
        let nothing = Answer::nothing(example(), "1.0.0".into(), NothingReason::NoVersion);
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
        let doc = edd_batch([
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
        let nothing = Answer::nothing(example(), "1.0.0".into(), NothingReason::Filtered);
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
