//! The costs around the store and the request path that `benches/auth.rs` does not cover:
//!
//! - `codec/{decode,encode}/{token,account}`: one stored record's value codec. The codec
//!   module is private; decoding goes through the public [`Record::decode_version`] on the
//!   golden bytes of `tests/fixtures/records/` (the exact bytes the store holds), and
//!   encoding calls bincode with the same configuration as `store::codec` (checked: it
//!   reproduces the fixture byte for byte, so it cannot silently measure another format).
//! - `store/get/{account,token_named}`: the public read paths (sled lookup + decode) on a
//!   store of [`ACCOUNTS`] accounts; `store::account` is what `GET /v1/account` reads.
//! - `store/tokens_page/operator_100`: a page of 100 operator tokens, as
//!   `GET /_/token?limit=100` reads it (range scan, one lookup + decode per token).
//! - `store/create_token/in_memory`: a committed but not yet durable write (token
//!   generation, one sled transaction, encode, index insert), no fsync waited for.
//! - `store/create_token/durable_1_writer` and `store/create_token/durable_writers/32`: a
//!   token created and made durable (`create_token(..)?.durable().await`) by one writer,
//!   and by 32 concurrent writers on a tokio runtime sharing group commit. Time is per
//!   write (criterion's throughput line gives writes/s); the 32-writer bench also prints
//!   how many writes each flush covered.
//! - `router/route/<name>`: [`upkeep::api::find`] on every row of [`upkeep::api::rows`] (path
//!   from [`route::example_path`]), and `router/route_all` for the whole table.
//!
//! Every store lives in its own temporary directory (on the disk of `std::env::temp_dir`,
//! so the durable numbers are that disk's fsync).
//!
//! Run: `cargo bench --bench store` (about a minute once built; add e.g. `-- router` or
//! `-- durable` to filter).

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use upkeep::Store;
use upkeep::http::route;
use upkeep::model::{
    Account, AccountPrefix, NewAccount, Principal, Scope, Scopes, Timestamp, Token,
};
use upkeep::store::{NewToken, PageRequest, Record};

/// Accounts (each with its first token) in the store read by the `store/get` benches.
const ACCOUNTS: usize = 10_000;
/// Operator tokens in that store: more than one page of 100.
const OPERATOR_TOKENS: usize = 120;
/// How many distinct keys the read benches cycle through (a power of two).
const LOOKUPS: usize = 512;
/// Concurrent writers of `durable_32_writers`.
const WRITERS: usize = 32;

const TOKEN_V1: &[u8] = include_bytes!("../tests/fixtures/records/token.v1.bin");
const ACCOUNT_V2: &[u8] = include_bytes!("../tests/fixtures/records/account.v2.bin");

/// `store::codec`'s configuration (part of the on-disk format; see that module).
const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ 1 << 20 }>,
> = bincode::config::standard().with_limit::<{ 1 << 20 }>();

fn now() -> Timestamp {
    Timestamp::from_system(SystemTime::now())
}

/// `[version] ++ bincode(record)`, as `store::codec::encode` writes it.
fn encode<R: Record>(record: &R) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(R::VERSION);
    bincode::serde::encode_into_std_write(record, &mut out, CONFIG).expect("encodes");
    out
}

fn decode<R: Record>(bytes: &[u8]) -> R {
    let (&version, body) = bytes.split_first().expect("non-empty");
    R::decode_version(version, body).expect("fixture decodes")
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let token: Token = decode(TOKEN_V1);
    let account: Account = decode(ACCOUNT_V2);
    assert_eq!(
        encode(&token),
        TOKEN_V1,
        "bench config drifted from store::codec"
    );
    assert_eq!(
        encode(&account),
        ACCOUNT_V2,
        "bench config drifted from store::codec"
    );

    group.bench_function("decode/token", |b| {
        b.iter(|| {
            let (&version, body) = black_box(TOKEN_V1).split_first().expect("non-empty");
            black_box(Token::decode_version(version, body))
        });
    });
    group.bench_function("decode/account", |b| {
        b.iter(|| {
            let (&version, body) = black_box(ACCOUNT_V2).split_first().expect("non-empty");
            black_box(Account::decode_version(version, body))
        });
    });
    group.bench_function("encode/token", |b| b.iter(|| encode(black_box(&token))));
    group.bench_function("encode/account", |b| b.iter(|| encode(black_box(&account))));
    group.finish();
}

/// A store of `ACCOUNTS` accounts and `OPERATOR_TOKENS` operator tokens, and `LOOKUPS`
/// of its account prefixes taken evenly from the whole set.
fn filled_store(dir: &std::path::Path) -> (Store, Vec<AccountPrefix>) {
    let started = Instant::now();
    let store = Store::open(dir).expect("store opens");
    let at = now();
    for _ in 0..ACCOUNTS {
        let new = NewAccount::parse("Bench Vendor", "bench@example.com", None).expect("valid");
        // Applied at once; the one durable write at the end covers them all.
        drop(store.create_account(new, at).expect("account created"));
    }
    for i in 0..OPERATOR_TOKENS {
        drop(
            store
                .create_token(operator(&format!("operator-{i:04}")), at)
                .expect("created"),
        );
    }
    // One durable write flushes every earlier one.
    store
        .create_token(operator("operator-last"), at)
        .expect("created")
        .durable_blocking()
        .expect("flushed");
    let all: Vec<AccountPrefix> = store
        .accounts()
        .expect("accounts list")
        .into_iter()
        .map(|a| a.prefix)
        .collect();
    assert_eq!(all.len(), ACCOUNTS);
    let prefixes = all
        .iter()
        .step_by(ACCOUNTS / LOOKUPS)
        .take(LOOKUPS)
        .copied()
        .collect();
    eprintln!(
        "filled a store with {ACCOUNTS} accounts and {} operator tokens in {:.2?}",
        OPERATOR_TOKENS + 1,
        started.elapsed()
    );
    (store, prefixes)
}

fn operator(name: &str) -> NewToken {
    NewToken {
        principal: Principal::Operator {
            active: true,
            write: true,
        },
        name: name.to_owned(),
        scopes: Scopes::empty(),
        expires_at: None,
    }
}

fn account_token(prefix: AccountPrefix, name: String) -> NewToken {
    NewToken {
        principal: Principal::Account(prefix),
        name,
        scopes: Scopes::only(Scope::Api),
        expires_at: None,
    }
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, prefixes) = filled_store(dir.path());
    let mask = LOOKUPS - 1;
    let mut group = c.benchmark_group("store");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let mut i = 0;
    group.bench_function("get/account", |b| {
        b.iter(|| {
            i = (i + 1) & mask;
            black_box(store.account(black_box(&prefixes[i])).expect("read"))
        });
    });
    let mut i = 0;
    group.bench_function("get/token_named", |b| {
        b.iter(|| {
            i = (i + 1) & mask;
            black_box(
                store
                    .token_named(Some(black_box(&prefixes[i])), "default")
                    .expect("read"),
            )
        });
    });
    let page = PageRequest {
        after: None,
        limit: 100,
    };
    assert_eq!(
        store.tokens_page(None, &page).expect("page").items.len(),
        100
    );
    group.bench_function("tokens_page/operator_100", |b| {
        b.iter(|| black_box(store.tokens_page(None, black_box(&page)).expect("page")));
    });
    group.finish();
}

fn writes(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::open(dir.path()).expect("store opens"));
    let (account, _) = store
        .create_account(
            NewAccount::parse("Bench Vendor", "bench@example.com", Some("bench")).expect("valid"),
            now(),
        )
        .expect("account created")
        .durable_blocking()
        .expect("flushed");
    let prefix = account.prefix;
    // Unique token names across every bench and iteration.
    let names = Arc::new(AtomicU64::new(0));
    let next_name = {
        let names = names.clone();
        move || format!("t{}", names.fetch_add(1, Ordering::Relaxed))
    };
    // Like the server: a multi-thread runtime, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1));

    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("create_token/in_memory", |b| {
        b.iter(|| {
            let pending = store
                .create_token(account_token(prefix, next_name()), now())
                .expect("created");
            // Applied already; sled's own background flush makes it durable later.
            drop(black_box(pending));
        });
    });
    // Do not let the in-memory writes' flush land inside the durable measurements.
    runtime.block_on(store.flush()).expect("flushed");

    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("create_token/durable_1_writer", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    store
                        .create_token(account_token(prefix, next_name()), now())
                        .expect("created")
                        .durable()
                        .await
                        .expect("durable");
                }
                started.elapsed()
            })
        });
    });
    // (writes, flushes) over every durable_writers iteration: how well group commit groups.
    let writes_flushes = std::cell::Cell::new((0u64, 0u64));
    group.bench_function(
        BenchmarkId::new("create_token/durable_writers", WRITERS),
        |b| {
            b.iter_custom(|iters| {
                let flushes_before = store.flush_count();
                let elapsed = runtime.block_on(async {
                    let remaining = Arc::new(AtomicU64::new(iters));
                    let started = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..WRITERS {
                        let store = store.clone();
                        let remaining = remaining.clone();
                        let names = names.clone();
                        tasks.spawn(async move {
                            // Take writes from the shared budget until it is spent.
                            while remaining
                                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok()
                            {
                                let name = format!("t{}", names.fetch_add(1, Ordering::Relaxed));
                                store
                                    .create_token(account_token(prefix, name), now())
                                    .expect("created")
                                    .durable()
                                    .await
                                    .expect("durable");
                            }
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.expect("writer task");
                    }
                    started.elapsed()
                });
                writes_flushes.set((
                    writes_flushes.get().0 + iters,
                    writes_flushes.get().1 + store.flush_count() - flushes_before,
                ));
                elapsed
            });
        },
    );
    let (writes, flushes) = writes_flushes.get();
    eprintln!(
        "durable_writers/{WRITERS}: {writes} writes, {flushes} flushes, {:.1} writes per flush",
        writes as f64 / flushes.max(1) as f64
    );
    group.finish();
    drop(runtime);
}

fn routing(c: &mut Criterion) {
    let requests: Vec<_> = upkeep::api::rows()
        .iter()
        .map(|spec| {
            let path = route::example_path(spec, "sample-name");
            let routed = upkeep::api::find(&spec.method, &path)
                .unwrap_or_else(|err| panic!("{} {path}: {err}", spec.method));
            assert_eq!(routed.row, *spec, "{} {path}", spec.method);
            (*spec, path)
        })
        .collect();
    let mut group = c.benchmark_group("router");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700))
        .sample_size(30);
    group.bench_function("route_all", |b| {
        b.iter(|| {
            for (spec, path) in &requests {
                black_box(upkeep::api::find(&spec.method, black_box(path)).is_ok());
            }
        });
    });
    for (spec, path) in &requests {
        group.bench_with_input(BenchmarkId::new("route", spec.name), path, |b, path| {
            b.iter(|| black_box(upkeep::api::find(&spec.method, black_box(path)).is_ok()));
        });
    }
    group.finish();
}

criterion_group!(store_benches, codec, reads, writes, routing);
criterion_main!(store_benches);
