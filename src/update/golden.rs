//! The exact bytes every dialect's renderer puts on the wire (SPEC §8.2), for a
//! representative set of answers: with and without a download link, nothing to offer,
//! every license code, EDD's PHP-serialized sections, icons and banners, EDD's batch and
//! failure shapes, our batch, awkward text (quotes, backslashes, control characters,
//! non-ASCII, HTML). Field order included: the expected text is
//! `tests/fixtures/dialects/rendered.txt`, generated from the `serde_json::Value`
//! renderers this crate had before the borrowed ones (commit 14ce24d) and kept as the
//! reference.
//!
//! `UPKEEP_BLESS=1 cargo test --lib update::golden` rewrites the file from the current
//! code (then review the diff: any change there is a change on the wire).

use super::answer::{Answer, Kind, LicenseCode, LicenseState, NothingReason, Offer, wp_datetime};
use super::render::{self, Links};
use crate::model::Timestamp;

const EXPECTED_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dialects/rendered.txt"
);

const LINKS: Links<'static> = Links {
    base_url: "https://updates.example.com/",
    prefix: "acme",
};
const DL: &str = "https://updates.example.com/dl/AbCdEf0123456789/example-plugin.zip";

/// `items` as a view holds them (leaked: the offers borrow them).
fn pairs(items: &[(&str, &str)]) -> &'static [(String, String)] {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<Vec<_>>()
        .leak()
}

/// `time` as a view holds it (leaked: the offers borrow it).
fn datetime(time: Timestamp) -> &'static str {
    wp_datetime(time).leak()
}

/// The fixtures' plugin, offered with a link.
fn plain() -> Offer<'static> {
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
        last_updated: datetime(Timestamp::parse_rfc3339("2026-12-01T12:00:00Z").unwrap()),
        sections: pairs(&[
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

/// Everything set, in awkward text: every optional field, more sections (one key twice),
/// icons and banners, quotes, backslashes, control characters and non-ASCII.
fn rich() -> Offer<'static> {
    Offer {
        kind: Kind::Plugin,
        name: "Ünïcode \"Quoted\" \\ Plugin\t🦀",
        slug: "unicode-plugin",
        version: "2.0.0-beta.1",
        download_link: Some(
            "https://updates.example.com/dl/Zz_-09/unicode%20plugin.zip?x=1&y=</script>".into(),
        ),
        link_plain: false,
        homepage: Some("https://example.com/a/b?c=d&e=f"),
        author: Some("Jöhn \u{1}O'Neil\u{7f}"),
        author_homepage: Some("https://example.com/~john/"),
        requires: Some("6.0"),
        tested: Some("6.7.1"),
        requires_php: Some("8.1"),
        last_updated: datetime(Timestamp::from_millis(951_782_401_999)),
        sections: pairs(&[
            ("description", "<p>Line one\nline two\r\n\u{2028}</p>"),
            ("installation", "<ol><li>Upload</li></ol>"),
            ("faq", "<dl><dt>Q \"why\"?</dt><dd>A\\B</dd></dl>"),
            ("changelog", "<h4>2.0.0</h4>"),
            ("faq", "<p>second faq wins in maps</p>"),
            ("7", "<p>an integer-like key</p>"),
        ]),
        upgrade_notice: Some("<p>Back up first — really.</p>"),
        icons: pairs(&[
            ("1x", "https://x/i1.png"),
            ("2x", "https://x/é.png"),
            ("svg", "https://x/i.svg"),
        ]),
        banners: pairs(&[("low", "https://x/l.png"), ("high", "https://x/h.png")]),
        license: LicenseState::VALID,
        kept: None,
    }
}

/// Every optional text missing, no sections, no time.
fn bare() -> Offer<'static> {
    Offer {
        kind: Kind::Plugin,
        name: "Bare",
        slug: "bare",
        version: "0.1.0",
        download_link: None,
        link_plain: false,
        homepage: None,
        author: None,
        author_homepage: None,
        requires: None,
        tested: None,
        requires_php: None,
        last_updated: "",
        sections: pairs(&[]),
        upgrade_notice: None,
        icons: &[],
        banners: &[],
        license: LicenseState::new(LicenseCode::MissingKey),
        kept: None,
    }
}

fn locked(offer: Offer<'static>, code: LicenseCode) -> Offer<'static> {
    Offer {
        download_link: None,
        link_plain: false,
        license: LicenseState::new(code),
        ..offer
    }
}

fn kind(offer: Offer<'static>, kind: Kind) -> Offer<'static> {
    Offer { kind, ..offer }
}

/// The offers every WordPress-facing dialect is rendered for, by name.
fn offers() -> Vec<(String, Offer<'static>)> {
    let mut all = vec![
        ("plain".to_owned(), plain()),
        ("rich".to_owned(), rich()),
        ("bare".to_owned(), bare()),
        ("theme".to_owned(), kind(plain(), Kind::Theme)),
        (
            "theme-locked".to_owned(),
            kind(locked(rich(), LicenseCode::SiteInactive), Kind::Theme),
        ),
        ("app".to_owned(), kind(rich(), Kind::App)),
    ];
    for code in LicenseCode::ALL {
        all.push((format!("locked-{}", code.as_str()), locked(plain(), code)));
    }
    for (name, reason) in [
        ("unpublished", NothingReason::Unpublished),
        ("no-version", NothingReason::NoVersion),
        ("filtered", NothingReason::Filtered),
    ] {
        let nothing = Answer::nothing(rich(), "1.0.0", reason);
        all.push((format!("nothing-{name}"), nothing.offer().clone()));
    }
    all
}

/// Every EDD `get_version` answer, by name.
fn edd_answers() -> Vec<(String, Answer<'static>, Option<&'static str>)> {
    let mut all = vec![
        ("plain".to_owned(), Answer::Update(plain()), Some("1.1.0")),
        ("rich".to_owned(), Answer::Update(rich()), Some("1.9.0")),
        ("rich-no-stable".to_owned(), Answer::Update(rich()), None),
        ("bare".to_owned(), Answer::Update(bare()), None),
    ];
    for code in LicenseCode::ALL {
        all.push((
            format!("locked-{}", code.as_str()),
            Answer::Update(locked(rich(), code)),
            Some("1.0.0"),
        ));
    }
    for (name, reason) in [
        ("unpublished", NothingReason::Unpublished),
        ("no-version", NothingReason::NoVersion),
        ("filtered", NothingReason::Filtered),
    ] {
        all.push((
            format!("nothing-{name}"),
            Answer::nothing(plain(), "1.0.0", reason),
            Some("1.0.0"),
        ));
    }
    all
}

/// `render(offer)`, after checking that the answer is the same with kept runs
/// (`render::Kept`): when they are written, and when they are copied.
#[track_caller]
fn same_kept(
    offer: &Offer<'static>,
    render: impl Fn(&Offer<'static>) -> render::Json,
) -> render::Json {
    let fresh = render(offer);
    let kept = Offer {
        kept: Some(Box::leak(Box::default())),
        ..offer.clone()
    };
    assert_eq!(render(&kept), fresh, "kept runs written");
    assert_eq!(render(&kept), fresh, "kept runs copied");
    // A link known to be plain is written as it is, with the same bytes.
    if offer
        .download_link
        .as_deref()
        .is_some_and(super::json::is_plain)
    {
        let plain = Offer {
            link_plain: true,
            ..offer.clone()
        };
        assert_eq!(render(&plain), fresh, "plain link copied");
    }
    fresh
}

/// `(case name, the exact bytes)` for every case.
fn rendered() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut put = |name: String, json: render::Json| {
        out.push((name, String::from_utf8(json).unwrap()));
    };
    for (name, offer) in offers() {
        put(
            format!("wunderupdates {name}"),
            same_kept(&offer, render::wunderupdates),
        );
        put(
            format!("puc {name}"),
            same_kept(&offer, |o| render::puc(o, &LINKS)),
        );
        put(
            format!("puc-plugin {name}"),
            same_kept(&offer, render::puc_plugin),
        );
        put(
            format!("updatercloud {name}"),
            same_kept(&offer, render::updatercloud),
        );
        put(
            format!("batch-item {name}"),
            render::batch_item(&offer, "1.0.0"),
        );
    }
    for (name, answer, stable) in edd_answers() {
        let edd = |offer: &Offer<'static>| {
            let answer = match &answer {
                Answer::Update(_) => Answer::Update(offer.clone()),
                Answer::Nothing(_, reason) => Answer::Nothing(offer.clone(), *reason),
            };
            render::edd_get_version(&answer, stable, &LINKS)
        };
        put(format!("edd {name}"), same_kept(answer.offer(), edd));
    }
    put(
        "edd unknown-product".to_owned(),
        render::edd_not_found(render::EDD_UNKNOWN_PRODUCT),
    );
    put(
        "edd odd-message".to_owned(),
        render::edd_not_found("`products[a\"b]` is not products[<slug>][<field>]."),
    );
    put(
        "edd batch".to_owned(),
        render::edd_batch([
            (
                "zeta".to_owned(),
                render::edd_get_version(&Answer::Update(plain()), Some("1.1.0"), &LINKS),
            ),
            (
                "alpha".to_owned(),
                render::edd_not_found(render::EDD_UNKNOWN_PRODUCT),
            ),
            (
                "mid".to_owned(),
                render::edd_get_version(
                    &Answer::Update(locked(rich(), LicenseCode::Expired)),
                    None,
                    &LINKS,
                ),
            ),
            (
                "alpha".to_owned(),
                render::edd_get_version(
                    &Answer::nothing(bare(), "0.0.0", NothingReason::NoVersion),
                    None,
                    &LINKS,
                ),
            ),
        ]),
    );
    put("edd batch-empty".to_owned(), render::edd_batch([]));
    // The shapes the adapters (`api/public`) wrote themselves.
    for (error, action) in [("missing", ""), ("invalid_action", "activate")] {
        put(
            format!("edd failure {error}"),
            render::edd_unknown_action(action),
        );
    }
    put(
        "batch-item unknown".to_owned(),
        render::batch_unknown("gone\"<slug>", "1.0"),
    );
    let items = vec![
        render::batch_item(&plain(), "1.0.0"),
        render::batch_item(&locked(rich(), LicenseCode::RateLimited), ""),
    ];
    put("batch two".to_owned(), render::batch(&items));
    put("batch none".to_owned(), render::batch(&[]));
    out
}

fn to_text(cases: &[(String, String)]) -> String {
    let mut text = String::new();
    for (name, bytes) in cases {
        assert!(!bytes.contains('\n'), "{name}: a raw newline");
        text.push_str("### ");
        text.push_str(name);
        text.push('\n');
        text.push_str(bytes);
        text.push('\n');
    }
    text
}

#[test]
fn every_dialect_renders_exactly_the_reference_bytes() {
    let cases = rendered();
    let names: std::collections::BTreeSet<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    let actual = to_text(&cases);
    if std::env::var_os("UPKEEP_BLESS").is_some() {
        std::fs::write(EXPECTED_PATH, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(EXPECTED_PATH).unwrap();
    let expected: Vec<(&str, &str)> = expected
        .split("### ")
        .skip(1)
        .map(|case| {
            let (name, bytes) = case.split_once('\n').unwrap();
            (name, bytes.strip_suffix('\n').unwrap())
        })
        .collect();
    assert_eq!(
        expected.len(),
        cases.len(),
        "the reference has every case, no more"
    );
    for ((name, bytes), (e_name, e_bytes)) in cases.iter().zip(&expected) {
        assert_eq!(name, e_name, "case order");
        assert_eq!(bytes, e_bytes, "{name}: the bytes on the wire changed");
    }
}

/// One version's kept runs serve every answer about it: each license outcome (with or
/// without a link, another `msg`), nothing to offer, another installed version.
#[test]
fn kept_runs_are_shared_by_every_answer_about_a_version() {
    for base in [plain(), rich(), bare(), kind(rich(), Kind::Theme)] {
        let kept: &'static render::Kept = Box::leak(Box::default());
        let mut answers = vec![Answer::Update(base.clone())];
        for code in LicenseCode::ALL {
            answers.push(Answer::Update(locked(base.clone(), code)));
        }
        answers.push(Answer::nothing(
            base.clone(),
            "0.9.0",
            NothingReason::Filtered,
        ));
        // Twice round: the first answer writes the runs, every later one copies them.
        for answer in answers.iter().chain(&answers) {
            let offer = answer.offer();
            let with = Offer {
                kept: Some(kept),
                ..offer.clone()
            };
            let answer_with = match answer {
                Answer::Update(_) => Answer::Update(with.clone()),
                Answer::Nothing(_, reason) => Answer::Nothing(with.clone(), *reason),
            };
            assert_eq!(render::wunderupdates(&with), render::wunderupdates(offer));
            assert_eq!(render::puc(&with, &LINKS), render::puc(offer, &LINKS));
            assert_eq!(render::updatercloud(&with), render::updatercloud(offer));
            assert_eq!(
                render::edd_get_version(&answer_with, Some("1.0.0"), &LINKS),
                render::edd_get_version(answer, Some("1.0.0"), &LINKS)
            );
        }
    }
}
