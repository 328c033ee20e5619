//! Bodies that stream: the response [`Body`] (a whole document, or a file read in
//! chunks of at most [`FILE_CHUNK`]), and the request [`BodyStream`] a streamed route reads chunk by
//! chunk under its limit. Neither ever holds a whole file in memory.

use crate::error::Error;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// Chunk size of request bodies read into files (uploads).
pub const CHUNK: usize = 64 * 1024;

/// Chunk size of files sent as response bodies: the most one read asks of the file. A
/// download holds at most two chunks of its own (the one handed to hyper and, when reading
/// on the blocking pool, the one read ahead) plus what hyper queues for the socket, which
/// the server bounds to about two chunks (`MAX_BUF_SIZE` in `server.rs`). 100 concurrent
/// downloads of 100 MiB grew the server by 3 MiB (2026-12-01, `benches/README.md`; 13–17
/// MiB before `YIELD_EVERY`).
/// (128 KiB, with the cached reads, measured no faster — 1.29× nginx against 1.27× in one
/// A/B run — and grew the server by 28 MiB against 13 MiB.)
pub const FILE_CHUNK: usize = 64 * 1024;

/// Every response body.
#[derive(Debug, Default)]
pub struct Body(Kind);

#[derive(Debug, Default)]
enum Kind {
    #[default]
    Empty,
    Full(Option<Bytes>),
    File(FileBody),
}

impl Body {
    /// A whole, already rendered body.
    pub fn new(bytes: Bytes) -> Self {
        Body(Kind::Full(Some(bytes)))
    }

    /// `len` bytes of `file` from byte `start`, read at most [`FILE_CHUNK`] at a time.
    pub fn file(file: std::fs::File, start: u64, len: u64) -> Self {
        Body(Kind::File(FileBody {
            file: Arc::new(file),
            next: start,
            unread: len,
            remaining: len,
            ahead: Ahead::Idle,
            inline: Inline::Try,
            in_a_row: 0,
        }))
    }

    /// [`Body::file`] with the given way of reading (the tests force each path).
    #[cfg(test)]
    fn file_read(file: std::fs::File, start: u64, len: u64, inline: Inline) -> Self {
        let mut body = Body::file(file, start, len);
        if let Kind::File(file) = &mut body.0 {
            file.inline = inline;
        }
        body
    }
}

/// A byte range of an open file, read with positioned reads straight into the buffer its
/// frame carries (no second copy, as `tokio::fs::File` would make).
///
/// A chunk whose pages are in the page cache is read on the runtime thread with
/// `preadv2(RWF_NOWAIT)`, which copies what is cached and never waits on the disk
/// (`EAGAIN` instead): a bounded memory copy of at most [`FILE_CHUNK`], no hand-off to
/// another thread. Anything it cannot read (not cached, or a kernel or file system without
/// `RWF_NOWAIT`) is read with `pread` on the blocking pool, and while that chunk is
/// written to the socket the next one is read ahead (from the page cache if it is there
/// by then, else on the pool again).
#[derive(Debug)]
struct FileBody {
    file: Arc<std::fs::File>,
    /// Offset of the first byte not yet asked of the file.
    next: u64,
    /// Bytes not yet asked of the file.
    unread: u64,
    /// Bytes not yet handed to hyper.
    remaining: u64,
    /// The chunk hyper gets next, if it has been asked of the file.
    ahead: Ahead,
    inline: Inline,
    /// Chunks handed over since this body last answered `Pending`.
    in_a_row: usize,
}

/// A file body that never waits (everything cached) answers `Pending` once every this many
/// chunks (and wakes itself at once), so the connection's task lets the others run after
/// 256 KiB rather than after hyper's 16 write rounds (~2 MiB). Measured: the same speed,
/// and 100 concurrent downloads of 100 MiB grew the server by 2.9 MiB instead of 12–17
/// MiB (probably: a turn's chunks are written and freed before another connection
/// allocates its own) and finished sooner; the wrk p99 was no better.
const YIELD_EVERY: usize = 4;

/// The next chunk of a [`FileBody`].
#[derive(Debug)]
enum Ahead {
    /// Not asked for yet.
    Idle,
    /// Read from the page cache, `asked` bytes of the range (fewer read: the file ended).
    Ready {
        asked: usize,
        read: std::io::Result<Bytes>,
    },
    /// Being read on the blocking pool, `asked` bytes.
    Reading {
        asked: usize,
        task: tokio::task::JoinHandle<std::io::Result<Bytes>>,
    },
}

/// Whether a [`FileBody`] reads cached chunks on the runtime thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inline {
    /// `preadv2(RWF_NOWAIT)` first, the blocking pool for what it cannot read.
    Try,
    /// Only the blocking pool: the kernel or the file system refused `RWF_NOWAIT`.
    Never,
    /// Tests: every other read answers "would block" (`true`: the next one does), so a
    /// body goes back and forth between the two paths.
    #[cfg(test)]
    Alternate(bool),
}

impl FileBody {
    /// Asks the file for the next chunk, if any of the range is left to ask for and the
    /// next chunk is not asked for already: from the page cache, else on the blocking pool.
    fn fetch(&mut self) {
        if self.unread == 0 || !matches!(self.ahead, Ahead::Idle) {
            return;
        }
        let want = usize::try_from(self.unread)
            .unwrap_or(usize::MAX)
            .min(FILE_CHUNK);
        let at = self.next;
        self.ahead = match self.read_cached(at, want) {
            Some(read) => {
                // What was read is the chunk (its pages may be cached only in part); an
                // empty read is the end of the file, short of the `want` bytes promised.
                let asked = match &read {
                    Ok(chunk) if !chunk.is_empty() => chunk.len(),
                    _ => want,
                };
                self.next += asked as u64;
                self.unread -= asked as u64;
                Ahead::Ready { asked, read }
            }
            None => {
                let file = self.file.clone();
                self.next += want as u64;
                self.unread -= want as u64;
                Ahead::Reading {
                    asked: want,
                    task: tokio::task::spawn_blocking(move || read_chunk(&file, at, want)),
                }
            }
        };
    }

    /// Up to `want` bytes at `at` from the page cache, without waiting on the disk;
    /// `None` when that would wait, or `RWF_NOWAIT` is not supported (the pool reads it).
    fn read_cached(&mut self, at: u64, want: usize) -> Option<std::io::Result<Bytes>> {
        match &mut self.inline {
            Inline::Try => {}
            Inline::Never => return None,
            #[cfg(test)]
            Inline::Alternate(refuse) => {
                *refuse = !*refuse;
                if !*refuse {
                    return None;
                }
            }
        }
        match read_now(&self.file, at, want) {
            Ok(chunk) => Some(Ok(chunk)),
            Err(err) => match err.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => None,
                // No RWF_NOWAIT here (a kernel before 4.14, a file system without it):
                // this body stops trying.
                Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => {
                    self.inline = Inline::Never;
                    None
                }
                _ => Some(Err(err)),
            },
        }
    }

    /// The next chunk once it is read: its size asked, what was read, and whether it was
    /// read on the blocking pool.
    fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, std::io::Result<Bytes>, bool)>> {
        self.fetch();
        let next = match &mut self.ahead {
            Ahead::Idle => return Poll::Ready(None),
            Ahead::Ready { .. } => {
                let Ahead::Ready { asked, read } = std::mem::replace(&mut self.ahead, Ahead::Idle)
                else {
                    unreachable!("matched above")
                };
                (asked, read, false)
            }
            Ahead::Reading { asked, task } => {
                let read = ready!(Pin::new(task).poll(cx))
                    .map_err(std::io::Error::other)
                    .and_then(|read| read);
                let asked = *asked;
                self.ahead = Ahead::Idle;
                (asked, read, true)
            }
        };
        Poll::Ready(Some(next))
    }
}

/// One `preadv2(RWF_NOWAIT)` of up to `want` bytes of `file` at `at` into a new buffer:
/// what the page cache holds of the range from `at` on (empty at the end of the file), or
/// `EAGAIN` when not even its first page is cached.
fn read_now(file: &std::fs::File, at: u64, want: usize) -> std::io::Result<Bytes> {
    use std::os::fd::AsRawFd;
    let offset = libc::off_t::try_from(at).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut buf = BytesMut::with_capacity(want);
    let spare = buf.spare_capacity_mut();
    let iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len().min(want),
    };
    // SAFETY: `iov` describes writable memory of `buf` (its spare capacity, alive across
    // the call); the kernel writes at most `iov_len` bytes there.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    let n = usize::try_from(n).map_err(|_| std::io::Error::last_os_error())?;
    // SAFETY: the kernel initialised the first `n` (≤ `iov_len`) bytes of the capacity.
    unsafe { buf.set_len(n) };
    Ok(buf.freeze())
}

/// Reads `want` bytes of `file` at `at` with `pread` (it may wait on the disk: the
/// blocking pool's work), or fewer only at the end of the file.
fn read_chunk(file: &std::fs::File, at: u64, want: usize) -> std::io::Result<Bytes> {
    use std::os::fd::AsRawFd;
    let mut buf = BytesMut::with_capacity(want);
    while buf.len() < want {
        let offset = libc::off_t::try_from(at + buf.len() as u64)
            .map_err(|_| std::io::ErrorKind::InvalidInput)?;
        let filled = buf.len();
        let spare = buf.spare_capacity_mut();
        let len = spare.len().min(want - filled);
        // SAFETY: as in `read_now`: `len` bytes of `buf`'s spare capacity, alive across
        // the call.
        let n = unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), len, offset) };
        match usize::try_from(n) {
            Ok(0) => break,
            // SAFETY: the kernel initialised the next `n` (≤ `len`) bytes.
            Ok(n) => unsafe { buf.set_len(filled + n) },
            Err(_) => {
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
    Ok(buf.freeze())
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut self.get_mut().0 {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::File(file) => {
                if file.remaining == 0 {
                    return Poll::Ready(None);
                }
                if file.in_a_row >= YIELD_EVERY {
                    file.in_a_row = 0;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let Poll::Ready(next) = file.poll_chunk(cx) else {
                    file.in_a_row = 0;
                    return Poll::Pending;
                };
                let Some((asked, read, pooled)) = next else {
                    return Poll::Ready(None);
                };
                file.in_a_row += 1;
                let chunk = match read {
                    Ok(chunk) if chunk.len() < asked => {
                        // The file is shorter than promised (changed under us): end with an
                        // error so the client sees a broken transfer, not a short file.
                        Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "file ended before the promised length",
                        ))
                    }
                    read => read,
                };
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(err) => {
                        // Nothing more is sent after an error, whoever polls again.
                        file.remaining = 0;
                        file.unread = 0;
                        return Poll::Ready(Some(Err(err)));
                    }
                };
                file.remaining -= chunk.len() as u64;
                if pooled {
                    // Read ahead while this chunk goes to the socket: the disk is slow. (A
                    // chunk from the page cache is not worth holding a second buffer for:
                    // the next one is read as fast when hyper asks.)
                    file.fetch();
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_none(),
            Kind::File(file) => file.remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::File(file) => SizeHint::with_exact(file.remaining),
        }
    }
}

/// A byte range the client asked for (`Range: bytes=…`), resolved against a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// No usable `Range` header (absent, several ranges, another unit): the whole file.
    Whole,
    /// `start..=end` (inclusive, as `Content-Range` writes it).
    Part { start: u64, end: u64 },
    /// Nothing of the file is in the range: `416`.
    Unsatisfiable,
}

impl Range {
    /// Reads one `bytes=` range against a file of `len` bytes (RFC 9110 §14.1.2):
    /// `a-b`, `a-`, `-n`. Several ranges, or a malformed header, serve the whole file (a
    /// server may ignore Range); a well-formed one past the end is unsatisfiable.
    pub fn parse(header: Option<&str>, len: u64) -> Range {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return Range::Whole;
        };
        if spec.contains(',') {
            return Range::Whole;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return Range::Whole;
        };
        let number = |text: &str| -> Option<u64> {
            let text = text.trim();
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        match (first.trim().is_empty(), number(first), number(last)) {
            // `-n`: the last n bytes.
            (true, _, Some(0)) => Range::Unsatisfiable,
            (true, _, Some(_)) if len == 0 => Range::Unsatisfiable,
            (true, _, Some(n)) => Range::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            (false, Some(start), None) if last.trim().is_empty() => {
                if start >= len {
                    Range::Unsatisfiable
                } else {
                    Range::Part {
                        start,
                        end: len - 1,
                    }
                }
            }
            (false, Some(start), Some(end)) if start <= end => {
                if start >= len {
                    Range::Unsatisfiable
                } else {
                    Range::Part {
                        start,
                        end: end.min(len - 1),
                    }
                }
            }
            _ => Range::Whole,
        }
    }
}

/// Opens `path` for a [`Body::file`] (on the blocking pool: an `open` may wait on the
/// disk).
///
/// # Errors
/// The file cannot be opened.
pub async fn open(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(path))
        .await
        .map_err(std::io::Error::other)?
}

/// A streamed request body, read chunk by chunk: at most `limit` bytes in all, and each
/// chunk within `idle` of the one before (a slow but steady upload is fine; a stalled
/// one is cut).
pub struct BodyStream {
    body: Pin<Box<dyn hyper::body::Body<Data = Bytes, Error = BoxError> + Send>>,
    limit: u64,
    read: u64,
    idle: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream")
            .field("limit", &self.limit)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    pub fn new<B>(body: B, limit: u64, idle: Duration) -> Self
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        BodyStream {
            body: Box::pin(body.map_err(Into::into)),
            limit,
            read: 0,
            idle,
        }
    }

    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.read
    }

    /// The next chunk, `None` at the end.
    ///
    /// # Errors
    /// `PayloadTooLarge` past the limit, `RequestTimeout` when the client stalls,
    /// `InvalidRequest` when the body breaks off.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            let frame = tokio::time::timeout(self.idle, self.body.frame())
                .await
                .map_err(|_| Error::RequestTimeout)?;
            let Some(frame) = frame else {
                return Ok(None);
            };
            let frame = frame.map_err(|err| {
                Error::InvalidRequest(format!("the request body broke off: {err}"))
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            self.read += data.len() as u64;
            if self.read > self.limit {
                return Err(Error::PayloadTooLarge {
                    limit: usize::try_from(self.limit).unwrap_or(usize::MAX),
                });
            }
            return Ok(Some(data));
        }
    }
}

/// A request body is the main source of uploads for the blob store.
impl crate::store::ChunkSource for BodyStream {
    type Error = Error;

    fn next_chunk(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Bytes>, Self::Error>> + Send {
        self.chunk()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[test]
    fn ranges_follow_rfc_9110() {
        let part = |start, end| Range::Part { start, end };
        assert_eq!(Range::parse(None, 100), Range::Whole);
        assert_eq!(Range::parse(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(Range::parse(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(Range::parse(Some("bytes=90-500"), 100), part(90, 99));
        assert_eq!(Range::parse(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(Range::parse(Some("bytes=-500"), 100), part(0, 99));
        assert_eq!(Range::parse(Some("bytes=100-"), 100), Range::Unsatisfiable);
        assert_eq!(Range::parse(Some("bytes=-0"), 100), Range::Unsatisfiable);
        assert_eq!(Range::parse(Some("bytes=0-0"), 0), Range::Unsatisfiable);
        // Ignored (the whole file): other units, several ranges, nonsense.
        for header in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=",
            "bytes=-",
        ] {
            assert_eq!(Range::parse(Some(header), 100), Range::Whole, "{header}");
        }
    }

    /// Streams a range of a file a few chunks long, and the error cases, reading the way
    /// `inline` says.
    async fn file_bodies_read(inline: Inline) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let content: Vec<u8> = (0..(3 * FILE_CHUNK + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &content).unwrap();
        let start = FILE_CHUNK as u64 - 5;
        let len = 2 * FILE_CHUNK as u64 + 9;
        let body = Body::file_read(open(&path).await.unwrap(), start, len, inline);
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(len));
        let mut body = std::pin::pin!(body);
        let mut got = Vec::new();
        let mut chunks = 0;
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= FILE_CHUNK);
            got.extend_from_slice(&data);
            chunks += 1;
        }
        assert_eq!(got, &content[start as usize..(start + len) as usize]);
        // A cached read may stop short of a chunk (part of it cached), never of the range.
        assert!(chunks >= 3, "{chunks} chunks");
        // A file shorter than promised ends in an error, not a short success.
        let short = Body::file_read(
            open(&path).await.unwrap(),
            0,
            content.len() as u64 + 1,
            inline,
        );
        assert!(short.collect().await.is_err());
        // So is one whose range starts past the end.
        let past = Body::file_read(
            open(&path).await.unwrap(),
            content.len() as u64 + 1,
            10,
            inline,
        );
        assert!(past.collect().await.is_err());
        // An empty range is an empty body, and nothing is read.
        let empty = Body::file_read(open(&path).await.unwrap(), 7, 0, inline);
        assert!(hyper::body::Body::is_end_stream(&empty));
        assert!(empty.collect().await.unwrap().to_bytes().is_empty());
    }

    #[tokio::test]
    async fn a_file_body_streams_its_range_in_chunks() {
        file_bodies_read(Inline::Try).await;
    }

    #[tokio::test]
    async fn a_file_body_streams_from_the_blocking_pool() {
        // The fallback when nothing is cached, or RWF_NOWAIT is not supported.
        file_bodies_read(Inline::Never).await;
    }

    #[tokio::test]
    async fn a_file_body_switches_between_cache_and_pool() {
        // Every other chunk "would block": cached reads and pool reads (with their read
        // ahead) interleave, starting either way.
        file_bodies_read(Inline::Alternate(true)).await;
        file_bodies_read(Inline::Alternate(false)).await;
    }

    #[tokio::test]
    async fn a_file_body_that_never_waits_still_yields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let chunks = 4 * YIELD_EVERY + 1;
        let content: Vec<u8> = (0..(chunks * FILE_CHUNK))
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(&path, &content).unwrap();
        let body = Body::file(open(&path).await.unwrap(), 0, content.len() as u64);
        let mut body = std::pin::pin!(body);
        let (mut got, mut pending) = (Vec::new(), 0);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        loop {
            match hyper::body::Body::poll_frame(body.as_mut(), &mut cx) {
                Poll::Ready(Some(frame)) => {
                    got.extend_from_slice(&frame.unwrap().into_data().unwrap())
                }
                Poll::Ready(None) => break,
                Poll::Pending => {
                    pending += 1;
                    tokio::task::yield_now().await; // a pool read, if any, finishes meanwhile
                }
            }
        }
        assert_eq!(got, content);
        // At least one Pending per YIELD_EVERY chunks (more when a read went to the pool).
        assert!(
            pending >= chunks / YIELD_EVERY,
            "{pending} Pending for {chunks} chunks"
        );
        // And it wakes itself: a real executor gets every byte.
        let body = Body::file(open(&path).await.unwrap(), 0, content.len() as u64);
        assert_eq!(body.collect().await.unwrap().to_bytes(), content);
    }

    #[test]
    fn a_cached_read_reads_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        match read_now(&file, 2, 100) {
            Ok(read) => {
                // Just written, so cached: what is left of the file from byte 2.
                assert_eq!(&read[..], b"23456789");
                assert!(read_now(&file, 10, 100).unwrap().is_empty());
                assert!(read_now(&file, 50, 100).unwrap().is_empty());
            }
            // A kernel or file system without RWF_NOWAIT: the body uses the pool.
            Err(err) => assert!(
                matches!(
                    err.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL | libc::EAGAIN)
                ),
                "{err}"
            ),
        }
        assert_eq!(&read_chunk(&file, 2, 5).unwrap()[..], b"23456");
        assert_eq!(&read_chunk(&file, 8, 5).unwrap()[..], b"89");
    }

    #[tokio::test]
    async fn a_body_stream_stops_at_its_limit() {
        let mut stream = BodyStream::new(
            Full::new(Bytes::from(vec![7u8; 100])),
            99,
            Duration::from_secs(5),
        );
        assert!(matches!(
            stream.chunk().await,
            Err(Error::PayloadTooLarge { limit: 99 })
        ));
        let mut stream = BodyStream::new(
            Full::new(Bytes::from(vec![7u8; 100])),
            100,
            Duration::from_secs(5),
        );
        assert_eq!(stream.chunk().await.unwrap().unwrap().len(), 100);
        assert!(stream.chunk().await.unwrap().is_none());
        assert_eq!(stream.read(), 100);
    }
}
