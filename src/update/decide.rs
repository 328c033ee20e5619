//! The one decision every update-check dialect renders (SPEC §8.1): which version to
//! offer this caller, and may it download it.
//!
//! Update checks are the hot path (every site, twice a day, forever), so the catalogue is
//! read from [`Views`]: per product, an immutable [`ProductView`] built from the store
//! once and kept while the store's write generation (`Store::generation`) has not moved.
//! A check then costs a map lookup, a walk down the product's published versions (newest
//! first) and, with a link to hand out, one MAC: no store read, no write, no allocation
//! beyond the answer's own.

use super::answer::{Answer, Kind, LicenseCode, LicenseState, NothingReason, Offer};
use super::link::{Grant, LinkKey};
use crate::model::catalog::{StaticKey, check_static_key};
use crate::model::{
    AccountPrefix, BlobHash, Channel, FileId, LicenseModel, Maturity, PlatformVersion, Product,
    ProductId, ProductKind, Release, Timestamp, Version, minimum_met, rollout_admits,
};
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A published version as the checks see it.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub version: Version,
    pub maturity: Maturity,
    pub rollout: u8,
    pub requires: Option<String>,
    pub tested: Option<String>,
    pub requires_php: Option<String>,
    /// `requires` and `requires_php` as minimums to compare (`None`: no requirement, or
    /// none that reads as a version), parsed once here.
    pub minimums: [Option<PlatformVersion>; 2],
    pub released_at: Option<Timestamp>,
    /// `released_at` as answers show it ([`super::answer::wp_datetime`], `""` when
    /// unknown), formatted once here.
    pub last_updated: String,
    pub sections: Vec<(String, String)>,
    pub release_notes: Option<String>,
    /// The sections an answer shows (readme sections, else the product description and the
    /// release notes, rendered to safe HTML): rendered once, when the view is built, and
    /// shared by every answer.
    pub shown: Arc<[(String, String)]>,
    /// The readme's upgrade notice, if any.
    pub upgrade_notice: Option<String>,
    /// The primary file: what a download link hands out.
    pub file: FileId,
    pub blob: BlobHash,
    pub filename: String,
    /// Answers' fields from this version and its product, rendered once per dialect.
    pub kept: super::render::Kept,
}

/// A product with its offerable versions, newest first.
#[derive(Debug, Clone)]
pub struct ProductView {
    pub product: Product,
    pub versions: Vec<VersionView>,
    /// The product's icons and banners as answers list them (`("1x" | "2x" | "svg",
    /// URL)`, `("low" | "high", URL)`), made once here.
    pub icons: Vec<(String, String)>,
    pub banners: Vec<(String, String)>,
}

impl ProductView {
    /// Published versions with a published primary file, newest first.
    pub fn new(product: Product, releases: Vec<Release>) -> ProductView {
        let mut versions: Vec<VersionView> = releases
            .into_iter()
            .filter(|r| r.published)
            .filter_map(|r| {
                let primary = r.primary().filter(|f| f.published)?.clone();
                Some(VersionView {
                    version: r.parsed(),
                    maturity: r.maturity,
                    rollout: r.rollout,
                    minimums: [&r.requires, &r.requires_php]
                        .map(|text| text.as_deref().and_then(PlatformVersion::parse_lenient)),
                    requires: r.requires,
                    tested: r.tested,
                    requires_php: r.requires_php,
                    released_at: r.released_at,
                    last_updated: r
                        .released_at
                        .map(super::answer::wp_datetime)
                        .unwrap_or_default(),
                    shown: Arc::from(Vec::new()),
                    upgrade_notice: r
                        .sections
                        .iter()
                        .find(|(k, _)| k == "upgrade_notice")
                        .map(|(_, html)| html.clone()),
                    sections: r.sections,
                    release_notes: r.release_notes,
                    file: primary.id,
                    blob: primary.blob,
                    filename: primary.filename,
                    kept: Default::default(),
                })
            })
            .collect();
        versions.sort_by(|a, b| b.version.cmp(&a.version));
        for v in &mut versions {
            v.shown = sections(&product, v).into();
        }
        let (icons, banners) = images(&product);
        ProductView {
            product,
            versions,
            icons,
            banners,
        }
    }
}

/// The catalogue views, by account and slug (and by product id), valid at one store
/// generation.
#[derive(Default)]
pub struct Views {
    inner: RwLock<ViewMap>,
}

#[derive(Default)]
struct ViewMap {
    generation: u64,
    /// Per account, per slug (a `&str` lookup: no allocation on a hit).
    by_slug: HashMap<AccountPrefix, HashMap<String, Option<Arc<ProductView>>>>,
    entries: usize,
    /// Per account, its plugin and theme slugs, sorted (`GET /v1/account`).
    slugs: HashMap<AccountPrefix, Arc<AccountSlugs>>,
    /// Product id → its view once built, else its account and slug (`None`: no such
    /// product), for the dialects that name products by id (EDD `item_id`, UpdaterCloud).
    by_id: HashMap<ProductId, Option<ById>>,
    /// Per account, its products' slugified names → their slugs (EDD's `item_name`).
    names: HashMap<AccountPrefix, Arc<HashMap<String, String>>>,
}

impl ViewMap {
    /// Makes room for one more entry built at `generation`: starts the map over when the
    /// store has been written since, or when it holds [`MAX_VIEWS`] entries.
    fn admit(&mut self, generation: u64) {
        if self.generation != generation || self.entries >= MAX_VIEWS {
            *self = ViewMap {
                generation,
                ..ViewMap::default()
            };
        }
        self.entries += 1;
    }
}

/// A product named by id: where it lives, and its view once [`Views::by_slug`] built it
/// (a check by id then takes one lookup, not two).
#[derive(Clone)]
enum ById {
    Home(AccountPrefix, String),
    View(Arc<ProductView>),
}

/// An account's plugin and theme slugs, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSlugs {
    pub plugins: Vec<String>,
    pub themes: Vec<String>,
}

/// Most views kept (entries for unknown slugs included); past it the map starts over.
const MAX_VIEWS: usize = 100_000;

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views").finish_non_exhaustive()
    }
}

impl Views {
    /// The view of `account`'s product `slug`; `None` if there is no such product.
    ///
    /// # Errors
    /// The store failed.
    pub fn by_slug(
        &self,
        store: &Store,
        account: &AccountPrefix,
        slug: &str,
    ) -> Result<Option<Arc<ProductView>>, StoreError> {
        let generation = store.generation();
        {
            let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if map.generation == generation
                && let Some(found) = map.by_slug.get(account).and_then(|slugs| slugs.get(slug))
            {
                return Ok(found.clone());
            }
        }
        // What cannot be a slug names no product, and is not remembered: a flood of made-up
        // (or 60 KB) slugs takes no store read and no memory.
        if !crate::model::catalog::is_slug(slug) {
            return Ok(None);
        }
        // Read after taking the generation: a write committing meanwhile moves it, and
        // this entry is then not kept past the next check.
        let view = match store.product_by_slug(account, slug)? {
            Some(product) => {
                let releases = store.releases(account, product.id)?;
                Some(Arc::new(ProductView::new(product, releases)))
            }
            None => None,
        };
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.admit(generation);
        map.by_slug
            .entry(*account)
            .or_default()
            .insert(slug.to_owned(), view.clone());
        Ok(view)
    }

    /// The account's plugin and theme slugs (kept, like the views, while the store's
    /// generation has not moved: `GET /v1/account` reads no record on a hit).
    ///
    /// # Errors
    /// The store failed.
    pub fn slugs(
        &self,
        store: &Store,
        account: &AccountPrefix,
    ) -> Result<Arc<AccountSlugs>, StoreError> {
        let generation = store.generation();
        {
            let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if map.generation == generation
                && let Some(found) = map.slugs.get(account)
            {
                return Ok(found.clone());
            }
        }
        let mut slugs = AccountSlugs::default();
        for product in store.products(account)? {
            match product.kind {
                ProductKind::Plugin => slugs.plugins.push(product.slug),
                ProductKind::Theme => slugs.themes.push(product.slug),
                ProductKind::App => {}
            }
        }
        slugs.plugins.sort();
        slugs.themes.sort();
        let slugs = Arc::new(slugs);
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.admit(generation);
        map.slugs.insert(*account, slugs.clone());
        Ok(slugs)
    }

    /// The slug of `account`'s product whose name slugifies to `name` (EDD's `item_name`,
    /// already slugified), if any: the account's names are read once per store
    /// generation, not scanned per check.
    ///
    /// # Errors
    /// The store failed.
    pub fn slug_by_name(
        &self,
        store: &Store,
        account: &AccountPrefix,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let generation = store.generation();
        {
            let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if map.generation == generation
                && let Some(names) = map.names.get(account)
            {
                return Ok(names.get(name).cloned());
            }
        }
        let names: HashMap<String, String> = store
            .products(account)?
            .into_iter()
            .map(|p| (crate::model::catalog::slugify(&p.name), p.slug))
            .collect();
        let found = names.get(name).cloned();
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.admit(generation);
        map.names.insert(*account, Arc::new(names));
        Ok(found)
    }

    /// The view of product `id`, wherever it lives.
    ///
    /// # Errors
    /// The store failed.
    pub fn by_id(
        &self,
        store: &Store,
        id: ProductId,
    ) -> Result<Option<Arc<ProductView>>, StoreError> {
        let generation = store.generation();
        let known = {
            let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if map.generation != generation {
                None
            } else {
                match map.by_id.get(&id) {
                    Some(Some(ById::View(view))) => return Ok(Some(view.clone())),
                    Some(Some(ById::Home(account, slug))) => Some(Some((*account, slug.clone()))),
                    Some(None) => return Ok(None),
                    None => None,
                }
            }
        };
        let home = match known {
            Some(home) => home,
            None => {
                let home = match store.product_account(id)? {
                    Some(account) => store.product(&account, id)?.map(|p| (account, p.slug)),
                    None => None,
                };
                let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
                map.admit(generation);
                let entry = home
                    .as_ref()
                    .map(|(account, slug)| ById::Home(*account, slug.clone()));
                map.by_id.insert(id, entry);
                home
            }
        };
        let Some((account, slug)) = home else {
            return Ok(None);
        };
        let view = self.by_slug(store, &account, &slug)?;
        // The slug may name another product by now (renamed, and its slug taken): then the
        // next check by id looks again.
        if let Some(view) = view.as_ref().filter(|v| v.product.id == id) {
            // Kept only while the generation this id was read at stands (`by_slug` starts
            // the map over when it moves, and then this entry is gone too).
            let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
            if map.generation == generation
                && let Some(entry @ Some(ById::Home(..))) = map.by_id.get_mut(&id)
            {
                *entry = Some(ById::View(view.clone()));
            }
        }
        Ok(view)
    }
}

/// What the caller sent.
#[derive(Debug, Clone, Default)]
pub struct Check<'a> {
    pub channel: Channel,
    /// The version the site has, as sent (empty = not sent).
    pub installed: Option<&'a str>,
    /// The normalized site host, or the app's machine fingerprint.
    pub site: Option<&'a Place>,
    /// The license key, as sent.
    pub key: Option<&'a str>,
    /// WordPress (platform) and PHP versions the client runs, when sent.
    pub platform: Option<&'a str>,
    pub php: Option<&'a str>,
}

/// Who is asking: a site, normalized once (by the adapter), or an app's machine
/// fingerprint — kept apart so nothing downstream normalizes it again or mistakes one
/// for the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Site(crate::model::Site),
    Machine(String),
}

impl Place {
    /// The text rollout buckets and links use: the normalized host, or the machine.
    pub fn as_str(&self) -> &str {
        match self {
            Place::Site(site) => site.as_str(),
            Place::Machine(machine) => machine,
        }
    }
}

/// How the caller's key stands for a product: the code, and the key's id for the link
/// (re-checked at download).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck {
    pub code: LicenseCode,
    pub key_id: Option<u64>,
}

/// Decides for licensed products: a download key's validity (SPEC §9), supplied by the
/// licensing service. Static keys are decided here.
pub trait DownloadKeys {
    /// How `key` stands for `product` and the site.
    fn check(
        &self,
        store: &Store,
        product: &Product,
        key: &str,
        site: Option<&Place>,
        now: Timestamp,
    ) -> KeyCheck;

    /// At download time, the key a link was made for (by id): `None` while it still allows
    /// the download, else why not.
    ///
    /// # Errors
    /// The store failed (the download is then a 503, not a refusal).
    fn recheck(
        &self,
        store: &Store,
        product: &Product,
        key_id: u64,
        site: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<LicenseCode>, StoreError>;
}

/// No download keys exist (until licensing is wired in): every key is unknown.
pub struct NoDownloadKeys;

impl DownloadKeys for NoDownloadKeys {
    fn check(&self, _: &Store, _: &Product, _: &str, _: Option<&Place>, _: Timestamp) -> KeyCheck {
        KeyCheck {
            code: LicenseCode::NotFound,
            key_id: None,
        }
    }

    fn recheck(
        &self,
        _: &Store,
        _: &Product,
        _: u64,
        _: Option<&str>,
        _: Timestamp,
    ) -> Result<Option<LicenseCode>, StoreError> {
        Ok(Some(LicenseCode::NotFound))
    }
}

/// The keyed-hash id a static key carries in a link (the first 8 bytes of its lookup
/// hash): enough to find it again at download time.
pub fn static_key_id(key: &StaticKey) -> u64 {
    let mut id = [0u8; 8];
    id.copy_from_slice(&key.lookup[..8]);
    u64::from_be_bytes(id)
}

/// Whether static `key` is on `product` and works on `today` (`YYYY-MM-DD`, UTC).
pub fn check_static(
    vault: &crate::secrets::KeyVault,
    product: &Product,
    key: &str,
    today: &str,
) -> KeyCheck {
    if check_static_key(key).is_err() {
        return KeyCheck {
            code: LicenseCode::NotFound,
            key_id: None,
        };
    }
    let lookup = vault.lookup_hash(product.account.as_str(), key);
    match product.static_keys.iter().find(|k| k.lookup == lookup) {
        None => KeyCheck {
            code: LicenseCode::NotFound,
            key_id: None,
        },
        Some(found) if found.expires.as_deref().is_some_and(|last| last < today) => KeyCheck {
            code: LicenseCode::Expired,
            key_id: Some(static_key_id(found)),
        },
        Some(found) => KeyCheck {
            code: LicenseCode::Valid,
            key_id: Some(static_key_id(found)),
        },
    }
}

/// `YYYY-MM-DD` of `now`, UTC.
pub fn date_of(now: Timestamp) -> String {
    super::answer::wp_datetime(now)[..10].to_owned()
}

/// What a link needs: where it points and how long it works.
pub struct LinkContext<'a> {
    pub key: &'a LinkKey,
    pub base_url: &'a str,
    pub ttl_secs: u64,
}

/// The decision: the [`Answer`] for `view` and the check, with a signed link when the
/// caller may download. Also returns the newest stable version the caller may see (EDD's
/// `stable_version`). The answer borrows its texts from `view` (and the installed
/// version from `check`).
pub fn decide<'a>(
    store: &Store,
    view: &'a ProductView,
    check: &Check<'a>,
    keys: &dyn DownloadKeys,
    vault: &crate::secrets::KeyVault,
    links: &LinkContext<'_>,
    now: Timestamp,
) -> (Answer<'a>, Option<&'a str>) {
    let product = &view.product;
    let site = check.site.map(Place::as_str).filter(|s| !s.is_empty());
    let visible = |v: &&VersionView| rollout_admits(product.id.0, site, v.rollout);
    // The client's platform versions, read once (`model::minimum_met` compares them).
    let client =
        [check.platform, check.php].map(|text| text.and_then(PlatformVersion::parse_lenient));
    let meets = |v: &&VersionView| {
        v.minimums
            .iter()
            .zip(&client)
            .all(|(required, client)| minimum_met(required.as_ref(), client.as_ref()))
    };
    let on_channel = |v: &&VersionView| check.channel.admits(v.maturity);
    let pick = view
        .versions
        .iter()
        .filter(on_channel)
        .filter(visible)
        .find(meets);
    let newest_visible = view.versions.iter().filter(on_channel).find(visible);
    let stable = view
        .versions
        .iter()
        .filter(|v| Channel::Stable.admits(v.maturity))
        .filter(visible)
        .find(meets)
        .map(|v| v.version.as_str());
    let license = license_of(store, product, check, keys, vault, now);
    let mut offer = base_offer(view, license.code);
    let reason = if !product.published {
        Some(NothingReason::Unpublished)
    } else if pick.is_none() {
        Some(if view.versions.iter().any(|v| on_channel(&v)) {
            NothingReason::Filtered
        } else {
            NothingReason::NoVersion
        })
    } else {
        None
    };
    // The details shown are of a version this caller may see (its channel, its rollout):
    // none of an unpublished product, of a beta to a stable check, of a held-back version.
    let shown = pick.or(newest_visible).filter(|_| product.published);
    if let Some(v) = shown {
        offer.requires = v.requires.as_deref();
        offer.tested = v.tested.as_deref();
        offer.requires_php = v.requires_php.as_deref();
        offer.last_updated = &v.last_updated;
        offer.sections = &v.shown;
        offer.upgrade_notice = v.upgrade_notice.as_deref();
        offer.kept = Some(&v.kept);
    }
    if let Some(reason) = reason {
        let newest = if product.published {
            newest_visible.map(|v| v.version.as_str())
        } else {
            None
        };
        let version = super::answer::fallback_version(check.installed, newest);
        return (Answer::nothing(offer, version, reason), stable);
    }
    let Some(v) = pick else {
        unreachable!("a pick exists when there is no reason")
    };
    offer.version = v.version.as_str();
    if license.code == LicenseCode::Valid {
        let grant = Grant {
            account: product.account.as_str(),
            file_id: v.file.0,
            blob: v.blob.as_bytes(),
            key_id: license.key_id,
            site,
            expires: now.as_secs().saturating_add(links.ttl_secs),
        };
        offer.download_link = match links.key.download_url(links.base_url, &grant, &v.filename) {
            Ok(url) => Some(url),
            // Not reachable with valid input (every claim's limit is above what the model
            // admits); said, not hidden, if it ever is.
            Err(err) => {
                tracing::warn!(
                    product = product.id.0,
                    field = err.field,
                    "no download link: a claim is too long"
                );
                None
            }
        };
        // The rest of a link is base64url and a percent-escaped file name.
        offer.link_plain = super::json::is_plain(links.base_url);
    }
    (Answer::Update(offer), stable)
}

fn license_of(
    store: &Store,
    product: &Product,
    check: &Check<'_>,
    keys: &dyn DownloadKeys,
    vault: &crate::secrets::KeyVault,
    now: Timestamp,
) -> KeyCheck {
    let key = check.key.map(str::trim).filter(|k| !k.is_empty());
    match (product.license, key) {
        (LicenseModel::Free, _) => KeyCheck {
            code: LicenseCode::Valid,
            key_id: None,
        },
        (_, None) => KeyCheck {
            code: LicenseCode::MissingKey,
            key_id: None,
        },
        (LicenseModel::StaticKeys, Some(key)) => check_static(vault, product, key, &date_of(now)),
        (LicenseModel::DownloadKeys, Some(key)) => keys.check(store, product, key, check.site, now),
    }
}

fn kind(product: &Product) -> Kind {
    match product.kind {
        ProductKind::Plugin => Kind::Plugin,
        ProductKind::Theme => Kind::Theme,
        ProductKind::App => Kind::App,
    }
}

/// `(name, URL)` pairs, in the order answers list them.
type Images = Vec<(String, String)>;

/// The product's icons and banners, in the order answers list them.
fn images(product: &Product) -> (Images, Images) {
    let mut icons = Vec::new();
    for (name, url) in [
        ("1x", &product.icons.x1),
        ("2x", &product.icons.x2),
        ("svg", &product.icons.svg),
    ] {
        if let Some(url) = url {
            icons.push((name.to_owned(), url.clone()));
        }
    }
    let mut banners = Vec::new();
    for (name, url) in [
        ("low", &product.banners.low),
        ("high", &product.banners.high),
    ] {
        if let Some(url) = url {
            banners.push((name.to_owned(), url.clone()));
        }
    }
    (icons, banners)
}

fn base_offer(view: &ProductView, code: LicenseCode) -> Offer<'_> {
    let product = &view.product;
    Offer {
        kind: kind(product),
        name: &product.name,
        slug: &product.slug,
        version: "",
        download_link: None,
        link_plain: false,
        homepage: product.homepage.as_deref(),
        author: product.author.as_deref(),
        author_homepage: product.author_homepage.as_deref(),
        requires: None,
        tested: None,
        requires_php: None,
        last_updated: "",
        sections: &[],
        upgrade_notice: None,
        icons: &view.icons,
        banners: &view.banners,
        license: LicenseState::new(code),
        kept: None,
    }
}

/// The sections shown: the package's readme sections; a product description when the
/// readme has none; the version's release notes as the changelog when the readme has
/// none.
fn sections(product: &Product, v: &VersionView) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = v
        .sections
        .iter()
        .filter(|(k, _)| k != "upgrade_notice")
        .cloned()
        .collect();
    if !sections.iter().any(|(k, _)| k == "description")
        && let Some(text) = product
            .description
            .as_ref()
            .or(product.short_description.as_ref())
    {
        sections.insert(
            0,
            (
                "description".to_owned(),
                crate::package::markdown_to_safe_html(text),
            ),
        );
    }
    if !sections.iter().any(|(k, _)| k == "changelog")
        && let Some(notes) = &v.release_notes
    {
        sections.push((
            "changelog".to_owned(),
            crate::package::markdown_to_safe_html(notes),
        ));
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_cannot_be_a_slug_is_neither_looked_up_nor_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let views = Views::default();
        let acme = AccountPrefix::parse("acme").unwrap();
        let entries = |views: &Views| views.inner.read().unwrap().entries;
        for made_up in [
            "X".repeat(60_000),
            "Hello".to_owned(),
            "-a".to_owned(),
            String::new(),
        ] {
            assert!(views.by_slug(&store, &acme, &made_up).unwrap().is_none());
        }
        assert_eq!(entries(&views), 0, "made-up slugs take no room");
        // A well-formed slug that names no product is remembered (one entry), so the next
        // check of it reads nothing.
        assert!(views.by_slug(&store, &acme, "nope").unwrap().is_none());
        assert!(views.by_slug(&store, &acme, "nope").unwrap().is_none());
        assert_eq!(entries(&views), 1);
    }
}
