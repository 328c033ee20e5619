//! Arbitrary bytes as every request body type, through the three decoders handlers use:
//! `decode_json::<T>(bytes)`, `json::<T>(&Input)` (JSON-only families) and
//! `json_or_form::<T>(&Input)` (UpdaterCloud), each with no Content-Type, a form
//! Content-Type, a JSON one and an unsupported one. Also `query_param` and `form_decode`
//! on the bytes as text.
//!
//! Checks: no panic; every error is a 400 (`InvalidRequest`), whatever the Content-Type
//! (SPEC §3: JSON is recognised by its first byte; /api/v1 reads anything else as a form).

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use upkeep::Error;
use upkeep::http::dto::{
    AccountPrefixBody, ApplyLicense, CreateAccount, CreateAccountToken, CreateOperatorToken,
    CreateToken, IssueLicense, LicenseIdBody, OperatorTokenName, RotateToken, UpdateOperatorToken,
};
use upkeep::http::request::{Input, decode_json, form_decode, json, json_or_form, query_param};

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded; charset=UTF-8"),
    Some("application/json"),
    Some("text/plain"),
];

fn input(content_type: Option<&str>, body: &Bytes) -> Input {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("/api/v1/tokens");
    if let Some(kind) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, kind);
    }
    let (parts, ()) = builder.body(()).expect("request").into_parts();
    Input {
        parts,
        body: body.clone(),
    }
}

#[track_caller]
fn only_400<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Ok(_) | Err(Error::InvalidRequest(_)) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

macro_rules! decode_as {
    ($body:expr, $inputs:expr, $($ty:ty),+ $(,)?) => {
        $(
            only_400(decode_json::<$ty>($body));
            for input in $inputs {
                only_400(json::<$ty>(input));
                only_400(json_or_form::<$ty>(input));
            }
        )+
    };
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let inputs: Vec<Input> = CONTENT_TYPES
        .iter()
        .map(|kind| input(*kind, &body))
        .collect();
    decode_as!(
        data,
        &inputs,
        CreateAccountToken,
        ApplyLicense,
        CreateToken,
        RotateToken,
        CreateOperatorToken,
        UpdateOperatorToken,
        OperatorTokenName,
        CreateAccount,
        AccountPrefixBody,
        IssueLicense,
        LicenseIdBody,
        serde_json::Value,
    );
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = form_decode(text);
        let _ = query_param(Some(text), "name");
        let _ = query_param(Some(text), "");
    }
});
