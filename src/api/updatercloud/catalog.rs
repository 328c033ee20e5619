//! `/api/v1/groups|products|versions|files|releases` (SPEC §7.1): the release catalogue in
//! the UpdaterCloud family's shapes — single records `{"data":{…}}`, lists
//! `{"data":[…],"next_cursor"}`, RFC 3339 times, JSON or form bodies; uploads streamed
//! (`http::upload`). Reads need `read_releases`, changes `manage_releases`. The account is
//! always the caller's own: another account's id is `404`.

use super::{double, list, one, time};
use crate::api::account_of;
use crate::app::App;
use crate::error::Error;
use crate::http::request::{self, Object};
use crate::http::route::Call;
use crate::http::{Body, response, upload};
use crate::model::catalog::{Banners, Icons};
use crate::model::{
    AccountPrefix, FileId, FileRecord, Group, GroupId, LicenseModel, Maturity, Product, ProductId,
    ProductKind, Release, VersionId,
};
use crate::service::catalog::{
    self as svc, FileChanges, ProductChanges, ReleaseOptions, ReleaseTarget, VersionChanges,
};
use crate::store::Page;
use http::{Response, StatusCode};
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};

// ----- views ---------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct GroupView {
    pub id: u64,
    pub name: String,
    pub default: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl GroupView {
    pub fn new(group: &Group) -> Self {
        GroupView {
            id: group.id.0,
            name: group.name.clone(),
            default: group.id == crate::model::catalog::DEFAULT_GROUP,
            created_at: time(group.created_at),
            updated_at: time(group.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct IconsView {
    #[serde(rename = "1x")]
    pub x1: Option<String>,
    #[serde(rename = "2x")]
    pub x2: Option<String>,
    pub svg: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ProductView {
    pub id: u64,
    pub slug: String,
    pub kind: &'static str,
    pub name: String,
    pub group_id: u64,
    pub short_description: Option<String>,
    pub description: Option<String>,
    pub homepage: Option<String>,
    pub author: Option<String>,
    pub author_homepage: Option<String>,
    pub icons: IconsView,
    pub banners: Banners,
    pub license: &'static str,
    pub require_activation: bool,
    pub published: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl ProductView {
    pub fn new(p: &Product) -> Self {
        ProductView {
            id: p.id.0,
            slug: p.slug.clone(),
            kind: p.kind.as_str(),
            name: p.name.clone(),
            group_id: p.group_id.0,
            short_description: p.short_description.clone(),
            description: p.description.clone(),
            homepage: p.homepage.clone(),
            author: p.author.clone(),
            author_homepage: p.author_homepage.clone(),
            icons: IconsView {
                x1: p.icons.x1.clone(),
                x2: p.icons.x2.clone(),
                svg: p.icons.svg.clone(),
            },
            banners: p.banners.clone(),
            license: p.license.as_str(),
            require_activation: p.require_activation,
            published: p.published,
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FileView {
    pub id: u64,
    pub version_id: u64,
    pub name: String,
    pub description: Option<String>,
    pub published: bool,
    pub primary: bool,
    pub filename: String,
    pub size: u64,
    pub content_type: String,
    pub blake3: String,
    pub downloads: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A file's downloads counted since the last flush of the counts (SPEC §10: stored at
/// least once a minute), added to its stored `downloads`, so an answer counts every
/// download served. Read after the record: a flush in between can make the sum lag for a
/// moment, never count a download twice (a flush takes counts out of memory before it
/// stores them).
pub struct Unflushed<'a> {
    counts: &'a crate::update::counts::Counts,
    account: AccountPrefix,
}

impl<'a> Unflushed<'a> {
    pub fn new(app: &'a App, account: AccountPrefix) -> Self {
        Unflushed {
            counts: &app.public.counts,
            account,
        }
    }

    fn of(&self, file: FileId) -> u64 {
        self.counts.unflushed_downloads(&self.account, file)
    }
}

impl FileView {
    pub fn new(version: VersionId, f: &FileRecord, unflushed: &Unflushed<'_>) -> Self {
        FileView {
            id: f.id.0,
            version_id: version.0,
            name: f.name.clone(),
            description: f.description.clone(),
            published: f.published,
            primary: f.primary,
            filename: f.filename.clone(),
            size: f.size,
            content_type: f.content_type.clone(),
            blake3: f.blob.to_hex(),
            downloads: f.downloads.saturating_add(unflushed.of(f.id)),
            created_at: time(f.created_at),
            updated_at: time(f.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VersionView {
    pub id: u64,
    pub product_id: u64,
    pub version: String,
    pub maturity: &'static str,
    pub release_notes: Option<String>,
    pub requires: Option<String>,
    pub tested: Option<String>,
    pub requires_php: Option<String>,
    pub published: bool,
    pub rollout: u8,
    pub released_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Only where the route says so (a release, a single version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileView>>,
}

impl VersionView {
    /// With its files when `files` is given.
    pub fn new(r: &Release, files: Option<&Unflushed<'_>>) -> Self {
        VersionView {
            id: r.id.0,
            product_id: r.product_id.0,
            version: r.version.clone(),
            maturity: r.maturity.as_str(),
            release_notes: r.release_notes.clone(),
            requires: r.requires.clone(),
            tested: r.tested.clone(),
            requires_php: r.requires_php.clone(),
            published: r.published,
            rollout: r.rollout,
            released_at: r.released_at.map(time),
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
            files: files.map(|unflushed| {
                r.files
                    .iter()
                    .map(|f| FileView::new(r.id, f, unflushed))
                    .collect()
            }),
        }
    }
}

// ----- requests ------------------------------------------------------------------

/// A field that is a JSON value of `T` or, from a form body, its text (padded, if at all,
/// with JSON's whitespace only: space, tab, CR, LF — what the document's patterns say).
#[derive(Debug, Clone, Copy)]
pub struct Flex<T>(pub T);

impl<'de, T> Deserialize<'de> for Flex<T>
where
    T: DeserializeOwned + std::str::FromStr,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if let serde_json::Value::String(text) = &value
            && let Ok(parsed) = text
                .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
                .parse::<T>()
        {
            return Ok(Flex(parsed));
        }
        serde_json::from_value(value)
            .map(Flex)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IconsBody {
    #[serde(rename = "1x")]
    x1: Option<String>,
    #[serde(rename = "2x")]
    x2: Option<String>,
    svg: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BannersBody {
    low: Option<String>,
    high: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductBody {
    slug: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    group_id: Option<Flex<u64>>,
    #[serde(default, deserialize_with = "double")]
    short_description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    homepage: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    author: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    author_homepage: Option<Option<String>>,
    icons: Option<Object<IconsBody>>,
    banners: Option<Object<BannersBody>>,
    license: Option<String>,
    require_activation: Option<Flex<bool>>,
    published: Option<Flex<bool>>,
}

fn license(text: &str) -> Result<LicenseModel, Error> {
    LicenseModel::parse(text).ok_or_else(|| {
        Error::invalid(
            "license",
            format!("`{text}` is not one of free, static_keys, download_keys"),
        )
    })
}

impl ProductBody {
    fn changes(self) -> Result<ProductChanges, Error> {
        Ok(ProductChanges {
            name: self.name,
            group_id: self.group_id.map(|g| GroupId(g.0)),
            short_description: self.short_description,
            description: self.description,
            homepage: self.homepage,
            author: self.author,
            author_homepage: self.author_homepage,
            icons: self.icons.map(|Object(i)| Icons {
                x1: i.x1,
                x2: i.x2,
                svg: i.svg,
            }),
            banners: self.banners.map(|Object(b)| Banners {
                low: b.low,
                high: b.high,
            }),
            license: self.license.as_deref().map(license).transpose()?,
            require_activation: self.require_activation.map(|f| f.0),
            published: self.published.map(|f| f.0),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DuplicateBody {
    slug: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionBody {
    version: Option<String>,
    maturity: Option<String>,
    #[serde(default, deserialize_with = "double")]
    release_notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    requires: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    tested: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    requires_php: Option<Option<String>>,
    published: Option<Flex<bool>>,
    rollout: Option<Flex<u64>>,
}

fn maturity(text: &str) -> Result<Maturity, Error> {
    Maturity::parse(text).ok_or_else(|| {
        Error::invalid(
            "maturity",
            format!("`{text}` is not one of dev, alpha, beta, rc, stable"),
        )
    })
}

fn rollout(n: u64) -> Result<u8, Error> {
    u8::try_from(n)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| Error::invalid("rollout", "must be 1–100 (% of sites)"))
}

impl VersionBody {
    fn changes(self) -> Result<VersionChanges, Error> {
        Ok(VersionChanges {
            maturity: self.maturity.as_deref().map(maturity).transpose()?,
            release_notes: self.release_notes,
            requires: self.requires,
            tested: self.tested,
            requires_php: self.requires_php,
            published: self.published.map(|f| f.0),
            rollout: self.rollout.map(|r| rollout(r.0)).transpose()?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "double")]
    description: Option<Option<String>>,
    primary: Option<Flex<bool>>,
    published: Option<Flex<bool>>,
}

fn bool_field(name: &str, text: &str) -> Result<bool, Error> {
    match text.trim() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        other => Err(Error::invalid(
            name,
            format!("`{other}` is not true or false"),
        )),
    }
}

/// A path id: not a number is simply no such record.
fn id(call: &Call, name: &str, what: &str) -> Result<u64, Error> {
    let text = call.param(name);
    text.parse::<u64>()
        .map_err(|_| Error::NotFound(format!("no {what} with id {text}")))
}

// ----- groups --------------------------------------------------------------------

pub(super) fn list_groups(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let page = request::paging(call.query())?;
    let groups = svc::groups(&app.ctx(call.caller.as_ref(), call.now), &account)?;
    Ok(list(
        Page::of_list(groups, |g| g.id.0, &page)?,
        GroupView::new,
    ))
}

pub(super) fn get_group(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let group = svc::group(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        GroupId(id(call, "id", "group")?),
    )?;
    Ok(one(StatusCode::OK, GroupView::new(&group)))
}

pub(super) async fn put_group(
    app: &App,
    call: Call,
    create: bool,
) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let body: GroupBody = request::json_or_form(&call.input)?;
    let target = if create {
        None
    } else {
        Some(GroupId(id(&call, "id", "group")?))
    };
    let group = app
        .write(caller, call.now, move |ctx| {
            svc::put_group(ctx, &account, target, body.name)
        })
        .await?;
    let status = if create {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(one(status, GroupView::new(&group)))
}

pub(super) async fn delete_group(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = GroupId(id(&call, "id", "group")?);
    app.write(caller, call.now, move |ctx| {
        svc::delete_group(ctx, &account, target)
    })
    .await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

// ----- products ------------------------------------------------------------------

pub(super) fn list_products(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let page = request::paging(call.query())?;
    let products = svc::products(&app.ctx(call.caller.as_ref(), call.now), &account, &page)?;
    Ok(list(products, ProductView::new))
}

pub(super) fn get_product(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let product = svc::product(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        ProductId(id(call, "id", "product")?),
    )?;
    Ok(one(StatusCode::OK, ProductView::new(&product)))
}

pub(super) async fn create_product(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let mut body: ProductBody = request::json_or_form(&call.input)?;
    let slug = body
        .slug
        .take()
        .ok_or_else(|| Error::invalid("slug", "is required"))?;
    let kind_text = body.kind.take().unwrap_or_else(|| "plugin".to_owned());
    let kind = ProductKind::parse(&kind_text).ok_or_else(|| {
        Error::invalid(
            "kind",
            format!("`{kind_text}` is not one of plugin, theme, app"),
        )
    })?;
    let changes = body.changes()?;
    let product = app
        .write(caller, call.now, move |ctx| {
            svc::create_product(ctx, &account, slug, kind, changes)
        })
        .await?;
    Ok(one(StatusCode::CREATED, ProductView::new(&product)))
}

pub(super) async fn update_product(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = ProductId(id(&call, "id", "product")?);
    let body: ProductBody = request::json_or_form(&call.input)?;
    if body.slug.is_some() {
        return Err(Error::invalid(
            "slug",
            "cannot be changed once the product exists",
        ));
    }
    if body.kind.is_some() {
        return Err(Error::invalid(
            "kind",
            "cannot be changed once the product exists",
        ));
    }
    let changes = body.changes()?;
    let product = app
        .write(caller, call.now, move |ctx| {
            svc::update_product(ctx, &account, target, changes)
        })
        .await?;
    Ok(one(StatusCode::OK, ProductView::new(&product)))
}

pub(super) async fn duplicate_product(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = ProductId(id(&call, "id", "product")?);
    let body: DuplicateBody = request::json_or_form(&call.input)?;
    let product = app
        .write(caller, call.now, move |ctx| {
            svc::duplicate_product(ctx, &account, target, body.slug, body.name)
        })
        .await?;
    Ok(one(StatusCode::CREATED, ProductView::new(&product)))
}

pub(super) async fn delete_product(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = ProductId(id(&call, "id", "product")?);
    app.write(caller, call.now, move |ctx| {
        svc::delete_product(ctx, &account, target)
    })
    .await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

/// `GET /api/v1/products/{id}/channels`: what each channel offers now (published
/// versions, fully rolled out or not).
pub(super) fn channels(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let found = svc::catalogued(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        ProductId(id(call, "id", "product")?),
    )?;
    let versions: Vec<Channelled> = found
        .releases
        .iter()
        .map(|r| Channelled(r.parsed(), r.maturity, r.published))
        .collect();
    let picks = crate::model::resolve_channels(versions.iter(), |v| v.2);
    let mut data = serde_json::Map::new();
    for (channel, pick) in picks.iter() {
        data.insert(
            channel.as_str().to_owned(),
            pick.map_or(serde_json::Value::Null, |v| v.0.as_str().into()),
        );
    }
    Ok(one(StatusCode::OK, data))
}

/// A version with its explicit maturity, for channel resolution.
struct Channelled(crate::model::Version, Maturity, bool);

impl crate::model::Versioned for Channelled {
    fn version(&self) -> &crate::model::Version {
        &self.0
    }

    fn maturity(&self) -> Maturity {
        self.1
    }
}

// ----- versions ------------------------------------------------------------------

pub(super) fn list_versions(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let page = request::paging(call.query())?;
    let found = svc::catalogued(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        ProductId(id(call, "id", "product")?),
    )?;
    let page = Page::of_list(found.releases, |r| r.id.0, &page)?;
    Ok(list(page, |r| VersionView::new(r, None)))
}

pub(super) fn get_version(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let release = svc::release(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        VersionId(id(call, "id", "version")?),
    )?;
    Ok(one(
        StatusCode::OK,
        VersionView::new(&release, Some(&Unflushed::new(app, account))),
    ))
}

pub(super) async fn create_version(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let product = ProductId(id(&call, "id", "product")?);
    let mut body: VersionBody = request::json_or_form(&call.input)?;
    let version = body
        .version
        .take()
        .ok_or_else(|| Error::invalid("version", "is required"))?;
    let changes = body.changes()?;
    let release = app
        .write(caller, call.now, move |ctx| {
            svc::create_version(ctx, &account, product, &version, changes)
        })
        .await?;
    Ok(one(
        StatusCode::CREATED,
        VersionView::new(&release, Some(&Unflushed::new(app, account))),
    ))
}

pub(super) async fn update_version(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = VersionId(id(&call, "id", "version")?);
    let body: VersionBody = request::json_or_form(&call.input)?;
    if body.version.is_some() {
        return Err(Error::invalid(
            "version",
            "cannot be changed; create a new version",
        ));
    }
    let changes = body.changes()?;
    let release = app
        .write(caller, call.now, move |ctx| {
            svc::update_version(ctx, &account, target, changes)
        })
        .await?;
    Ok(one(
        StatusCode::OK,
        VersionView::new(&release, Some(&Unflushed::new(app, account))),
    ))
}

pub(super) async fn delete_version(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = VersionId(id(&call, "id", "version")?);
    app.write(caller, call.now, move |ctx| {
        svc::delete_version(ctx, &account, target)
    })
    .await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

// ----- files ---------------------------------------------------------------------

pub(super) fn list_files(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let page = request::paging(call.query())?;
    let release = svc::release(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        VersionId(id(call, "id", "version")?),
    )?;
    let version = release.id;
    let page = Page::of_list(release.files, |f| f.id.0, &page)?;
    Ok(list(page, |f| {
        FileView::new(version, f, &Unflushed::new(app, account))
    }))
}

pub(super) fn get_file(app: &App, call: &Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let (release, file) = svc::file(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        FileId(id(call, "id", "file")?),
    )?;
    Ok(one(
        StatusCode::OK,
        FileView::new(release.id, &file, &Unflushed::new(app, account)),
    ))
}

/// The changes a multipart upload's fields (or a raw upload's query) carry.
fn file_changes(received: &upload::Received) -> Result<FileChanges, Error> {
    Ok(FileChanges {
        name: received.field("name").map(str::to_owned),
        description: received.field("description").map(|d| Some(d.to_owned())),
        primary: received
            .field("primary")
            .map(|p| bool_field("primary", p))
            .transpose()?,
        published: received
            .field("published")
            .map(|p| bool_field("published", p))
            .transpose()?,
    })
}

pub(super) async fn create_file(app: &App, mut call: Call) -> Result<Response<Body>, Error> {
    let version = VersionId(id(&call, "id", "version")?);
    let account = account_of(call.caller()?)?;
    // Known before the upload: a missing version is refused before a byte is stored.
    svc::release(&app.ctx(call.caller.as_ref(), call.now), &account, version)?;
    let received = upload::receive(app, &mut call, "file").await?;
    let changes = match file_changes(&received) {
        Ok(changes) => changes,
        Err(err) => return Err(received.refuse(err).await),
    };
    let caller = call.caller()?;
    let (release, file) = app
        .write(caller, call.now, move |ctx| {
            svc::add_file(ctx, &account, version, received.upload, changes)
        })
        .await?;
    let record = release
        .file(file)
        .ok_or_else(|| Error::Internal("the new file is missing".into()))?;
    Ok(one(
        StatusCode::CREATED,
        FileView::new(release.id, record, &Unflushed::new(app, account)),
    ))
}

pub(super) async fn update_file(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = FileId(id(&call, "id", "file")?);
    let body: FileBody = request::json_or_form(&call.input)?;
    let changes = FileChanges {
        name: body.name,
        description: body.description,
        primary: body.primary.map(|f| f.0),
        published: body.published.map(|f| f.0),
    };
    let (release, file) = app
        .write(caller, call.now, move |ctx| {
            svc::update_file(ctx, &account, target, changes)
        })
        .await?;
    let record = release
        .file(file)
        .ok_or_else(|| Error::Internal("the file is missing".into()))?;
    Ok(one(
        StatusCode::OK,
        FileView::new(release.id, record, &Unflushed::new(app, account)),
    ))
}

pub(super) async fn delete_file(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let caller = call.caller()?;
    let account = account_of(caller)?;
    let target = FileId(id(&call, "id", "file")?);
    app.write(caller, call.now, move |ctx| {
        svc::delete_file(ctx, &account, target)
    })
    .await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

pub(super) async fn replace_content(app: &App, mut call: Call) -> Result<Response<Body>, Error> {
    let target = FileId(id(&call, "id", "file")?);
    let account = account_of(call.caller()?)?;
    let (release, file) = svc::file(&app.ctx(call.caller.as_ref(), call.now), &account, target)?;
    if release.published {
        return Err(Error::conflict(
            "version_published",
            format!(
                "version {} is published: its files are immutable",
                release.version
            ),
        ));
    }
    let received = upload::receive(app, &mut call, &file.filename).await?;
    let caller = call.caller()?;
    let (release, file) = app
        .write(caller, call.now, move |ctx| {
            svc::replace_content(ctx, &account, target, received.upload)
        })
        .await?;
    let record = release
        .file(file)
        .ok_or_else(|| Error::Internal("the file is missing".into()))?;
    Ok(one(
        StatusCode::OK,
        FileView::new(release.id, record, &Unflushed::new(app, account)),
    ))
}

/// `GET /api/v1/files/{id}/content`: the file, streamed; `Range` works.
pub(super) async fn download(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let (_, file) = svc::file(
        &app.ctx(call.caller.as_ref(), call.now),
        &account,
        FileId(id(&call, "id", "file")?),
    )?;
    let path = app.store.blobs().path(&file.blob);
    let etag = file.blob.to_hex();
    response::file(
        response::FileMeta {
            path: &path,
            len: file.size,
            content_type: &file.content_type,
            etag: &etag,
            filename: Some(&file.filename),
        },
        &call.input.parts.headers,
    )
    .await
}

// ----- releases ------------------------------------------------------------------

fn release_options(
    received: &upload::Received,
    query: Option<&str>,
) -> Result<ReleaseOptions, Error> {
    let get = |name: &str| {
        received
            .field(name)
            .map(str::to_owned)
            .or_else(|| request::query_param(query, name))
    };
    Ok(ReleaseOptions {
        version: get("version").filter(|v| !v.is_empty()),
        maturity: get("maturity").map(|m| maturity(&m)).transpose()?,
        release_notes: get("release_notes"),
        rollout: get("rollout")
            .map(|r| {
                r.trim()
                    .parse::<u64>()
                    .map_err(|_| Error::invalid("rollout", "must be 1–100 (% of sites)"))
                    .and_then(rollout)
            })
            .transpose()?,
        draft: get("draft")
            .map(|d| bool_field("draft", &d))
            .transpose()?
            .unwrap_or(false),
    })
}

/// `POST /api/v1/products/{id}/releases` and `POST /api/v1/releases`.
pub(super) async fn release(
    app: &App,
    mut call: Call,
    by_product: bool,
) -> Result<Response<Body>, Error> {
    let account = account_of(call.caller()?)?;
    let query = call.query().map(str::to_owned);
    let target = if by_product {
        let product = ProductId(id(&call, "id", "product")?);
        svc::product(&app.ctx(call.caller.as_ref(), call.now), &account, product)?;
        ReleaseTarget::Product(product)
    } else {
        let license_text = request::query_param(query.as_deref(), "license");
        let kind_text = request::query_param(query.as_deref(), "kind");
        ReleaseTarget::BySlug {
            license: license_text
                .as_deref()
                .map(license)
                .transpose()?
                .unwrap_or(LicenseModel::Free),
            kind: kind_text
                .as_deref()
                .map(|k| {
                    ProductKind::parse(k).ok_or_else(|| {
                        Error::invalid("kind", format!("`{k}` is not one of plugin, theme, app"))
                    })
                })
                .transpose()?,
        }
    };
    let received = upload::receive(app, &mut call, svc::UNNAMED_PACKAGE).await?;
    let options = match release_options(&received, query.as_deref()) {
        Ok(mut options) => {
            if options
                .release_notes
                .as_deref()
                .is_some_and(|n| n.trim().is_empty())
            {
                options.release_notes = None;
            }
            options
        }
        Err(err) => return Err(received.refuse(err).await),
    };
    let caller = call.caller()?;
    let released = app
        .write(caller, call.now, move |ctx| {
            svc::release_package(ctx, &account, target, received.upload, options)
        })
        .await?;
    let mut view = serde_json::to_value(VersionView::new(
        &released.release,
        Some(&Unflushed::new(app, account)),
    ))
    .map_err(|err| Error::Internal(Box::new(err)))?;
    if let serde_json::Value::Object(map) = &mut view {
        map.insert(
            "product".to_owned(),
            serde_json::to_value(ProductView::new(&released.product))
                .map_err(|err| Error::Internal(Box::new(err)))?,
        );
    }
    Ok(one(StatusCode::CREATED, view))
}
