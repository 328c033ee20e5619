//! EDD Software Licensing's `get_version` at `/edd/{prefix}` and, with wp-update-server's
//! `action=get_metadata|download`, the bare host `/` for the default account (SPEC §8.2).

use super::*;

// ----- EDD Software Licensing and wp-update-server at `/` ------------------------------

/// The pairs of an EDD request: the query's and the form body's (values may arrive
/// URL-encoded twice).
pub(super) fn edd_pairs(call: &Call) -> wire::Pairs<'_> {
    let mut pairs = query_pairs(call);
    if !call.input.body.is_empty()
        && let Ok(text) = std::str::from_utf8(&call.input.body)
    {
        pairs.extend(wire::parse_form(text));
    }
    pairs
}

/// `/edd/{prefix}` answered at once: everything but the license actions (`get_version`,
/// and EDD's failure shapes). `None` for a license action, which [`edd_prefixed`]
/// answers.
pub(super) fn edd_check(app: &App, call: &Call) -> Option<Result<Response<Body>, Error>> {
    let pairs = edd_pairs(call);
    let action = get(&pairs, "edd_action").unwrap_or("");
    if licensing::is_edd_license_action(action) {
        return None;
    }
    let account = edd_account(app, call);
    Some(edd(app, call, account, &pairs).map(answer_no_store))
}

/// EDD's answer to a request it cannot take (a form body too large, too slow or
/// unreadable; [`crate::http::route::Row::refusal`]): `200` in EDD's shape, as EDD
/// answers malformed requests (SPEC §9.2). (A method the EDD path does not take keeps its
/// `405` status and `Allow` in this shape: the service sets them.)
pub(super) fn edd_refusal(err: &Error) -> Response<Body> {
    answer_no_store(render::edd_refused(err.code(), &err.to_string()))
}

/// The account of `/edd/{prefix}`, if there is one.
fn edd_account(app: &App, call: &Call) -> Option<AccountPrefix> {
    AccountPrefix::parse(&call.param("prefix"))
        .ok()
        .filter(|prefix| app.store.plan_limit(prefix, call.now).is_some())
}

/// `/edd/{prefix}` (GET or form POST), and `/` for the default account.
pub(super) async fn edd_prefixed(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let account = edd_account(app, &call);
    edd_at(app, &call, account).await
}

/// EDD for `account` (`None`: no such account): always `200` in EDD's shapes. The
/// licensing actions (SPEC §9.2) are `licensing.rs`'s.
/// The sync part (reading the request, `get_version`) runs before the future is
/// returned, so the future holds no borrow of the request.
pub(super) fn edd_at<'a>(
    app: &'a App,
    call: &Call,
    account: Option<AccountPrefix>,
) -> impl Future<Output = Result<Response<Body>, Error>> + Send + 'a {
    let pairs = edd_pairs(call);
    let action = get(&pairs, "edd_action").unwrap_or("");
    let step = if licensing::is_edd_license_action(action) {
        Err((licensing::Who::of(app, call), owned(pairs.into_vec())))
    } else {
        Ok(edd(app, call, account, &pairs))
    };
    async move {
        Ok(match step {
            Ok(done) => answer_no_store(done?),
            Err((who, pairs)) => json_no_store(
                StatusCode::OK,
                &licensing::edd_license(app, who, account, &pairs).await?,
            ),
        })
    }
}

pub(super) fn edd(
    app: &App,
    call: &Call,
    account: Option<AccountPrefix>,
    pairs: &[Pair<'_>],
) -> Result<render::Json, Error> {
    let action = get(pairs, "edd_action").unwrap_or("");
    if action != "get_version" {
        // No action, or one EDD does not know: EDD's failure shape.
        return Ok(render::edd_unknown_action(action));
    }
    let Some(account) = account else {
        return Ok(render::edd_not_found(render::EDD_UNKNOWN_PRODUCT));
    };
    let base = base_url(app, call);
    let links = Links {
        base_url: &base,
        prefix: account.as_str(),
    };
    let site = site_of(user_agent(call), pairs);
    // A batch: `products[<slug>][…]`.
    if pairs.iter().any(|(n, _)| n.starts_with("products[")) {
        let batch = match wire::parse_edd_batch(pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
        {
            Ok(batch) => batch,
            // EDD answers malformed requests too, with its own shape (SPEC §9.2).
            Err(wire::BatchError::TooMany) => {
                return Ok(render::edd_not_found(&format!(
                    "A batch may ask for at most {} products.",
                    wire::MAX_BATCH_ITEMS
                )));
            }
            Err(wire::BatchError::Malformed(name)) => {
                return Ok(render::edd_not_found(&format!(
                    "`{}` is not products[<slug>][<field>].",
                    name.chars().take(64).collect::<String>()
                )));
            }
        };
        let mut out = Vec::with_capacity(batch.len());
        for (slug, fields) in batch {
            let fields: Vec<Pair<'_>> = fields
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect();
            let value = edd_one(
                app,
                call,
                &account,
                &fields,
                site.as_ref(),
                &links,
                Some(&slug),
            )?;
            out.push((slug, value));
        }
        return Ok(render::edd_batch(out));
    }
    edd_one(app, call, &account, pairs, site.as_ref(), &links, None)
}

pub(super) fn edd_one(
    app: &App,
    call: &Call,
    account: &AccountPrefix,
    pairs: &[Pair<'_>],
    site: Option<&Place>,
    links: &Links<'_>,
    batch_slug: Option<&str>,
) -> Result<render::Json, Error> {
    let view = match edd_item_id(pairs) {
        Some(id) => app
            .public
            .views
            .by_id(&app.store, ProductId(id))?
            .filter(|v| v.product.account == *account),
        None => {
            let wanted = get(pairs, "item_name")
                .or_else(|| get(pairs, "name"))
                .map(wire::slugify);
            let by_slug = get(pairs, "slug").or(batch_slug);
            edd_by_name(app, account, wanted.as_deref(), by_slug)?
        }
    };
    let Some(view) = view else {
        return Ok(render::edd_not_found(render::EDD_UNKNOWN_PRODUCT));
    };
    let channel = if get(pairs, "beta") == Some("1") {
        Channel::Beta
    } else {
        Channel::Stable
    };
    let check = Check {
        channel,
        installed: get(pairs, "version"),
        site,
        key: get(pairs, "license"),
        platform: get(pairs, "wp_version").or_else(|| wordpress_version(user_agent(call))),
        php: get(pairs, "php_version"),
    };
    let (answer, stable) = answer(app, call, &view, &check, links.base_url);
    Ok(render::edd_get_version(&answer, stable, links))
}

/// A product by its slugified name (EDD's `item_name`), or by its slug.
pub(super) fn edd_by_name(
    app: &App,
    account: &AccountPrefix,
    name: Option<&str>,
    slug: Option<&str>,
) -> Result<Option<Arc<ProductView>>, Error> {
    if let Some(name) = name {
        return match app.public.views.slug_by_name(&app.store, account, name)? {
            Some(slug) => view_by_slug(app, account, &slug),
            None => Ok(None),
        };
    }
    match slug {
        Some(slug) => view_by_slug(app, account, slug),
        None => Ok(None),
    }
}

/// `POST /`: EDD for the default account (a form body with `edd_action`).
pub(super) async fn root_post(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let account = app.store.default_account()?;
    edd_at(app, &call, account).await
}

/// `GET /` with `edd_action` or `action=get_metadata`: answered here for the default
/// account (SPEC §8.2); `None` for the legacy download ([`asks_download`]) and the landing
/// page.
///
/// # Errors
/// The store failed.
pub fn root_get<'a>(app: &'a App, call: &Call) -> Option<crate::http::route::Reply<'a>> {
    let pairs = query_pairs(call);
    if get(&pairs, "edd_action").is_some() {
        return Some(match app.store.default_account() {
            Ok(account) => Box::pin(edd_at(app, call, account)),
            Err(err) => Box::pin(std::future::ready(Err(Error::from(err)))),
        });
    }
    match get(&pairs, "action") {
        Some("get_metadata") => Some(Box::pin(std::future::ready(root_metadata(
            app, call, &pairs,
        )))),
        _ => None,
    }
}

/// Whether a `GET /` is wp-update-server's legacy download (`action=download`, and no
/// `edd_action`, which [`root_get`] answers first).
pub fn asks_download(call: &Call) -> bool {
    get(&query_pairs(call), "action") == Some("download")
}

/// `GET /?action=get_metadata&slug=S`: the PUC document of the default account's product.
pub(super) fn root_metadata(
    app: &App,
    call: &Call,
    pairs: &[Pair<'_>],
) -> Result<Response<Body>, Error> {
    let account = app
        .store
        .default_account()?
        .ok_or_else(|| unknown("no account"))?;
    let slug = get(pairs, "slug").ok_or_else(|| Error::invalid("slug", "is required"))?;
    let view = view_by_slug(app, &account, slug)?.ok_or_else(|| unknown("no such product"))?;
    puc_answer(app, call, &account, &view, Channel::Stable)
}

/// `GET /?action=download&slug=S[&license_key=K]`: the legacy download, streamed, or
/// `403` with the reason.
pub async fn root_download(app: &App, call: Call) -> Result<Response<Body>, Error> {
    let pairs = query(&call);
    let account = app
        .store
        .default_account()?
        .ok_or_else(|| unknown("no account"))?;
    let slug = get(&pairs, "slug")
        .ok_or_else(|| Error::invalid("slug", "is required"))?
        .to_owned();
    let view = view_by_slug(app, &account, &slug)?.ok_or_else(|| unknown("no such product"))?;
    let agent = user_agent(&call);
    let site = site_of(agent, &pairs);
    let check = puc_check(&call, &pairs, Channel::Stable, agent, site.as_ref());
    let base = base_url(app, &call);
    let (answer, _) = answer(app, &call, &view, &check, &base);
    let offer = answer.offer();
    if offer.download_link.is_none() {
        let why = match &answer {
            Answer::Nothing(_, reason) => render::nothing_message(*reason),
            Answer::Update(_) => render::edd_license_message(offer.license.code),
        };
        return Err(Error::Forbidden(format!(
            "no download: {}",
            why.trim_end_matches('.')
        )));
    }
    let version = view
        .versions
        .iter()
        .find(|v| v.version.as_str() == offer.version)
        .ok_or_else(|| unknown("no such version"))?;
    let (_, file) =
        crate::service::catalog::file(&app.public_ctx(call.now), &account, version.file)?;
    let path = app.store.blobs().path(&file.blob);
    let etag = file.blob.to_hex();
    let filename = format!("{slug}.zip");
    let res = response::file(
        response::FileMeta {
            path: &path,
            len: file.size,
            content_type: &file.content_type,
            etag: &etag,
            filename: Some(&filename),
        },
        &call.input.parts.headers,
    )
    .await?;
    if super::is_download(&call, &res) {
        app.public
            .counts
            .download(view.product.account, view.product.id, file.id, call.now);
    }
    Ok(res)
}
