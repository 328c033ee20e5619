//! The accept loop: `run(listener, app, shutdown)`. The binary, the tests and the
//! benches all start the server through it.
//!
//! HTTP/1.1 only (`http1::Builder` with a timer, so the header-read timeout is real and
//! also closes silent connections; hyper-util's auto builder would leave those open).
//! A semaphore caps concurrent connections. On shutdown: stop accepting, let in-flight
//! requests finish (up to `drain_timeout`), persist token uses and flush the store.

use crate::app::App;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);

    let persister = tokio::spawn(persist_uses_periodically(app.clone()));

    // Every connection task, so that `run` returns only after the last one is gone.
    let mut connections_running = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Reap finished connection tasks so the set stays small.
        while connections_running.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
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
        let _ = stream.set_nodelay(true);
        // Each request's future needs an owned handle on the app. Cloning the one
        // `Arc<App>` per request would make every core write its reference count, a
        // cache line they would then pass back and forth; a per-connection handle is
        // written only by the core serving that connection.
        let conn_app = Arc::new(app.clone());
        let service = service_fn(move |req| {
            let app = conn_app.clone();
            async move { Ok::<_, std::convert::Infallible>(app.handle(req, peer.ip()).await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        connections_running.spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(peer = %peer, error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining connections");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(settings.drain_timeout) => {
            tracing::warn!("drain timed out; closing the remaining connections");
        }
    }
    connections_running.shutdown().await;
    persister.abort();
    // Awaiting the aborted task drops its handle on the app before we return.
    let _ = persister.await;
    // Last-use times are best-effort metadata: failing to save them (a full disk) is
    // worth a warning, not a failed shutdown. The flush of acknowledged writes is not.
    let app_for_uses = app.clone();
    match tokio::task::spawn_blocking(move || app_for_uses.store.persist_uses()).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "token last-use times not saved at shutdown"),
        Err(err) => tracing::error!(error = %err, "saving token last-use times panicked"),
    }
    app.store.flush().await?;
    tracing::info!("store flushed; stopped");
    Ok(())
}

/// Writes token uses to the store every `persist_uses_every`.
async fn persist_uses_periodically(app: Arc<App>) {
    let mut ticker = tokio::time::interval(app.settings.persist_uses_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        app.throttle.tidy(app.clock.now());
        let app = app.clone();
        match tokio::task::spawn_blocking(move || app.store.persist_uses()).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(tokens = n, "persisted token uses"),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "could not persist token uses"),
            Err(err) => tracing::error!(error = %err, "token-use persister panicked"),
        }
    }
}
