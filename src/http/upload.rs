//! Receiving an upload (SPEC §7: routes whose body policy is `Stream`): the request body
//! goes to the blob store chunk by chunk, never whole in memory, as either
//!
//! - `multipart/form-data`: one `file` part (streamed into a blob) and small text fields
//!   (`name`, `description`, `primary`, …; each at most [`MAX_FIELD`] bytes, at most
//!   [`MAX_FIELDS`] of them), parsed by `multer`; or
//! - a raw body of any other content type, whose file name comes from the query
//!   (`?filename=` or `?name=`).
//!
//! Content-Type alone decides (never sniffed). Anything malformed — a multipart body cut
//! off mid-part, no `file` part, two of them, an empty file — is a `400` naming the
//! problem, and stores nothing (the temporary file is removed; a blob stored but not
//! committed is swept). After the last byte the caller's credential is checked again
//! ([`Call::reauthorize`]).

use crate::app::App;
use crate::error::Error;
use crate::http::request;
use crate::http::route::Call;
use crate::model::catalog::check_filename;
use crate::service::catalog::Upload;
use crate::store::{ChunkSource, PutError};
use bytes::Bytes;
use http::header;

/// Largest text field of a multipart upload (bytes).
pub const MAX_FIELD: usize = 64 * 1024;
/// Most text fields of a multipart upload.
pub const MAX_FIELDS: usize = 32;

/// An upload received: the stored content and the text fields that came with it.
#[derive(Debug)]
pub struct Received {
    pub upload: Upload,
    /// Text fields (multipart) or query parameters (raw), in order.
    pub fields: Vec<(String, String)>,
}

impl Received {
    /// Refuses the upload with `err`: its stored content is deleted (when nothing else
    /// references it) before the refusal is answered.
    pub async fn refuse(self, err: Error) -> Error {
        self.upload.staged.discard().await;
        err
    }

    /// The last value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the upload of `call` into the blob store, then re-checks the credential.
/// `default_name` names a raw upload that gives no `?filename=`.
///
/// # Errors
/// `400` (malformed, empty, no file), `413` (past `--max-upload`), `408`, `415`, or the
/// credential failing its re-check.
pub async fn receive(app: &App, call: &mut Call, default_name: &str) -> Result<Received, Error> {
    let mut stream = call
        .stream
        .take()
        .ok_or_else(|| Error::Internal("an upload route without a streamed body".into()))?;
    let content_type = call
        .input
        .parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let boundary = multer::parse_boundary(&content_type).ok();
    let is_multipart = content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data");
    let received = if is_multipart {
        let boundary = boundary.ok_or_else(|| {
            Error::invalid("Content-Type", "multipart/form-data without a boundary")
        })?;
        receive_multipart(app, stream, boundary).await?
    } else {
        let query = call.query();
        let filename = request::query_param(query, "filename")
            .or_else(|| request::query_param(query, "name"))
            .unwrap_or_else(|| default_name.to_owned());
        check_filename(&filename).map_err(|why| Error::invalid("filename", why))?;
        let staged = store(app, &mut stream).await?;
        let fields = query
            .map(|q| {
                q.split('&')
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (request::form_decode(k), request::form_decode(v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Received {
            upload: Upload {
                staged,
                filename,
                content_type: mime(&content_type),
            },
            fields,
        }
    };
    if received.upload.staged.size() == 0 {
        received.upload.staged.discard().await;
        return Err(Error::invalid("file", "the uploaded file is empty"));
    }
    if let Err(err) = call.reauthorize(app) {
        received.upload.staged.discard().await;
        return Err(err);
    }
    app.metrics.upload(received.upload.staged.size());
    Ok(received)
}

/// The media type without parameters, or `application/octet-stream`.
fn mime(content_type: &str) -> String {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.is_empty() || essence.len() > 255 || !essence.contains('/') {
        "application/octet-stream".to_owned()
    } else {
        essence.to_ascii_lowercase()
    }
}

async fn store<S: ChunkSource<Error = Error>>(
    app: &App,
    source: &mut S,
) -> Result<crate::store::Staged, Error> {
    app.store
        .blobs()
        .put_stream(source)
        .await
        .map_err(|err| match err {
            PutError::Source(err) => err,
            PutError::TooLarge { limit } => Error::PayloadTooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            PutError::Io(err) => io_error(err),
        })
}

fn io_error(err: std::io::Error) -> Error {
    if err.raw_os_error() == Some(libc::ENOSPC) {
        Error::StorageUnavailable(crate::store::StoreError::from(err))
    } else {
        Error::Internal(Box::new(err))
    }
}

/// A `multer` field as a chunk source for the blob store.
struct FieldSource<'a>(multer::Field<'a>, &'a Held);

impl ChunkSource for FieldSource<'_> {
    type Error = Error;

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.1.next(&mut self.0).await
    }
}

/// Most bytes the multipart parser may hold without handing them out as a part's data:
/// what it keeps while it looks for a boundary or the end of a part's headers (a
/// preamble, the headers, a boundary), not counting the chunk just read. A body that never
/// shows its boundary, or a part whose headers never end, is refused past this instead of
/// being held whole in memory up to the upload limit. (This relies on the body arriving
/// a chunk at a time, as hyper's HTTP/1 body does here, each at most the server's read
/// buffer: a source with many chunks ready at once would let the parser pull more than
/// this ahead of a large file part, and such an upload would be refused.)
const MAX_HELD: u64 = 1 << 20;

/// Bytes read from the body minus the bytes handed out as parts' data.
#[derive(Default)]
struct Held(std::sync::atomic::AtomicU64);

impl Held {
    /// Before handing the parser a chunk of `len` bytes: refused when what it already
    /// holds is over [`MAX_HELD`].
    fn take(&self, len: usize) -> Result<(), Error> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.0.load(Relaxed) > MAX_HELD {
            return Err(Error::invalid(
                "body",
                format!(
                    "malformed multipart/form-data: no boundary or end of part headers within \
                     {} KiB",
                    MAX_HELD >> 10
                ),
            ));
        }
        self.0.fetch_add(len as u64, Relaxed);
        Ok(())
    }

    /// The next chunk of a part's data, counted as handed out.
    async fn next(&self, field: &mut multer::Field<'_>) -> Result<Option<Bytes>, Error> {
        let chunk = field.chunk().await.map_err(multipart_error)?;
        if let Some(chunk) = &chunk {
            let handed = chunk.len() as u64;
            let _ = self.0.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |held| Some(held.saturating_sub(handed)),
            );
        }
        Ok(chunk)
    }
}

/// The body's own failure (too large, stalled, broken off) when it caused the multipart
/// error; otherwise a `400` describing the malformed body.
fn multipart_error(err: multer::Error) -> Error {
    if let multer::Error::StreamReadFailed(source) = err {
        return match source.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error::invalid("body", format!("the upload broke off: {other}")),
        };
    }
    Error::invalid("body", format!("malformed multipart/form-data: {err}"))
}

async fn receive_multipart(
    app: &App,
    stream: crate::http::body::BodyStream,
    boundary: String,
) -> Result<Received, Error> {
    let held = std::sync::Arc::new(Held::default());
    let counted = held.clone();
    let chunks = futures_util::stream::unfold(stream, move |mut stream| {
        let held = counted.clone();
        async move {
            match stream.chunk().await {
                Ok(Some(bytes)) => match held.take(bytes.len()) {
                    Ok(()) => Some((Ok::<Bytes, Error>(bytes), stream)),
                    Err(err) => Some((Err(err), stream)),
                },
                Ok(None) => None,
                Err(err) => Some((Err(err), stream)),
            }
        }
    });
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new().for_field("file", u64::MAX), // the body's own limit applies
    );
    let mut multipart = multer::Multipart::with_constraints(chunks, boundary, constraints);
    let mut upload: Option<Upload> = None;
    let mut fields = Vec::new();
    let parsed: Result<(), Error> = async {
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or("").to_owned();
            if name == "file" {
                if upload.is_some() {
                    return Err(Error::invalid("file", "more than one `file` part"));
                }
                let filename = field
                    .file_name()
                    .map(str::to_owned)
                    .unwrap_or_else(|| "file".to_owned());
                check_filename(&filename)
                    .map_err(|why| Error::invalid("file", format!("file name: {why}")))?;
                let content_type = field.content_type().map_or_else(
                    || "application/octet-stream".to_owned(),
                    |m| mime(m.as_ref()),
                );
                let mut source = FieldSource(field, &held);
                let staged = store(app, &mut source).await?;
                upload = Some(Upload {
                    staged,
                    filename,
                    content_type,
                });
            } else {
                if fields.len() == MAX_FIELDS {
                    return Err(Error::invalid(
                        "body",
                        format!("more than {MAX_FIELDS} form fields"),
                    ));
                }
                let mut field = field;
                let mut value = Vec::new();
                while let Some(chunk) = held.next(&mut field).await? {
                    value.extend_from_slice(&chunk);
                    if value.len() > MAX_FIELD {
                        return Err(Error::invalid(
                            &name,
                            format!("longer than {MAX_FIELD} bytes"),
                        ));
                    }
                }
                let value = String::from_utf8(value)
                    .map_err(|_| Error::invalid(&name, "not UTF-8 text"))?;
                fields.push((name, value));
            }
        }
        Ok(())
    }
    .await;
    if let Err(err) = parsed {
        // A part already stored is deleted before the refusal is answered.
        if let Some(upload) = upload {
            upload.staged.discard().await;
        }
        return Err(err);
    }
    let upload =
        upload.ok_or_else(|| Error::invalid("file", "the multipart body has no `file` part"))?;
    Ok(Received { upload, fields })
}
