//! `upkeep release push`: the plan (which account, product and version a package makes,
//! checked before a byte is stored), storing the file with progress, the one-call release,
//! and the update URLs printed afterwards.

use super::*;

/// `upkeep release push`: everything but the file's bytes. Not an [`AdminCommand`]: the
/// content travels beside it (read from the file by the CLI when it opened the store
/// itself, streamed after this request over the admin socket, see `control`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    pub account: Option<String>,
    pub product: Option<String>,
    /// The name the file is served under (the pushed file's own name).
    pub filename: String,
    /// The file's size in bytes, as the CLI found it before sending.
    pub size: u64,
    pub version: Option<String>,
    pub maturity: Option<String>,
    /// The release notes (the content of `--notes FILE`).
    pub release_notes: Option<String>,
    pub rollout: Option<u8>,
    pub draft: bool,
    /// The license model of a product the push creates.
    pub license: Option<String>,
    /// Where the printed update URLs start, and which setting gave it.
    pub base_url: String,
    pub base_from: String,
}

/// What a push resolved before any byte of the file is stored: the account and how the
/// product is found.
#[derive(Debug)]
pub struct PushPlan {
    account: AccountPrefix,
    target: ReleaseTarget,
    options: ReleaseOptions,
}

/// Checks a push before its file is read: the account, the product, the options. A
/// refusal here stores nothing (and, over the socket, is sent before the bytes).
///
/// # Errors
/// As the fields are wrong: the message names the flag.
pub fn plan_push(ctx: &Ctx<'_>, request: &PushRequest, max_upload: u64) -> Result<PushPlan, Error> {
    crate::model::catalog::check_filename(&request.filename)
        .map_err(|why| Error::invalid("FILE", format!("its name: {why}")))?;
    if request.size == 0 {
        return Err(Error::bad(
            "invalid_package",
            format!("package: {} is empty", request.filename),
        ));
    }
    if request.size > max_upload {
        return Err(Error::Coded {
            status: http::StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!(
                "FILE: {} is {} bytes, more than the upload limit of {max_upload} bytes",
                request.filename, request.size
            ),
        });
    }
    let account = account_of(ctx, request.account.as_deref())?;
    let maturity = request
        .maturity
        .as_deref()
        .map(|m| {
            Maturity::parse(m).ok_or_else(|| {
                Error::invalid(
                    "--maturity",
                    format!("`{m}` is not dev, alpha, beta, rc or stable"),
                )
            })
        })
        .transpose()?;
    if let Some(rollout) = request.rollout
        && !(1..=100).contains(&rollout)
    {
        return Err(Error::invalid("--rollout", "must be 1–100 (% of sites)"));
    }
    if let Some(version) = &request.version {
        crate::model::Version::parse(version)
            .map_err(|err| Error::bad("invalid_version", format!("--version: {err}")))?;
    }
    let license = request.license.as_deref().map(parse_license).transpose()?;
    let target = match &request.product {
        Some(slug) => {
            let product = ctx.store.product_by_slug(&account, slug)?.ok_or_else(|| {
                Error::NotFound(format!(
                    "--product: account {account} has no product `{slug}` (omit --product to \
                     create a plugin or theme from its package, or `upkeep product create` it)"
                ))
            })?;
            ReleaseTarget::Product(product.id)
        }
        None => ReleaseTarget::BySlug {
            license: license.unwrap_or(LicenseModel::Free),
            kind: None,
        },
    };
    Ok(PushPlan {
        account,
        target,
        options: ReleaseOptions {
            version: request.version.clone(),
            maturity,
            release_notes: request.release_notes.clone(),
            rollout: request.rollout,
            draft: request.draft,
        },
    })
}

/// Stores a push's file, read from `reader` (at most `request.size` bytes are read): the
/// file itself when the CLI opened the store, the socket's byte stream in the server.
///
/// # Errors
/// Reading failed (`FILE: …`), or the blob could not be written (a full disk is
/// `storage_unavailable`).
pub fn store_file(
    ctx: &Ctx<'_>,
    request: &PushRequest,
    reader: impl std::io::Read,
) -> Result<Staged, Error> {
    use crate::store::PutError;
    ctx.store
        .blobs()
        .put_reader(reader.take(request.size), request.size)
        .map_err(|err| match err {
            PutError::Source(err) => Error::bad(
                "incomplete_upload",
                format!(
                    "FILE: reading {} failed after some bytes: {err}; nothing was stored",
                    request.filename
                ),
            ),
            PutError::TooLarge { limit } => Error::invalid(
                "FILE",
                format!(
                    "{} grew past {limit} bytes while it was read",
                    request.filename
                ),
            ),
            PutError::Io(err) if err.raw_os_error() == Some(libc::ENOSPC) => {
                Error::StorageUnavailable(crate::store::StoreError::from(err))
            }
            PutError::Io(err) => Error::Internal(Box::new(err)),
        })
}

/// Ships the release of a push whose file is stored (`staged`), and says what it did,
/// with the product's update URLs.
///
/// # Errors
/// What [`catalog::release_package`] refuses (`invalid_package`, `version_exists`, …).
pub fn push(
    ctx: &Ctx<'_>,
    request: &PushRequest,
    plan: PushPlan,
    staged: Staged,
) -> Result<Output, Error> {
    if staged.size() != request.size {
        return Err(Error::bad(
            "incomplete_upload",
            format!(
                "FILE: {} bytes of {} arrived; nothing was stored (was the file changed while \
                 it was sent?)",
                staged.size(),
                request.size
            ),
        ));
    }
    let content_type = if request.filename.to_ascii_lowercase().ends_with(".zip") {
        "application/zip"
    } else {
        "application/octet-stream"
    };
    let upload = Upload {
        staged,
        filename: request.filename.clone(),
        content_type: content_type.to_owned(),
    };
    let account = plan.account;
    let released = catalog::release_package(ctx, &account, plan.target, upload, plan.options)?
        .durable_blocking()?;
    let product = &released.product;
    let release = &released.release;
    let urls = update_urls(&request.base_url, &account, product);
    let mut text = String::new();
    let state = if release.published {
        "published"
    } else {
        "draft (unpublished): `upkeep release publish` offers it to sites"
    };
    if released.version_created {
        let _ = writeln!(
            text,
            "released {} {} ({}), {state}",
            product.slug,
            release.version,
            release.maturity.as_str()
        );
    } else {
        let _ = writeln!(
            text,
            "{} {} already holds this file: nothing changed ({})",
            product.slug,
            release.version,
            if release.published {
                "published"
            } else {
                "unpublished"
            }
        );
    }
    let _ = writeln!(
        text,
        "  product  {} ({}, id {}, license {}){}",
        product.slug,
        product.kind.as_str(),
        product.id,
        product.license.as_str(),
        if released.product_created {
            ", created from the package"
        } else {
            ""
        }
    );
    if let Some(file) = release.primary() {
        let _ = writeln!(
            text,
            "  file     {} ({}, blake3 {})",
            file.filename,
            human_size(file.size),
            file.blob.to_hex()
        );
    }
    if release.rollout < 100 {
        let _ = writeln!(text, "  rollout  {}% of sites", release.rollout);
    }
    let hint = if request.base_from == "--public-url" {
        ""
    } else {
        "; give --public-url (UPKEEP_PUBLIC_URL) for the address sites reach"
    };
    let _ = writeln!(
        text,
        "update URLs (base {}, from {}{hint}):",
        request.base_url, request.base_from
    );
    for (label, _, url) in &urls {
        let _ = writeln!(text, "  {label:<24} {url}");
    }
    let url_map: serde_json::Map<String, Value> = urls
        .iter()
        .map(|(_, key, url)| ((*key).to_owned(), Value::String(url.clone())))
        .collect();
    Ok(Output {
        text,
        json: json!({
            "account": account.as_str(),
            "product": product_json(product),
            "product_created": released.product_created,
            "version_created": released.version_created,
            "version": version_json(release),
            "update_urls": url_map,
            "base_url": request.base_url,
            "base_from": request.base_from,
        }),
    })
}

/// The product's update-check URLs, one a dialect (SPEC §8.2): `(label, key, url)`. An
/// app has only the UpdaterCloud one (the others are WordPress clients').
pub fn update_urls(
    base: &str,
    account: &AccountPrefix,
    product: &Product,
) -> Vec<(&'static str, &'static str, String)> {
    let slug = &product.slug;
    let id = product.id.0;
    let mut urls = Vec::new();
    let folder = match product.kind {
        ProductKind::Plugin => Some("plugins"),
        ProductKind::Theme => Some("themes"),
        ProductKind::App => None,
    };
    if let Some(folder) = folder {
        urls.push((
            "WunderUpdates",
            "wunderupdates",
            format!("{base}/v1/public/{account}/{folder}/{slug}"),
        ));
        urls.push((
            "Plugin Update Checker",
            "plugin_update_checker",
            format!("{base}/updates/{account}/{slug}"),
        ));
        urls.push((
            "EDD Software Licensing",
            "edd",
            format!("{base}/edd/{account}/?edd_action=get_version&item_id={id}"),
        ));
    }
    urls.push((
        "UpdaterCloud",
        "updatercloud",
        format!("{base}/api/v1/products/{id}/update"),
    ));
    urls
}

/// The base of the printed URLs: `--public-url` (trailing `/` dropped), else
/// `http://LISTEN` (an unspecified address such as `0.0.0.0` shown as loopback). Returns
/// the base and the setting it came from.
///
/// # Errors
/// A `--public-url` that is not an http(s) URL.
pub fn url_base(public_url: Option<&str>, listen: &str) -> Result<(String, String), Error> {
    if let Some(url) = public_url.map(str::trim).filter(|u| !u.is_empty()) {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.contains(' ') {
            return Err(Error::invalid(
                "--public-url",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        return Ok((
            url.trim_end_matches('/').to_owned(),
            "--public-url".to_owned(),
        ));
    }
    let host = match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            std::net::SocketAddr::new(loopback, addr.port()).to_string()
        }
        Ok(addr) => addr.to_string(),
        Err(_) => listen.to_owned(),
    };
    Ok((format!("http://{host}"), "--listen".to_owned()))
}

/// A reader that shows how much of it was read, on stderr, when stderr is a terminal:
/// `uploading plugin.zip: 1.2 MiB / 3.4 MiB (35%)`, redrawn at most every 100 ms, ended
/// with a newline. Silent when `show` is false.
pub struct Progress<R> {
    inner: R,
    label: String,
    total: u64,
    done: u64,
    show: bool,
    drawn: Option<std::time::Instant>,
}

impl<R> Progress<R> {
    pub fn new(inner: R, label: String, total: u64, show: bool) -> Self {
        Progress {
            inner,
            label,
            total,
            done: 0,
            show,
            drawn: None,
        }
    }

    fn draw(&mut self, last: bool) {
        use std::io::Write as _;
        let percent = (self.done.saturating_mul(100))
            .checked_div(self.total)
            .unwrap_or(100)
            .min(100);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2Kuploading {}: {} / {} ({percent}%)",
            self.label,
            human_size(self.done),
            human_size(self.total)
        );
        if last {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }

    /// Ends the line, if one was drawn.
    pub fn finish(&mut self) {
        if self.show && self.drawn.is_some() {
            self.draw(true);
            self.drawn = None;
        }
    }
}

impl<R: std::io::Read> std::io::Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.show {
            let now = std::time::Instant::now();
            let due = self
                .drawn
                .is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_millis(100));
            if due || n == 0 {
                self.draw(false);
                self.drawn = Some(now);
            }
        }
        Ok(n)
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_base_comes_from_public_url_else_from_the_listen_address() {
        let (base, from) = url_base(Some("https://updates.example.com/"), "0.0.0.0:80").unwrap();
        assert_eq!(base, "https://updates.example.com");
        assert_eq!(from, "--public-url");
        let (base, from) = url_base(None, "127.0.0.1:8787").unwrap();
        assert_eq!(
            (base.as_str(), from.as_str()),
            ("http://127.0.0.1:8787", "--listen")
        );
        // A wildcard address is not one a browser can use: loopback instead.
        assert_eq!(
            url_base(None, "0.0.0.0:9000").unwrap().0,
            "http://127.0.0.1:9000"
        );
        assert_eq!(url_base(None, "[::]:9000").unwrap().0, "http://[::1]:9000");
        assert_eq!(
            url_base(Some("  "), "[::1]:8787").unwrap().0,
            "http://[::1]:8787"
        );
        let refused = url_base(Some("updates.example.com"), "127.0.0.1:8787").unwrap_err();
        assert!(
            refused.to_string().starts_with("--public-url:"),
            "{refused}"
        );
    }
}
