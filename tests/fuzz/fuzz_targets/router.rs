//! `upkeep::http::upkeep::api::find(method, path)` on arbitrary methods and paths.
//!
//! Input: one selector byte, then the rest. Selector < 0x80: a standard method
//! (`selector % 9`) and the rest is the path. Selector >= 0x80: the rest is
//! `METHOD SP PATH` (an extension method, if `http::Method` accepts the bytes).
//! Paths that are not UTF-8 are decoded lossily (hyper only hands over ASCII paths, but
//! `route` takes any `&str`).
//!
//! Checks: no panic; an `Ok` match is a row of the table whose method is the
//! request's (GET for HEAD), and routing the row's method and path (parameter filled in)
//! gives the same route back; `Err` is only 404 or 405, and a 405's `Allow` list does not
//! contain the method and never leads to another 405.

#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use upkeep::Error;
use upkeep::http::route::example_path;

fn standard(selector: u8) -> Method {
    match selector % 9 {
        0 => Method::GET,
        1 => Method::HEAD,
        2 => Method::POST,
        3 => Method::PUT,
        4 => Method::DELETE,
        5 => Method::PATCH,
        6 => Method::OPTIONS,
        7 => Method::TRACE,
        _ => Method::CONNECT,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (method, path) = if selector < 0x80 {
        (standard(selector), rest)
    } else {
        let split = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let Ok(method) = Method::from_bytes(&rest[..split]) else {
            return;
        };
        (method, rest.get(split + 1..).unwrap_or_default())
    };
    let path = String::from_utf8_lossy(path);
    check(&method, &path);
});

fn check(method: &Method, path: &str) {
    match upkeep::api::find(method, path) {
        Ok(found) => {
            let row = found.row;
            assert!(
                upkeep::api::rows().iter().any(|r| std::ptr::eq(*r, row)),
                "{method} {path:?}: not a row of the table"
            );
            assert!(std::ptr::eq(upkeep::api::rows()[found.index], row));
            let expected = if *method == Method::HEAD {
                Method::GET
            } else {
                method.clone()
            };
            assert_eq!(row.method, expected, "{method} {path:?} -> {}", row.name);
            // Routing is deterministic.
            assert_eq!(
                upkeep::api::find(method, path).ok().map(|m| m.index),
                Some(found.index)
            );
            // The row's own method and path (parameters filled in) route back to it.
            let canonical = example_path(row, "sample-name");
            match upkeep::api::find(&row.method, &canonical) {
                Ok(again) => assert_eq!(
                    again.index, found.index,
                    "{method} {path:?} vs {canonical:?}"
                ),
                Err(err) => panic!(
                    "{method} {path:?} -> {}, but {canonical:?}: {err:?}",
                    row.name
                ),
            }
            // HEAD goes wherever GET goes.
            if row.method == Method::GET {
                assert_eq!(
                    upkeep::api::find(&Method::HEAD, path).ok().map(|m| m.index),
                    Some(found.index)
                );
            }
        }
        Err(Error::NotFound(_)) => {}
        Err(Error::MethodNotAllowed(allowed)) => {
            assert!(
                allowed.iter().next().is_some(),
                "{method} {path:?}: empty Allow"
            );
            assert!(
                !allowed.contains(method),
                "{method} {path:?}: 405 but Allow lists it: {allowed:?}"
            );
            for other in allowed.iter() {
                if let Err(Error::MethodNotAllowed(_)) = upkeep::api::find(other, path) {
                    panic!("{method} {path:?}: Allow lists {other}, which is a 405 too");
                }
            }
        }
        Err(other) => panic!("{method} {path:?}: unexpected error {other:?}"),
    }
}
