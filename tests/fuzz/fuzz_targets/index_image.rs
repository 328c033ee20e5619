//! `upkeep::store::TokenIndex::read_image`, the parser of `index.snapshot`'s body, on
//! arbitrary bytes.
//!
//! Checks: no panic and no allocation beyond what the input's length allows (a count is
//! bounded by the bytes that could hold it; libFuzzer's `-rss_limit_mb` catches a
//! reservation that is not). An image it accepts writes back (`write_image`) to an image
//! that reads to an index of the same size, the same accounts, and the same record and
//! last use for every token the first one holds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use upkeep::store::TokenIndex;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let Ok(index) = TokenIndex::read_image(&mut rest, data.len() as u64) else {
        return;
    };
    let consumed = data.len() - rest.len();
    let mut image = Vec::new();
    index.write_image(&mut image).expect("writing to a Vec");
    let again = TokenIndex::read_image(&mut image.as_slice(), image.len() as u64)
        .expect("an image written by write_image reads back");
    assert_eq!(again.len(), index.len());
    assert_eq!(again.account_count(), index.account_count());
    // Every entry of the input: the 62-byte records at the end of what was read, each
    // starting with its 32-byte hash.
    let entries = &data[consumed - index.len() * 62..consumed];
    for record in entries.chunks_exact(62) {
        let hash = upkeep::model::TokenHash::from_bytes(record[..32].try_into().unwrap());
        assert_eq!(again.get(&hash), index.get(&hash));
        assert_eq!(again.last_used(&hash), index.last_used(&hash));
    }
});
