//! Durable activations under concurrency (SPEC §9): `CLIENTS` concurrent clients, each
//! activating new sites on download keys, through the path an HTTP write takes —
//! [`service::write`] (the write on a blocking thread under the store's write lock, then
//! an async wait for the group commit) with [`licensing::activate`] — so every activation
//! counted here was acknowledged only once durable.
//!
//! `cargo run --release --example activation-load -- DATA_DIR [--clients N] [--duration S] [--warmup S]`
//!
//! `DATA_DIR` is a store filled by `prefill-licensing` (it reads `DATA_DIR.keys`); the run
//! adds activations to it, so give it a copy, not the bench's cache. Each activation is
//! on a different key (client `c` takes keys `c`, `c + N`, `c + 2N`, …, round again
//! past the last; each has one activation of its 5 already) for a new production site `load-<run>-<n>.com`, under
//! the server's default rules (`ActivationRules::default()`: 20 new activations per key
//! per day, the account pool unlimited). Every answer must be `valid` with a new
//! activation; anything else stops the run.
//!
//! The runtime is tokio's multi-thread one with its default worker count (one per core),
//! as `upkeep serve` builds it. Latency is from calling `service::write` to its durable
//! answer. Prints activations/s, p50/p90/p99/max latency and activations per flush for
//! the `--duration` seconds (10 by default) after `--warmup` seconds (1), then checks that
//! the accounts' counted activations grew by exactly the acknowledged activations.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use upkeep::Store;
use upkeep::model::licensing::Identity;
use upkeep::model::{AccountPrefix, ProductId, Timestamp, normalize_site};
use upkeep::service::licensing::{self, ActivationRules, Target, ValidationCode};
use upkeep::service::{self, Actor, Events};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str =
    "usage: activation-load DATA_DIR [--clients N] [--duration SECONDS] [--warmup SECONDS]";

#[derive(Clone)]
struct Key {
    account: AccountPrefix,
    product: ProductId,
    key: String,
}

fn read_keys(dir: &std::path::Path) -> Result<Vec<Key>, BoxError> {
    let mut name = dir.as_os_str().to_owned();
    name.push(".keys");
    let text = std::fs::read_to_string(PathBuf::from(name))?;
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 4 {
                return Err(format!("bad keys line {line:?}").into());
            }
            Ok(Key {
                account: AccountPrefix::parse(f[0])?,
                product: ProductId(f[1].parse()?),
                key: f[2].to_owned(),
            })
        })
        .collect()
}

fn now() -> Timestamp {
    Timestamp::from_system(SystemTime::now())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut clients: usize = 32;
    let mut duration: f64 = 10.0;
    let mut warmup: f64 = 1.0;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--clients" => clients = args.next().ok_or(USAGE)?.parse()?,
            "--duration" => duration = args.next().ok_or(USAGE)?.parse()?,
            "--warmup" => warmup = args.next().ok_or(USAGE)?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if dir.is_none() => dir = Some(PathBuf::from(arg)),
            _ => return Err(USAGE.into()),
        }
    }
    let dir = dir.ok_or(USAGE)?;
    let keys = Arc::new(read_keys(&dir)?);
    let opened = Instant::now();
    let store = Arc::new(Store::open(&dir)?);
    eprintln!(
        "activation-load: opened {} ({} keys) in {:.1?}",
        dir.display(),
        keys.len(),
        opened.elapsed()
    );
    let events = Arc::new(Events::default());
    let rules = Arc::new(ActivationRules::default());
    let accounts: Vec<AccountPrefix> = {
        let mut a: Vec<_> = keys.iter().map(|k| k.account).collect();
        a.sort_unstable_by(|x, y| x.as_str().cmp(y.as_str()));
        a.dedup();
        a
    };
    let usage_before: u64 = accounts
        .iter()
        .map(|a| store.activation_usage(a))
        .sum::<Result<u64, _>>()?;
    let run = now().as_secs();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let warmup = Duration::from_secs_f64(warmup);
    let duration = Duration::from_secs_f64(duration);
    let results = runtime.block_on(async {
        let started = Instant::now();
        let measure_from = started + warmup;
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (store, events, rules, keys, stop) = (
                store.clone(),
                events.clone(),
                rules.clone(),
                keys.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                // (latencies in the window, activations in total)
                let mut latencies = Vec::new();
                let mut total = 0usize;
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    // Past the last key, round again (new sites: up to the keys' limit of 5).
                    let key = keys[n % keys.len()].clone();
                    let site = format!("load-{run}-{n}.com");
                    n += clients;
                    let target = Target::Site(normalize_site(&site)?);
                    let rules = rules.clone();
                    let sent = Instant::now();
                    let outcome = service::write(&store, &events, Actor::Cli, None, now(), {
                        move |ctx| {
                            licensing::activate(
                                ctx,
                                &rules,
                                &key.account,
                                Some(key.product),
                                Some(&key.key),
                                target,
                                None,
                                None,
                            )
                        }
                    })
                    .await?;
                    let done = Instant::now();
                    let created = matches!(
                        outcome.activation.as_ref().map(|a| &a.identity),
                        Some(Identity::Site(s)) if s.as_str() == site
                    );
                    if outcome.code != ValidationCode::Valid || !created {
                        return Err(format!(
                            "activation of {site} answered {:?} ({:?})",
                            outcome.code, outcome.activation
                        )
                        .into());
                    }
                    total += 1;
                    if sent >= measure_from {
                        latencies.push(done - sent);
                    }
                }
                Ok::<_, BoxError>((latencies, total))
            }));
        }
        tokio::time::sleep(warmup).await;
        let flushes_before = store.flush_count();
        let window = Instant::now();
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let elapsed = window.elapsed();
        let flushes = store.flush_count() - flushes_before;
        let mut latencies = Vec::new();
        let mut total = 0;
        for task in tasks {
            let (l, t) = task.await??;
            latencies.extend(l);
            total += t;
        }
        Ok::<_, BoxError>((latencies, total, elapsed, flushes))
    })?;
    let (mut latencies, total, elapsed, flushes) = results;
    latencies.sort_unstable();
    let usage_after: u64 = accounts
        .iter()
        .map(|a| store.activation_usage(a))
        .sum::<Result<u64, _>>()?;
    if usage_after - usage_before != total as u64 {
        return Err(format!(
            "counted activations grew by {}, but {total} were acknowledged",
            usage_after - usage_before
        )
        .into());
    }
    let measured = latencies.len();
    println!(
        "activation-load: {clients} clients, {:.1} s measured after {:.1} s warm-up, store {}",
        elapsed.as_secs_f64(),
        warmup.as_secs_f64(),
        dir.display()
    );
    println!(
        "durable activations: {measured} in the window, {:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        measured as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!(
        "flushes in the window: {flushes} ({:.1} activations per flush); {total} activations in all, counted activations {usage_before} -> {usage_after}",
        measured as f64 / flushes.max(1) as f64
    );
    Ok(())
}
