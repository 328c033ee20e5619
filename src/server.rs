//! The accept loop: `run(listener, app, shutdown)`. The binary, the tests and the
//! benches all start the server through it.
//!
//! HTTP/1.1 only (`http1::Builder` with a timer, so the header-read timeout is real and
//! also closes silent connections; hyper-util's auto builder would leave those open).
//!
//! Connection slots (SPEC §3): at most `max_connections` at once and at most
//! `max_connections_per_address` from one client address (under `--trust-proxy` every
//! peer is the proxy, exempt). When an address is at its cap, or every slot is taken, the
//! oldest *idle* connection (no request being served: a keep-alive connection between
//! requests, or one still sending its headers) of that address, or of anyone, is closed to
//! make room, so one client holding or trickling connections cannot starve the others. An
//! address at its cap with nothing idle has its new connection refused; with every slot busy
//! serving requests, a new client waits in the listen backlog as before.
//!
//! On shutdown: stop accepting, close idle connections and let in-flight requests finish
//! (up to `drain_timeout`; a write already on a blocking thread then still runs to its
//! end, waited for up to another `drain_timeout`), flush the report counts (SPEC §10),
//! persist token uses and flush the store. Report counts are also flushed every
//! `report_flush_every` while serving.

use crate::app::App;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

/// hyper's per-connection buffer limit (its default is about 400 KiB). Writing, hyper asks
/// a response body for more while less than this is queued for the socket; a file body
/// read from the page cache answers at once, so every download would hold this much (100
/// downloads: 40 MiB). Two [`FILE_CHUNK`](crate::http::body::FILE_CHUNK)s keep the socket
/// fed with one `writev` of both. Reading, it bounds a request head (an upload's body is
/// read in chunks whatever this is).
const MAX_BUF_SIZE: usize = 2 * crate::http::body::FILE_CHUNK;

/// Serves `app` on `listener` until `shutdown` resolves, then drains and flushes.
///
/// # Errors
/// Only the final flush can fail; accept errors are logged and retried.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::store::StoreError> {
    let settings = app.settings.clone();
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let table = Arc::new(Connections::new(
        settings.max_connections_per_address,
        settings.trust_proxy,
    ));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_BUF_SIZE);

    // Dropped at shutdown: each periodic task then finishes the round it is in (its
    // blocking write included) and ends.
    let (stop_periodic, periodic_stop) = tokio::sync::watch::channel(());
    let persister = tokio::spawn(persist_uses_periodically(
        app.clone(),
        periodic_stop.clone(),
    ));
    let report_flusher = tokio::spawn(flush_reports_periodically(app.clone(), periodic_stop));

    // Every connection task, so that `run` returns only after the last one is gone.
    let mut connections_running = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    'accept: loop {
        // Reap finished connection tasks so the set stays small.
        while connections_running.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Every slot is taken: close the oldest idle connection, then wait for a slot
                // (at once, if one was idle; otherwise as long as the busy ones take).
                let mut acquire = std::pin::pin!(slots.clone().acquire_owned());
                loop {
                    if table.evict_idle(None) {
                        app.metrics.connection_evicted();
                    }
                    // Busy connections may turn idle (and evictable) while we wait.
                    tokio::select! {
                        permit = &mut acquire => match permit {
                            Ok(permit) => break permit,
                            Err(_) => unreachable!("the semaphore is never closed"),
                        },
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = &mut shutdown => break 'accept,
                    }
                }
            }
        };
        // Registered only once it has a slot: a connection still waiting for one is never
        // picked as an idle connection to close.
        let Some((slot, evicted)) = table.admit(peer.ip()) else {
            app.metrics.connection_refused();
            tracing::debug!(peer = %peer, "connection refused: the address is at its cap with no idle connection");
            drop(permit);
            continue;
        };
        if evicted {
            app.metrics.connection_evicted();
        }
        let _ = stream.set_nodelay(true);
        // Each request's future needs an owned handle on the app. Cloning the one
        // `Arc<App>` per request would make every core write its reference count, a
        // cache line they would then pass back and forth; a per-connection handle is
        // written only by the core serving that connection.
        let conn_app = Arc::new(app.clone());
        let conn_slot = slot.clone();
        let service = service_fn(move |req| {
            let app = conn_app.clone();
            // Counted from the moment hyper hands over the request: a busy connection is
            // never chosen for eviction.
            let busy = Busy::start(&conn_slot);
            async move {
                let res = app.handle(req, peer.ip()).await;
                // Busy until hyper has taken the whole body (a streamed file included),
                // not just until the handler returns.
                Ok::<_, std::convert::Infallible>(res.map(|body| Tracked { body, _busy: busy }))
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let table = table.clone();
        let close_within = settings.header_timeout;
        connections_running.spawn(async move {
            // Forgets the connection when the task ends, even by a panic.
            let _registered = Registered {
                table,
                slot: slot.clone(),
            };
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = slot.close.notified() => {
                    if slot.requests.load(Ordering::Relaxed) == 0 {
                        // Not one whole request head yet (silent, or trickling its
                        // headers): nothing of ours is in flight, so close it now. hyper's
                        // graceful shutdown would wait for those headers.
                        Ok(())
                    } else {
                        // hyper's own graceful shutdown: idle between requests closes at
                        // once; a request being served (or its answer being written) is
                        // finished first.
                        // Bounded: a client that stops reading would hold hyper's write, and
                        // the slot, for ever.
                        conn.as_mut().graceful_shutdown();
                        tokio::time::timeout(close_within, conn).await.unwrap_or(Ok(()))
                    }
                }
            };
            if let Err(err) = result {
                tracing::debug!(peer = %peer, error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining connections");
    table.close_all();
    let drained = tokio::time::timeout(settings.drain_timeout, async {
        while connections_running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("drain timed out; closing the remaining connections");
    }
    connections_running.shutdown().await;
    // A write already on a blocking thread when its connection was given up runs to its
    // end (one transaction, never answered): wait for it, so the last flush below covers
    // it. (HTTP writes only: the admin socket's commands and upload staging are not
    // counted; a write past this wait still ends before the runtime is dropped.)
    if tokio::time::timeout(settings.drain_timeout, app.store.writes_settled())
        .await
        .is_err()
    {
        tracing::warn!("a write is still running after the drain; stopping without waiting for it");
    }
    // Not aborted: a round already on a blocking thread holds a handle on the app until it
    // returns, and `run` must not return before every handle it gave out is gone.
    drop(stop_periodic);
    let _ = persister.await;
    let _ = report_flusher.await;
    // Every request has ended: the report counts are complete. Lost if this fails (they
    // live only in memory), which is worth an error, but not a failed shutdown.
    let app_for_reports = app.clone();
    match tokio::task::spawn_blocking(move || {
        crate::service::reports::flush(&app_for_reports.store, &app_for_reports.public.counts)
    })
    .await
    {
        Ok(Ok(n)) => tracing::debug!(days = n, "report counts flushed"),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "report counts not saved at shutdown; they are lost");
        }
        Err(err) => tracing::error!(error = %err, "flushing report counts panicked"),
    }
    // Last-use times are best-effort metadata: failing to save them (a full disk) is
    // worth a warning, not a failed shutdown. The flush of acknowledged writes is not.
    let app_for_uses = app.clone();
    match tokio::task::spawn_blocking(move || app_for_uses.store.persist_uses()).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "token last-use times not saved at shutdown"),
        Err(err) => tracing::error!(error = %err, "saving token last-use times panicked"),
    }
    let app_for_checks = app.clone();
    match tokio::task::spawn_blocking(move || app_for_checks.store.persist_license_uses()).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "key last-check times not saved at shutdown"),
        Err(err) => tracing::error!(error = %err, "saving key last-check times panicked"),
    }
    app.store.flush().await?;
    tracing::info!("store flushed; stopped");
    Ok(())
}

/// One live connection, as the slot bookkeeping sees it.
struct Slot {
    id: u64,
    addr: IpAddr,
    /// Requests being served on it (0 or 1 for HTTP/1.1).
    busy: AtomicUsize,
    /// Requests started on it so far.
    requests: AtomicUsize,
    /// Set once it has been asked to close (it counts against its address until it ends).
    closing: AtomicBool,
    close: Notify,
}

/// A response body that keeps its connection marked busy until hyper has taken all of it.
struct Tracked {
    body: crate::http::Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Removes a connection from the table when its task ends, however it ends.
struct Registered {
    table: Arc<Connections>,
    slot: Arc<Slot>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.table.remove(&self.slot);
    }
}

/// Marks a connection busy for as long as it lives.
struct Busy(Arc<Slot>);

impl Busy {
    fn start(slot: &Arc<Slot>) -> Self {
        slot.busy.fetch_add(1, Ordering::Relaxed);
        slot.requests.fetch_add(1, Ordering::Relaxed);
        Busy(slot.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Live connections: how many each address holds, and each one's slot, oldest first.
/// Touched once per connection (open, close) and on eviction; never per request.
struct Connections {
    per_address: usize,
    /// `--trust-proxy`: every peer is the proxy, exempt from the per-address cap.
    exempt: bool,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    by_addr: HashMap<IpAddr, usize>,
    live: BTreeMap<u64, Arc<Slot>>,
}

impl Connections {
    fn new(per_address: usize, exempt: bool) -> Self {
        Connections {
            per_address,
            exempt,
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection from `addr` (and whether one of its idle connections
    /// was closed for it), or `None` when `addr` is at its cap and none of its connections
    /// is idle.
    fn admit(&self, addr: IpAddr) -> Option<(Arc<Slot>, bool)> {
        let mut table = self.lock();
        let held = table.by_addr.get(&addr).copied().unwrap_or(0);
        let at_cap = !self.exempt && held >= self.per_address;
        // At its cap, an address gets a new connection by closing one of its idle ones —
        // one at a time: while an earlier one is still closing, it gets none (a connection
        // counts against its address until it has really ended).
        if at_cap
            && (table
                .live
                .values()
                .any(|slot| slot.addr == addr && slot.closing.load(Ordering::Relaxed))
                || !Self::evict(&mut table, Some(addr)))
        {
            return None;
        }
        table.next_id += 1;
        let slot = Arc::new(Slot {
            id: table.next_id,
            addr,
            busy: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        *table.by_addr.entry(addr).or_insert(0) += 1;
        table.live.insert(slot.id, slot.clone());
        Some((slot, at_cap))
    }

    /// Asks the oldest idle connection (of `addr`, or of anyone) to close; whether there
    /// was one.
    fn evict_idle(&self, addr: Option<IpAddr>) -> bool {
        Self::evict(&mut self.lock(), addr)
    }

    fn evict(table: &mut Table, addr: Option<IpAddr>) -> bool {
        let victim = table.live.values().find(|slot| {
            addr.is_none_or(|addr| slot.addr == addr)
                && slot.busy.load(Ordering::Relaxed) == 0
                && !slot.closing.load(Ordering::Relaxed)
        });
        let Some(victim) = victim.cloned() else {
            return false;
        };
        victim.closing.store(true, Ordering::Relaxed);
        victim.close.notify_one();
        true
    }

    /// Forgets a connection that has ended: only now does it stop counting against its
    /// address.
    fn remove(&self, slot: &Slot) {
        let mut table = self.lock();
        if table.live.remove(&slot.id).is_some()
            && let Some(held) = table.by_addr.get_mut(&slot.addr)
        {
            *held -= 1;
            if *held == 0 {
                table.by_addr.remove(&slot.addr);
            }
        }
    }

    /// Asks every connection to close (shutdown): idle ones at once, busy ones after their
    /// request.
    fn close_all(&self) {
        let table = self.lock();
        for slot in table.live.values() {
            slot.closing.store(true, Ordering::Relaxed);
            slot.close.notify_one();
        }
    }
}

/// Every `persist_uses_every`: writes token uses to the store and removes grace aliases
/// whose grace has ended.
async fn persist_uses_periodically(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<()>) {
    let mut ticker = tokio::time::interval(app.settings.persist_uses_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            // The sender dropped: shutting down.
            _ = stop.changed() => return,
        }
        app.throttle.tidy(app.clock.now());
        let app = app.clone();
        let now = app.clock.now();
        match tokio::task::spawn_blocking(move || {
            // Expired grace aliases go in bounded batches, a few a minute at most.
            match app.store.prune_expired_aliases(now, 10_000) {
                Ok(n) if n > 0 => tracing::debug!(aliases = n, "removed expired grace aliases"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "could not remove expired grace aliases"),
            }
            // Download-key checks and activation sightings, noted in memory (SPEC §9).
            match app.store.persist_license_uses() {
                Ok(n) if n > 0 => tracing::debug!(keys = n, "persisted download-key checks"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "could not persist download-key checks"),
            }
            app.store.persist_uses()
        })
        .await
        {
            Ok(Ok(n)) if n > 0 => tracing::debug!(tokens = n, "persisted token uses"),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "could not persist token uses"),
            Err(err) => tracing::error!(error = %err, "token-use persister panicked"),
        }
    }
}

/// Every `report_flush_every` (60 s): adds the report counts of the last interval to the
/// stored rollups (SPEC §10), on a blocking thread. A failed flush keeps the counts in
/// memory for the next one (`service::reports::flush`) and is logged.
async fn flush_reports_periodically(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<()>) {
    // (`interval` panics on zero; the setting is not a flag, but a test could pass 0.)
    let every = app
        .settings
        .report_flush_every
        .max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let app = app.clone();
        match tokio::task::spawn_blocking(move || {
            crate::service::reports::flush(&app.store, &app.public.counts)
        })
        .await
        {
            Ok(Ok(n)) if n > 0 => tracing::debug!(days = n, "report counts flushed"),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::error!(error = %err, "could not flush report counts; kept in memory for the next try");
            }
            Err(err) => tracing::error!(error = %err, "report flusher panicked"),
        }
    }
}
