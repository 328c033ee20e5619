//! Download-key validation on a large store (SPEC §9): what every licensed update check
//! and every licensing `check` call pays.
//!
//! The store holds `LICENSING_KEYS` (1,000,000 by default) download keys and as many
//! activations, in 4 accounts of 1,000 customers, made by the example
//! `prefill-licensing` (`benches/prefill_licensing.rs`, included here as a module) and
//! cached under `target/bench-licensing/<keys>/`: the first run fills it (several
//! minutes for a million), later runs open it at once.
//!
//! - `licensing/validate/<keys>`: [`licensing::validate`] of a stored key for its product,
//!   no target (product-scoped validation), cycling through [`LOOKUPS`] real keys taken
//!   evenly from the whole set.
//! - `licensing/check_site/<keys>`: [`licensing::check`] with the key's activated site
//!   as the target (what an update check of a `require_activation` product runs).
//! - `licensing/validate_unknown/<keys>`: well-formed uuid4 keys that are not stored
//!   (`not_found`).
//!
//! Each call does what the service does in production: normalize the key, the keyed
//! lookup hash (blake3 keyed by `server.key`), the in-memory key index (lookup hash → key
//! id, `store/key_index.rs`), one sled read and a decode of the key record (for
//! `check_site` also a range scan of the key's activations and their decode), the state
//! checks, and the in-memory note of the check. An unknown key stops at the index. Site strings are normalized
//! before timing (`Target` values), as a dialect does once per request.
//!
//! Run: `cargo bench --bench licensing` (`LICENSING_KEYS=100000` for a smaller store).

#[path = "prefill_licensing.rs"]
mod prefill_licensing;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, SystemTime};
use upkeep::Store;
use upkeep::model::{AccountPrefix, ProductId, Timestamp, normalize_site};
use upkeep::service::licensing::{self, Target, ValidationCode};

/// How many distinct stored keys the lookups cycle through (a power of two).
const LOOKUPS: usize = 512;

struct Lookup {
    account: AccountPrefix,
    product: ProductId,
    key: String,
    target: Target,
}

fn cycle(
    b: &mut criterion::Bencher<'_>,
    lookups: &[Lookup],
    mut call: impl FnMut(&Lookup) -> ValidationCode,
) {
    assert!(lookups.len().is_power_of_two());
    let mask = lookups.len() - 1;
    let mut i = 0;
    b.iter(|| {
        i = (i + 1) & mask;
        black_box(call(black_box(&lookups[i])))
    });
}

fn benches(c: &mut Criterion) {
    let keys: usize = std::env::var("LICENSING_KEYS")
        .ok()
        .map(|v| v.parse().expect("LICENSING_KEYS is a number"))
        .unwrap_or(1_000_000);
    let dir = prefill_licensing::cached(keys).expect("prefill");
    let all = prefill_licensing::read_keys(&dir).expect("keys file");
    assert_eq!(all.len(), keys);
    let store = Store::open(&dir).expect("open the prefilled store");
    let now = Timestamp::from_system(SystemTime::now());

    let stride = keys / LOOKUPS;
    let lookups: Vec<Lookup> = all
        .iter()
        .step_by(stride.max(1))
        .take(LOOKUPS)
        .map(|k| Lookup {
            account: k.account,
            product: k.product,
            key: k.key.clone(),
            target: Target::Site(normalize_site(&k.site).expect("a valid site")),
        })
        .collect();
    drop(all);
    assert_eq!(lookups.len(), LOOKUPS);
    let generator = upkeep::model::KeyGenerator::default();
    let unknown: Vec<Lookup> = lookups
        .iter()
        .map(|l| Lookup {
            account: l.account,
            product: l.product,
            key: upkeep::model::license_key::generate(&generator).expect("OS RNG"),
            target: l.target.clone(),
        })
        .collect();

    let validate = |l: &Lookup| {
        licensing::validate(&store, &l.account, Some(l.product), Some(&l.key), None, now)
            .expect("store read")
    };
    let check_site = |l: &Lookup| {
        let outcome = licensing::check(
            &store,
            &l.account,
            Some(l.product),
            Some(&l.key),
            Some(&l.target),
            now,
        )
        .expect("store read");
        outcome.code
    };
    for l in &lookups {
        assert_eq!(validate(l), ValidationCode::Valid, "key {}", l.key);
        assert_eq!(check_site(l), ValidationCode::Valid, "key {} site", l.key);
    }
    for l in &unknown {
        assert_eq!(validate(l), ValidationCode::NotFound, "fresh key {}", l.key);
    }

    let mut group = c.benchmark_group("licensing");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(100);
    group.bench_with_input(BenchmarkId::new("validate", keys), &lookups, |b, l| {
        cycle(b, l, validate);
    });
    group.bench_with_input(BenchmarkId::new("check_site", keys), &lookups, |b, l| {
        cycle(b, l, check_site);
    });
    group.bench_with_input(
        BenchmarkId::new("validate_unknown", keys),
        &unknown,
        |b, l| cycle(b, l, validate),
    );
    group.finish();
}

criterion_group!(licensing_benches, benches);
criterion_main!(licensing_benches);
