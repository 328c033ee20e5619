//! Logging setup: `tracing` to stderr, level from `RUST_LOG`, text or JSON lines.

use crate::cli::LogFormat;
use tracing_subscriber::EnvFilter;

/// Keeps the log writer thread alive; dropping it writes what is queued and stops the
/// thread. Hold it until the process ends.
pub struct LogGuard(
    /// Held only for its `Drop`.
    #[allow(dead_code)]
    Option<WorkerGuard>,
);

/// Lines the log writer thread may have queued before new ones are dropped.
const QUEUE_LINES: usize = 128_000;

/// How often the writer thread writes what is queued while lines come: they reach stderr
/// at most this late (or sooner, once `WAKE_BYTES` are queued). With nothing queued it
/// sleeps until the next line instead.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Queued bytes at which a logging thread wakes the writer rather than let it sleep out
/// `FLUSH_EVERY`.
const WAKE_BYTES: usize = 64 * 1024;

/// The installed writer's queue, once [`init`] installed it.
static INSTALLED: std::sync::OnceLock<std::sync::Arc<Queue>> = std::sync::OnceLock::new();

/// Log lines dropped because the writer's queue was full (a slow stderr, a stalled
/// journald): `upkeep_log_lines_dropped_total`.
pub fn dropped_lines() -> u64 {
    INSTALLED.get().map_or(0, |queue| queue.dropped())
}

/// The metric for `GET /metrics`.
pub fn render_metrics(out: &mut String) {
    use std::fmt::Write;
    out.push_str(
        "# HELP upkeep_log_lines_dropped_total Log lines dropped because the log writer fell behind.\n\
         # TYPE upkeep_log_lines_dropped_total counter\n",
    );
    let _ = writeln!(out, "upkeep_log_lines_dropped_total {}", dropped_lines());
}

/// Lines waiting for the writer thread: one buffer, handed over whole.
pub struct Queue {
    state: std::sync::Mutex<Pending>,
    wake: std::sync::Condvar,
    dropped: std::sync::atomic::AtomicU64,
    max_lines: usize,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
    /// A wake-up was sent and the writer has not taken the buffer since.
    woken: bool,
    /// A whole `FLUSH_EVERY` brought no line, so the writer sleeps until one comes: the
    /// push that queues it wakes the writer (once per quiet spell; while lines keep
    /// coming, every wait gathers some and the writer never goes idle).
    idle: bool,
    closed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues one line (the bytes of one `write`), or drops and counts it when the queue
    /// is full. Never waits for the writer.
    fn push(&self, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        let mut pending = self.lock();
        if pending.lines >= self.max_lines {
            drop(pending);
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        pending.bytes.extend_from_slice(line);
        pending.lines += 1;
        if pending.idle {
            pending.idle = false;
            // (A line of `WAKE_BYTES` alone is written at once, as it would be anyway.)
            pending.woken = pending.bytes.len() >= WAKE_BYTES;
            drop(pending);
            self.wake.notify_one();
        } else if pending.bytes.len() >= WAKE_BYTES && !pending.woken {
            pending.woken = true;
            drop(pending);
            self.wake.notify_one();
        }
    }
}

/// The writing side of a [`Queue`] (a `tracing` writer): each write is one line.
#[derive(Clone)]
pub struct NonBlocking(std::sync::Arc<Queue>);

impl NonBlocking {
    /// The queue behind it (for its drop counter).
    pub fn queue(&self) -> &std::sync::Arc<Queue> {
        &self.0
    }
}

impl std::io::Write for NonBlocking {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `tracing` writes an event to: a borrow of the queue, no reference counting.
pub struct LineWriter<'a>(&'a Queue);

impl std::io::Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for NonBlocking {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.0)
    }
}

/// Stops the writer thread when dropped, after it wrote everything queued.
pub struct WorkerGuard {
    queue: std::sync::Arc<Queue>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A queue in front of `writer`, written by a dedicated thread, that never makes its
/// caller wait: when `lines` are already queued, a new line is dropped and counted.
///
/// Lines are written in batches: the thread takes the whole queue every `FLUSH_EVERY`
/// (sooner when `WAKE_BYTES` are queued) and writes it with one `write`. A logging
/// thread only appends to a buffer under a mutex: no channel send, no wake-up of another
/// thread and no system call per line (with one line a request, those cost more than
/// formatting it) — but for the first line after a `FLUSH_EVERY` that brought none, which
/// wakes the writer: idle, it sleeps without a timeout.
pub fn non_blocking<W: std::io::Write + Send + 'static>(
    mut writer: W,
    lines: usize,
) -> (NonBlocking, WorkerGuard) {
    let queue = std::sync::Arc::new(Queue {
        state: std::sync::Mutex::default(),
        wake: std::sync::Condvar::new(),
        dropped: std::sync::atomic::AtomicU64::new(0),
        max_lines: lines,
    });
    let thread = {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name("upkeep-log".to_owned())
            .spawn(move || {
                let mut batch = Vec::new();
                // The last wait brought no line.
                let mut quiet = false;
                loop {
                    let closed = {
                        let mut pending = queue.lock();
                        // A whole FLUSH_EVERY brought nothing: sleep until a line comes
                        // rather than wake 100 times a second for nothing (an idle server).
                        if quiet {
                            while pending.bytes.is_empty() && !pending.closed {
                                pending.idle = true;
                                pending =
                                    queue.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
                            }
                            pending.idle = false;
                        }
                        if !pending.closed && !pending.woken {
                            pending = queue
                                .wake
                                .wait_timeout(pending, FLUSH_EVERY)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        quiet = pending.bytes.is_empty();
                        std::mem::swap(&mut batch, &mut pending.bytes);
                        pending.lines = 0;
                        pending.woken = false;
                        pending.closed
                    };
                    if !batch.is_empty() {
                        // Nowhere to report a failing stderr; the lines are lost.
                        let _ = writer.write_all(&batch).and_then(|()| writer.flush());
                        batch.clear();
                        // A burst's buffer is not kept for ever.
                        batch.shrink_to(WAKE_BYTES * 2);
                    }
                    if closed {
                        return;
                    }
                }
            })
            .ok()
    };
    (NonBlocking(queue.clone()), WorkerGuard { queue, thread })
}

/// The filter: `RUST_LOG` when it names targets (`warn,upkeep::listening=info`); a bare
/// level (`debug`) applies to upkeep only, as does `default_level` when `RUST_LOG` is
/// unset or invalid. Dependencies (sled, hyper) stay at `warn` unless named, e.g.
/// `RUST_LOG=debug,sled=debug`.
pub fn filter(rust_log: Option<&str>, default_level: &str) -> EnvFilter {
    let fallback = || EnvFilter::new(format!("warn,upkeep={default_level}"));
    let Some(value) = rust_log.map(str::trim).filter(|v| !v.is_empty()) else {
        return fallback();
    };
    let bare_level = matches!(
        value.to_ascii_lowercase().as_str(),
        "trace" | "debug" | "info" | "warn" | "error" | "off"
    );
    let directives = if bare_level {
        format!("warn,upkeep={value}")
    } else {
        value.to_owned()
    };
    EnvFilter::try_new(directives).unwrap_or_else(|_| fallback())
}

/// Installs the global subscriber. `default_level` applies to upkeep's own lines when
/// `RUST_LOG` is unset or invalid (`info` for the server, `warn` for one-shot commands).
///
/// Lines are formatted on the calling thread and written to stderr in batches by a
/// dedicated thread ([`non_blocking`]), so a request never waits on a `write(2)`. A request never waits on the log
/// either: when the writer falls behind and its queue is full, lines are dropped and
/// counted ([`dropped_lines`], a metric, and a warning from the server).
pub fn init(format: LogFormat, default_level: &str) -> LogGuard {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref(), default_level);
    let (writer, guard) = non_blocking(std::io::stderr(), QUEUE_LINES);
    let queue = writer.queue().clone();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if result.is_ok() {
        let _ = INSTALLED.set(queue);
        TEXT.store(
            format == LogFormat::Text,
            std::sync::atomic::Ordering::Relaxed,
        );
        // Plain text lines (not a terminal's colours): request lines skip `tracing`'s
        // formatter and go to the queue whole, in the same layout.
        DIRECT.store(
            format == LogFormat::Text && !std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    // Already installed (tests): keep the first.
    LogGuard(result.is_ok().then_some(guard))
}

/// Writes `value` with every control character escaped (`\n`, `\r`, `\t`, `\0`, ESC
/// as `\x1b`, DEL as `\x7f`, C1 as `\u{..}`) and `\` doubled, so that nothing a client sent
/// can start a new log line, hide one or drive a terminal.
pub struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0;
        // The common case: nothing to escape, one write.
        if !needs_escape(text) {
            return f.write_str(text);
        }
        for c in text.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\0' => f.write_str("\\0")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x80 && c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

/// Whether [`Escaped`] changes `text`: a control character (C0, DEL, C1) or a `\\`.
/// Printable ASCII is decided byte by byte; anything else by its characters.
fn needs_escape(text: &str) -> bool {
    !is_plain_ascii(text.as_bytes()) && text.chars().any(|c| c.is_control() || c == '\\')
}

/// Whether every byte is printable ASCII other than `\\` (0x20–0x7e): eight bytes at a
/// time, the rest one by one.
fn is_plain_ascii(bytes: &[u8]) -> bool {
    use crate::swar::{has, has_below, has_high};
    let (mut words, rest) = crate::swar::words(bytes);
    // No high bit (non-ASCII), byte below 0x20, DEL or backslash.
    words.all(|w| !(has_high(w) | has_below(w, 0x20) | has(w, 0x7f) | has(w, b'\\')))
        && rest.iter().all(|b| (0x20..0x7f).contains(b) && *b != b'\\')
}

/// Appends `text` as [`Escaped`] writes it, without the formatter when nothing needs
/// escaping (the usual case).
fn push_escaped(out: &mut String, text: &str) {
    if needs_escape(text) {
        use std::fmt::Write;
        let _ = write!(out, "{}", Escaped(text));
    } else {
        out.push_str(text);
    }
}

/// Whether a query parameter's value may be logged; every other value is `[redacted]`,
/// whatever its name (a license key can hide behind any parameter name).
fn is_logged_query(name: &str) -> bool {
    matches!(
        name,
        "limit"
            | "cursor"
            | "name"
            | "format"
            | "from"
            | "to"
            | "before"
            | "product_id"
            // The public update checks (SPEC §3: an allow-list; keys never, whatever
            // they are called).
            | "installed_version"
            | "edd_action"
            | "action"
            | "slug"
            | "item_id"
            | "beta"
            | "php"
            | "locale"
    )
}

/// The request target for the log: the path, and the query with every value that is not
/// on the allow-list redacted; escaped as [`Escaped`] does.
pub fn loggable_target(path: &str, query: Option<&str>) -> String {
    let mut out = String::with_capacity(path.len() + query.map_or(0, str::len) + 1);
    push_loggable_target(&mut out, path, query);
    out
}

/// Appends [`loggable_target`]'s text to `out`.
fn push_loggable_target(out: &mut String, path: &str, query: Option<&str>) {
    // A signed download link's token is a capability for a day: never logged.
    // Whatever follows `/dl/` up to the next `/` (or the end: a token sent without its
    // file name is still one) is the token.
    match path.strip_prefix("/dl/") {
        Some(rest) => {
            out.push_str("/dl/[token]");
            if let Some((_, filename)) = rest.split_once('/') {
                out.push('/');
                push_escaped(out, filename);
            }
        }
        None => push_escaped(out, path),
    }
    let Some(query) = query else { return };
    out.push('?');
    // One escape test for the whole query (the usual one has nothing to escape), instead
    // of one per name and value.
    let plain = is_plain_ascii(query.as_bytes());
    let push = |out: &mut String, text: &str| {
        if plain {
            out.push_str(text);
        } else {
            push_escaped(out, text);
        }
    };
    // Cut at `&` and `=` by bytes (both ASCII: every cut is a char boundary).
    let mut rest = query;
    loop {
        let (pair, next) = match crate::swar::find(rest.as_bytes(), b'&') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        match crate::swar::find(pair.as_bytes(), b'=') {
            Some(at) => {
                let name = &pair[..at];
                push(out, name);
                if is_logged_query(name) {
                    out.push('=');
                    push(out, &pair[at + 1..]);
                } else {
                    out.push_str("=[redacted]");
                }
            }
            None => push(out, pair),
        }
        let Some(next) = next else { return };
        out.push('&');
        rest = next;
    }
}

/// What the request log needs from a request before it is handled (the request itself
/// is consumed by then). `None` when request lines are filtered out: then nothing is
/// copied.
pub struct RequestLog {
    client: std::net::IpAddr,
    /// The request's target (a cheap clone: it shares the connection's read buffer),
    /// redacted into the line only when the line is written.
    uri: http::Uri,
    credential: bool,
}

/// `X-Api-Key`, made once.
static X_API_KEY: http::header::HeaderName = http::header::HeaderName::from_static("x-api-key");

/// Whether the installed subscriber writes text lines (not JSON).
static TEXT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether request lines are written to the queue directly (text, no colours): the
/// hot path's one log line then costs a format into a reused buffer and one push.
static DIRECT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    /// This thread's last formatted second, `2026-12-01T08:20:12` (re-made once a second).
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// Writes the current time as `tracing`'s text format does: RFC 3339, UTC, microseconds
/// (`2026-12-01T08:20:12.123456Z`); the date part is formatted once a second per thread.
fn write_now(line: &mut String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            *cached = secs;
            let full = crate::model::Timestamp::from_secs(secs).to_rfc3339();
            text.clear();
            text.push_str(full.trim_end_matches('Z'));
        }
        line.push_str(text);
    });
    // `.{:06}Z`, the microseconds by hand.
    line.push_str(std::str::from_utf8(&fraction(now.subsec_micros())).unwrap_or(".000000Z"));
}

/// `.{micros:06}Z` (`micros` below 1,000,000), by hand.
fn fraction(micros: u32) -> [u8; 8] {
    let mut frac = *b".000000Z";
    for (i, place) in [10_000, 100, 1].into_iter().enumerate() {
        frac[1 + 2 * i..3 + 2 * i].copy_from_slice(pair((micros / place % 100) as usize));
    }
    frac
}

/// Each byte value's decimal digits (left-aligned) and their number.
static OCTETS: [([u8; 3], u8); 256] = {
    let mut table = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (hundreds, tens, ones) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        table[i] = if i >= 100 {
            ([b'0' + hundreds, b'0' + tens, b'0' + ones], 3)
        } else if i >= 10 {
            ([b'0' + tens, b'0' + ones, 0], 2)
        } else {
            ([b'0' + ones, 0, 0], 1)
        };
        i += 1;
    }
    table
};

/// Appends `ip` as its `Display` writes it (IPv4 by hand; IPv6 through `Display`).
fn push_ip(line: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // The four octets' digits from a table, on the stack, pushed as one string.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                let (digits, n) = OCTETS[usize::from(octet)];
                text[len..len + 3].copy_from_slice(&digits);
                len += usize::from(n);
            }
            line.push_str(std::str::from_utf8(&text[..len]).unwrap_or("?"));
        }
        std::net::IpAddr::V6(_) => {
            use std::fmt::Write;
            let _ = write!(line, "{ip}");
        }
    }
}

/// Appends `n` in decimal (what `write!(line, "{n}")` writes, without the formatter; the
/// log line's numbers and PHP's string lengths, `update::php`): two digits per division.
pub(crate) fn push_u64(line: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(pair((n % 100) as usize));
        n /= 100;
    }
    if n >= 10 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(pair(n as usize));
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    // A push per digit: cheaper than validating the few bytes as UTF-8.
    for &d in &digits[at..] {
        line.push(char::from(d));
    }
}

/// The two ASCII digits of `n` (below 100).
fn pair(n: usize) -> &'static [u8] {
    /// `00`, `01`, … `99`.
    const PAIRS: [u8; 200] = {
        let mut table = [0u8; 200];
        let mut i = 0;
        while i < 100 {
            table[2 * i] = b'0' + (i / 10) as u8;
            table[2 * i + 1] = b'0' + (i % 10) as u8;
            i += 1;
        }
        table
    };
    &PAIRS[2 * n..2 * n + 2]
}

thread_local! {
    /// The buffer a thread formats its request lines in.
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The target of request lines: `RUST_LOG=…,upkeep::request=warn` turns them off.
pub const REQUEST_TARGET: &str = "upkeep::request";

impl RequestLog {
    /// Copies what the line will need; the client address is `peer`, or under
    /// `--trust-proxy` the one `X-Forwarded-For` names (as the throttle sees it).
    pub fn start<B>(
        req: &http::Request<B>,
        peer: std::net::IpAddr,
        trust_proxy: bool,
    ) -> Option<RequestLog> {
        if !tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO) {
            return None;
        }
        let headers = req.headers();
        Some(RequestLog {
            client: crate::throttle::client_addr(peer, headers, trust_proxy),
            uri: req.uri().clone(),
            credential: headers.contains_key(http::header::AUTHORIZATION)
                || headers.contains_key(&X_API_KEY),
        })
    }

    /// Logs the line: client, method, path, route, status, latency in whole µs, and for
    /// 401, 403, 429 and a public dialect's answer to a bad request the reason (`refusal`:
    /// the error's code and message; for a dialect's answer a fixed text, never the
    /// message, which may quote the request).
    pub fn finish(
        self,
        request_id: &str,
        method: &http::Method,
        route: &str,
        status: u16,
        latency: std::time::Duration,
        refusal: Option<(&str, &str)>,
    ) {
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let reason = match (status, refusal) {
            (401, _) if !self.credential => Some("no credential presented".to_owned()),
            (401, _) => {
                Some("credential refused (malformed, unknown, expired or inactive)".to_owned())
            }
            (_, Some((code, message))) => Some(format!("{code}: {message}")),
            _ => None,
        };
        let direct = DIRECT.load(std::sync::atomic::Ordering::Relaxed);
        if direct || TEXT.load(std::sync::atomic::Ordering::Relaxed) {
            // Text lines: the whole line formatted here into a reused buffer and handed on
            // as one message, not nine fields visited one by one.
            LINE.with_borrow_mut(|line| {
                use std::fmt::Write;
                line.clear();
                if direct {
                    // The layout of `tracing`'s text lines: time, level, target, message.
                    write_now(line);
                    line.push_str("  INFO ");
                    line.push_str(REQUEST_TARGET);
                    line.push_str(": ");
                }
                // Piece by piece: the same text as one `write!`, with the address and the
                // numbers written without the formatting machinery (the hot path's line).
                line.push_str("request request_id=");
                line.push_str(request_id);
                line.push_str(" client=");
                push_ip(line, self.client);
                line.push_str(" method=");
                push_escaped(line, method.as_str());
                line.push_str(" path=");
                push_loggable_target(line, self.uri.path(), self.uri.query());
                line.push_str(" route=");
                line.push_str(route);
                line.push_str(" status=");
                match http::StatusCode::from_u16(status) {
                    // Its three digits, from `http`'s table.
                    Ok(code) => line.push_str(code.as_str()),
                    Err(_) => push_u64(line, u64::from(status)),
                }
                line.push_str(" latency_us=");
                push_u64(line, latency_us);
                if let Some(reason) = &reason {
                    let _ = write!(line, " reason={}", Escaped(reason));
                }
                match INSTALLED.get() {
                    Some(queue) if direct => {
                        line.push('\n');
                        queue.push(line.as_bytes());
                    }
                    _ => tracing::info!(target: REQUEST_TARGET, "{}", line.as_str()),
                }
            });
            return;
        }
        let target = loggable_target(self.uri.path(), self.uri.query());
        match reason {
            None => tracing::info!(
                target: REQUEST_TARGET,
                request_id = %request_id,
                client = %self.client,
                method = %Escaped(method.as_str()),
                path = %target,
                route = %route,
                status,
                latency_us,
                "request"
            ),
            Some(reason) => tracing::info!(
                target: REQUEST_TARGET,
                request_id = %request_id,
                client = %self.client,
                method = %Escaped(method.as_str()),
                path = %target,
                route = %route,
                status,
                latency_us,
                reason = %Escaped(&reason),
                "request"
            ),
        }
    }
}

/// Routes panics through `tracing` (with the location) before the default hook runs.
pub fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %location, panic = %info, "panic");
        default_hook(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_numbers_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.20.3.199",
            "::1",
            "2001:db8::7",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut line = String::new();
            push_ip(&mut line, ip);
            assert_eq!(line, ip.to_string());
        }
        // Every octet value, in every place.
        for i in 0..=255u8 {
            let ip = std::net::IpAddr::from([i, 255 - i, i ^ 0xa5, i.wrapping_mul(7)]);
            let mut line = String::from("client=");
            push_ip(&mut line, ip);
            assert_eq!(line, format!("client={ip}"));
        }
        let powers = (0..20).flat_map(|e| {
            let p = 10u64.pow(e);
            [p - 1, p, p + 1]
        });
        for n in (0..=1_000)
            .chain(powers)
            .chain([1_234_567, u64::MAX - 1, u64::MAX])
        {
            let mut line = String::new();
            push_u64(&mut line, n);
            assert_eq!(line, n.to_string());
        }
        for micros in [0, 5, 99, 100, 123_456, 100_000, 999_999, 10_101] {
            assert_eq!(
                std::str::from_utf8(&fraction(micros)).unwrap(),
                format!(".{micros:06}Z")
            );
        }
    }

    #[test]
    fn control_characters_never_reach_the_log_raw() {
        let raw = "/a\nb\r\x1b[31mred\0nul\t\u{7f}\u{85}\\ \"q";
        let shown = Escaped(raw).to_string();
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert_eq!(shown, "/a\\nb\\r\\x1b[31mred\\0nul\\t\\x7f\\u{85}\\\\ \"q");
        assert_eq!(Escaped("/v1/account").to_string(), "/v1/account");
        // The byte-wise fast path agrees with the characters' verdict.
        for (text, escaped) in [
            ("plain ~text!", false),
            ("café", false),
            ("\u{85}", true),
            ("a\\b", true),
            ("\u{7f}", true),
            ("\u{a0}x", false),
        ] {
            assert_eq!(needs_escape(text), escaped, "{text:?}");
            // Every special byte at every offset of a 17-byte text.
            for special in ['\\', '\u{7f}', '\u{1f}', 'é', '\n'] {
                for at in 0..17 {
                    let mut text: String = "abcdefghijklmnopq".into();
                    text.replace_range(at..=at, &special.to_string());
                    assert!(!is_plain_ascii(text.as_bytes()), "{text:?}");
                }
            }
            assert!(is_plain_ascii(b" !~ plain text over eight bytes ~"));
            let mut out = String::new();
            push_escaped(&mut out, text);
            assert_eq!(out, Escaped(text).to_string());
        }
        assert_eq!(loggable_target("/a\tb", None), "/a\\tb");
    }

    #[test]
    fn log_times_have_six_digits_of_microseconds() {
        let mut line = String::new();
        write_now(&mut line);
        // `2026-12-01T08:20:12.123456Z`
        assert_eq!(line.len(), 27, "{line}");
        assert_eq!(&line[19..20], ".", "{line}");
        assert!(line[20..26].bytes().all(|b| b.is_ascii_digit()), "{line}");
        assert!(line.ends_with('Z'), "{line}");
    }

    #[test]
    fn download_tokens_are_not_logged() {
        assert_eq!(
            loggable_target("/dl/SECRETTOKEN/plugin.zip", None),
            "/dl/[token]/plugin.zip"
        );
        // Without its file name (a 404, but the token may be a live one).
        assert_eq!(loggable_target("/dl/SECRETTOKEN", None), "/dl/[token]");
        assert_eq!(loggable_target("/dl/", None), "/dl/[token]");
    }

    #[test]
    fn query_values_off_the_allow_list_are_redacted() {
        assert_eq!(
            loggable_target("/x", Some("license=upk_pl_secret&limit=10&key=abc&flag")),
            "/x?license=[redacted]&limit=10&key=[redacted]&flag"
        );
        assert_eq!(loggable_target("/healthz", None), "/healthz");
        // Every name on the allow-list, and near misses that are not.
        for name in [
            "limit",
            "cursor",
            "name",
            "format",
            "from",
            "to",
            "before",
            "product_id",
            "installed_version",
            "edd_action",
            "action",
            "slug",
            "item_id",
            "beta",
            "php",
            "locale",
        ] {
            assert!(is_logged_query(name), "{name}");
            assert!(!is_logged_query(&name.to_uppercase()), "{name}");
            assert!(!is_logged_query(&format!("{name}s")), "{name}");
        }
        // A query with something to escape: names and logged values escaped, each once.
        assert_eq!(
            loggable_target("/x", Some("slug=a\nb&key=\\x&n\t=1")),
            "/x?slug=a\\nb&key=[redacted]&n\\t=[redacted]"
        );
        assert_eq!(
            loggable_target("/x", Some("slug=a\u{7f}")),
            "/x?slug=a\\x7f"
        );
    }

    #[test]
    fn a_bare_level_leaves_dependencies_at_warn() {
        let shown = filter(Some("debug"), "info").to_string();
        assert!(
            shown.contains("upkeep=debug") && shown.contains("warn"),
            "{shown}"
        );
        assert!(!shown.contains("sled"), "{shown}");
        let named = filter(Some("debug,sled=debug"), "info").to_string();
        assert!(named.contains("sled=debug"), "{named}");
        assert!(filter(None, "info").to_string().contains("upkeep=info"));
    }

    #[test]
    fn queued_lines_are_written_in_order_and_all_written_at_the_end() {
        use std::io::Write;
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let (mut writer, guard) = non_blocking(out.clone(), 1000);
        for i in 0..500 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let written = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..500).map(|i| format!("line {i}\n")).collect();
        assert_eq!(written, expected);
        assert_eq!(writer.queue().dropped(), 0);
    }

    /// The writer that went a whole `FLUSH_EVERY` without a line goes idle (it used to
    /// wake 100 times a second regardless); the next line wakes it and is written, every
    /// time: no line is left behind by an idle writer. (That it then sleeps without a
    /// timeout is the wait in `non_blocking`; a test could only show it by sleeping.)
    #[test]
    fn an_idle_writer_is_woken_by_the_next_line() {
        use std::io::Write;
        use std::sync::mpsc;
        /// Hands every write over to the test as it happens.
        struct Tell(mpsc::Sender<Vec<u8>>);
        impl Write for Tell {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let _ = self.0.send(buf.to_vec());
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (sent, written) = mpsc::channel();
        let (mut writer, guard) = non_blocking(Tell(sent), 1000);
        let queue = writer.queue().clone();
        // An empty write is no line: nothing queued, nothing woken.
        assert_eq!(writer.write(b"").unwrap(), 0);
        assert_eq!(queue.lock().lines, 0);
        for round in 0..20 {
            let line = format!("line {round}\n");
            writer.write_all(line.as_bytes()).unwrap();
            let got = written
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("round {round}: the line was never written"));
            assert_eq!(got, line.as_bytes(), "round {round}");
            // The writer goes back to sleep with nothing queued: its flag says so (waited
            // for through the lock, never by a timed sleep).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !queue.lock().idle {
                assert!(
                    std::time::Instant::now() < deadline,
                    "round {round}: never idle"
                );
                std::thread::yield_now();
            }
        }
        drop(guard);
        assert!(written.try_recv().is_err(), "nothing else was written");
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        use std::io::Write;
        use std::sync::{Arc, Barrier};
        /// A writer stuck until the test lets it go (a stalled stderr).
        struct Stuck(Arc<Barrier>, bool);
        impl Write for Stuck {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if !self.1 {
                    self.1 = true;
                    self.0.wait();
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let release = Arc::new(Barrier::new(2));
        let (mut writer, guard) = non_blocking(Stuck(release.clone(), false), 4);
        let counter = writer.queue().clone();
        // The writer thread takes at most one batch (at most 4 lines) and blocks; the
        // queue holds 4 more; the rest must be dropped at once, not waited for.
        for i in 0..100 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        let dropped = counter.dropped();
        assert!(dropped >= 92, "dropped {dropped}");
        release.wait();
        drop(guard);
    }
}
