//! `upkeep::http::router::route(method, path)` on arbitrary methods and paths.
//!
//! Input: one selector byte, then the rest. Selector < 0x80: a standard method
//! (`selector % 9`) and the rest is the path. Selector >= 0x80: the rest is
//! `METHOD SP PATH` (an extension method, if `http::Method` accepts the bytes).
//! Paths that are not UTF-8 are decoded lossily (hyper only hands over ASCII paths, but
//! `route` takes any `&str`).
//!
//! Checks: no panic; an `Ok` route's `spec()` is a row of `ROUTES` whose method is the
//! request's (GET for HEAD), and routing the row's method and path (parameter filled in)
//! gives the same route back; `Err` is only 404 or 405, and a 405's `Allow` list does not
//! contain the method and never leads to another 405.

#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use upkeep::Error;
use upkeep::http::router::{ROUTES, Route, example_path, route};

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
    match route(method, path) {
        Ok(found) => {
            let spec = found.spec();
            assert!(
                ROUTES.iter().any(|row| std::ptr::eq(*row, spec)),
                "{method} {path:?}: spec() is not a row of ROUTES"
            );
            let expected = if *method == Method::HEAD {
                Method::GET
            } else {
                method.clone()
            };
            assert_eq!(spec.method, expected, "{method} {path:?} -> {found:?}");
            // Routing is deterministic.
            assert_eq!(route(method, path).ok(), Some(found.clone()));
            // The row's own method and path (parameter filled in) route back to it.
            let name = match &found {
                Route::DeleteAccountToken { name } | Route::DeleteToken { name } => name.as_str(),
                _ => "sample-name",
            };
            let canonical = example_path(spec, name);
            match route(&spec.method, &canonical) {
                Ok(again) => assert_eq!(again, found, "{method} {path:?} vs {canonical:?}"),
                Err(err) => panic!("{method} {path:?} -> {found:?}, but {canonical:?}: {err:?}"),
            }
            // HEAD goes wherever GET goes.
            if spec.method == Method::GET {
                assert_eq!(route(&Method::HEAD, path).ok(), Some(found));
            }
        }
        Err(Error::NotFound(_)) => {}
        Err(Error::MethodNotAllowed(allowed)) => {
            assert!(!allowed.is_empty(), "{method} {path:?}: empty Allow");
            assert!(
                !allowed.contains(method),
                "{method} {path:?}: 405 but Allow lists it: {allowed:?}"
            );
            for other in allowed {
                if let Err(Error::MethodNotAllowed(_)) = route(other, path) {
                    panic!("{method} {path:?}: Allow lists {other}, which is a 405 too");
                }
            }
        }
        Err(other) => panic!("{method} {path:?}: unexpected error {other:?}"),
    }
}
