//! The authentication hot path, as every authenticated request pays it:
//! `x-api-key` header → token shape and checksum → blake3 hash → [`TokenIndex`] lookup →
//! expiry/active check → scope check ([`Caller::authorize`]).
//!
//! - `auth/parse`: [`auth::parse`] alone (shape, checksum, hash) of a valid token.
//! - `auth/verify/{1000,100000,1000000}`: [`edge::authenticate`] + `authorize` against an
//!   index of that many real tokens, cycling through [`LOOKUPS`] stored tokens.
//! - `auth/reject_malformed`: a wrong checksum, refused before the (1M) index is touched.
//! - `auth/reject_unknown/1000000`: well-formed tokens that are not in the index.
//!
//! Each index is built once, before its benchmarks; header maps are built up front.
//! `now` is fixed, so after the first hit per token the index's `last_used` store is
//! skipped, as it is for all but one request per token per second in production.
//!
//! Run: `cargo bench --bench auth` (about a minute; add e.g. `-- verify` to filter).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use upkeep::http::auth::{self as edge, Caller, Need};
use upkeep::model::{AccountPrefix, Principal, Scope, Scopes, Timestamp, TokenId};
use upkeep::store::{AuthRecord, TokenIndex};
use upkeep::token::{self as auth, TokenKind};

/// How many distinct stored tokens the lookups cycle through (a power of two).
const LOOKUPS: usize = 512;
/// The clock for every request: mid-2025.
const NOW: Timestamp = Timestamp::from_secs(1_750_000_000);
/// Every token expires a year after `NOW`, so the expiry comparison is really made.
const EXPIRES: Timestamp = Timestamp::from_secs(1_750_000_000 + 365 * 86_400);

fn record(id: u64) -> AuthRecord {
    AuthRecord {
        token_id: TokenId(id),
        principal: Principal::Account(AccountPrefix::parse("acme").expect("valid prefix")),
        scopes: Scopes::only(Scope::Api),
        expires_at: Some(EXPIRES),
        grace: false,
    }
}

fn new_token() -> auth::NewSecret {
    auth::generate(TokenKind::Account).expect("OS RNG")
}

/// The header map a client sends: `x-api-key: <token>`.
fn headers(token: &str) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    map.insert(
        "x-api-key",
        http::HeaderValue::from_str(token).expect("tokens are ASCII"),
    );
    map
}

/// An index of `size` real generated tokens, plus header maps for `LOOKUPS` of them,
/// taken evenly from the whole set.
fn build(size: usize) -> (TokenIndex, Vec<http::HeaderMap>) {
    let started = Instant::now();
    let index = TokenIndex::default();
    let stride = size / LOOKUPS;
    let mut lookups = Vec::with_capacity(LOOKUPS);
    for i in 0..size {
        let secret = new_token();
        if i % stride == 0 && lookups.len() < LOOKUPS {
            lookups.push(headers(&secret.token));
        }
        index.insert(secret.hash, record(i as u64), None);
    }
    assert_eq!(index.len(), size, "a generated token collided");
    for h in &lookups {
        let caller = edge::authenticate(h, &index, NOW).expect("stored token authenticates");
        caller
            .authorize(Need::Scope(Scope::ReadUser))
            .expect("`api` grants `read_user`");
    }
    eprintln!("built index of {size} tokens in {:.2?}", started.elapsed());
    (index, lookups)
}

/// What a request pays before its handler runs.
fn verify(headers: &http::HeaderMap, index: &TokenIndex) -> Result<Caller, upkeep::Error> {
    let caller = edge::authenticate(headers, index, NOW)?;
    caller.authorize(Need::Scope(Scope::ReadUser))?;
    Ok(caller)
}

/// Times `verify` over `requests`, one after another, round-robin.
fn cycle(b: &mut criterion::Bencher<'_>, requests: &[http::HeaderMap], index: &TokenIndex) {
    assert!(requests.len().is_power_of_two());
    let mask = requests.len() - 1;
    let mut i = 0;
    b.iter(|| {
        i = (i + 1) & mask;
        black_box(verify(black_box(&requests[i]), index))
    });
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("auth");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(100);

    let valid = new_token().token;
    group.bench_function("parse", |b| b.iter(|| auth::parse(black_box(&valid))));

    for size in [1_000, 100_000] {
        let (index, lookups) = build(size);
        group.bench_with_input(BenchmarkId::new("verify", size), &lookups, |b, lookups| {
            cycle(b, lookups, &index);
        });
        drop(index);
    }

    let size = 1_000_000;
    let (index, lookups) = build(size);
    group.bench_with_input(BenchmarkId::new("verify", size), &lookups, |b, lookups| {
        cycle(b, lookups, &index);
    });

    // Flip the last checksum character to another base62 digit.
    let mut bad = lookups[0]["x-api-key"].to_str().expect("ASCII").to_owned();
    let last = bad.pop().expect("non-empty token");
    bad.push(if last == '0' { '1' } else { '0' });
    assert_eq!(auth::parse(&bad), Err(auth::Malformed::Checksum));
    let malformed = headers(&bad);
    group.bench_function("reject_malformed", |b| {
        b.iter(|| black_box(verify(black_box(&malformed), &index)));
    });

    let unknown: Vec<_> = (0..LOOKUPS).map(|_| headers(&new_token().token)).collect();
    assert!(
        unknown.iter().all(|h| verify(h, &index).is_err()),
        "a fresh token was already in the index"
    );
    group.bench_with_input(
        BenchmarkId::new("reject_unknown", size),
        &unknown,
        |b, unknown| cycle(b, unknown, &index),
    );

    group.finish();
}

criterion_group!(auth_benches, benches);
criterion_main!(auth_benches);
