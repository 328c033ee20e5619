//! Staged rollout (SPEC §8.3): which sites see a version offered to `rollout` % of them.
//!
//! A site's bucket, `0..100`, is fixed by the product and the site alone — the first 8
//! bytes of `blake3(product id, 8 bytes big-endian ‖ site)` read big-endian, `mod 100` — so
//! it survives upgrades and restarts, and a site admitted at 30 % stays admitted as the
//! percentage rises. Different products bucket a site independently.

/// The bucket (`0..100`) of a site or machine for a product. `site_or_machine` is the
/// normalized host (SPEC §9 *Sites*) or the app's machine fingerprint: the caller
/// normalizes; this hashes the bytes as given.
pub fn rollout_bucket(product_id: u64, site_or_machine: &str) -> u8 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&product_id.to_be_bytes());
    hasher.update(site_or_machine.as_bytes());
    let hash = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

/// Whether a version rolled out to `rollout` % is offered to this caller: always at 100 (or
/// more); otherwise only to a caller with a site or machine (an empty one is none) whose
/// bucket is below `rollout` — a caller nobody can place sees only full rollouts.
pub fn rollout_admits(product_id: u64, site_or_machine: Option<&str>, rollout: u8) -> bool {
    if rollout >= 100 {
        return true;
    }
    match site_or_machine {
        Some(site) if !site.is_empty() => rollout_bucket(product_id, site) < rollout,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(i: u32) -> String {
        format!("site-{i}.example.org")
    }

    #[test]
    fn a_fixed_vector() {
        // By hand: blake3 over 42 as 8 bytes big-endian, then the site's bytes.
        let mut input = vec![0, 0, 0, 0, 0, 0, 0, 42];
        input.extend_from_slice(b"example.com");
        let hash = blake3::hash(&input);
        let first = u64::from_be_bytes(hash.as_bytes()[..8].try_into().unwrap());
        let expected = (first % 100) as u8;
        assert_eq!(rollout_bucket(42, "example.com"), expected);
        // And pinned, so that a change of layout or hash shows even if both sides moved.
        assert_eq!(expected, EXAMPLE_BUCKET);
        assert!(!rollout_admits(42, Some("example.com"), EXAMPLE_BUCKET));
        assert!(rollout_admits(42, Some("example.com"), EXAMPLE_BUCKET + 1));
    }

    const EXAMPLE_BUCKET: u8 = 27;

    #[test]
    fn full_rollouts_admit_everyone_and_partial_ones_need_a_site() {
        for caller in [None, Some(""), Some("example.com")] {
            assert!(rollout_admits(7, caller, 100), "{caller:?}");
        }
        assert!(!rollout_admits(7, None, 99));
        assert!(!rollout_admits(7, Some(""), 99));
        assert!((0..1000).all(|i| !rollout_admits(7, Some(&site(i)), 0)));
    }

    #[test]
    fn the_same_caller_gets_the_same_answer() {
        for i in 0..200 {
            let s = site(i);
            let bucket = rollout_bucket(1234, &s);
            assert!(bucket < 100);
            assert_eq!(rollout_bucket(1234, &s), bucket);
            for rollout in [1, 30, 99] {
                assert_eq!(
                    rollout_admits(1234, Some(&s), rollout),
                    rollout_admits(1234, Some(&s), rollout)
                );
            }
        }
    }

    #[test]
    fn raising_the_percentage_never_drops_a_site() {
        for i in 0..2000 {
            let s = site(i);
            let mut admitted = false;
            for rollout in 1..=100 {
                let now = rollout_admits(99, Some(&s), rollout);
                assert!(now || !admitted, "{s} dropped at {rollout}%");
                admitted = now;
            }
            assert!(admitted);
            if rollout_admits(99, Some(&s), 30) {
                assert!(rollout_admits(99, Some(&s), 50));
            }
        }
    }

    #[test]
    fn shares_are_roughly_the_percentage() {
        let sites: Vec<String> = (0..10_000).map(site).collect();
        let share = |product: u64, rollout: u8| {
            sites
                .iter()
                .filter(|s| rollout_admits(product, Some(s), rollout))
                .count()
        };
        let at_30 = share(5_000_000_001, 30);
        assert!((2700..=3300).contains(&at_30), "{at_30} of 10,000 at 30%");
        let at_50 = share(5_000_000_001, 50);
        assert!((4700..=5300).contains(&at_50), "{at_50} of 10,000 at 50%");
        // Another product buckets the same sites independently.
        let both = sites
            .iter()
            .filter(|s| rollout_admits(1, Some(s), 30) && rollout_admits(2, Some(s), 30))
            .count();
        assert!(
            (700..=1100).contains(&both),
            "{both} in both at 30% (9% expected)"
        );
    }
}
