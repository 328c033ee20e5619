//! No secret at rest or in logs: drive the real binary through every kind of secret
//! (operator token, account tokens, a rotated token, a plan license key, a token value
//! read back, a CLI-made token through the admin socket, refused requests carrying
//! secrets), logging at `trace`, then scan every file of the data directory and the whole
//! log for each secret.

use crate::support::{ServeProcess, cli_json, upkeep_cli};
use serde_json::{Value, json};
use std::path::Path;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn no_secret_appears_in_the_data_directory_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::support::upkeep_init(&data);
    let admin = cli_json(&upkeep_cli(
        &data,
        &["--json", "operator-token", "create", "--name", "admin"],
    ))["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let server = ServeProcess::start(&data, "trace", &[]);
    let (status, body) = server.http(
        "POST",
        "/_/account",
        Some(&admin),
        r#"{"name":"Acme","email":"dev@acme.io","prefix":"acme"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let account_token = json(&body)["data"][0]["token"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = server.http("POST", "/_/license", Some(&admin), r#"{"limit":10}"#);
    assert_eq!(status, 201, "{body}");
    let license_key = json(&body)["data"][0]["key"].as_str().unwrap().to_owned();
    let apply = json!({"license": license_key}).to_string();
    assert_eq!(
        server
            .http("POST", "/v1/account/license", Some(&account_token), &apply)
            .0,
        200
    );
    let (status, body) = server.http(
        "POST",
        "/v1/account/tokens",
        Some(&account_token),
        r#"{"name":"ci","expires":30}"#,
    );
    assert_eq!(status, 200, "{body}");
    let ci = json(&body)["token"]["token"].as_str().unwrap().to_owned();
    let (status, body) = server.http("POST", "/api/v1/tokens/self/rotate", Some(&ci), "grace=1h");
    assert_eq!(status, 201, "{body}");
    let rotated = json(&body)["data"]["token"].as_str().unwrap().to_owned();
    let (status, body) = server.http("GET", "/_/token/value?name=admin", Some(&admin), "");
    assert_eq!(
        (status, json(&body)["data"][0]["token"].as_str()),
        (200, Some(admin.as_str()))
    );
    // Refused requests that carry secrets in bodies, headers and query strings.
    let wrong = json!({"license": account_token}).to_string();
    assert_eq!(
        server
            .http("POST", "/v1/account/license", Some(&account_token), &wrong)
            .0,
        400
    );
    assert_eq!(
        server
            .http(
                "GET",
                &format!("/v1/account?key={license_key}"),
                Some(&format!("{rotated}x")),
                ""
            )
            .0,
        401
    );
    assert_eq!(
        server.http("GET", "/_/account", Some(&account_token), "").0,
        403
    );
    // A token made by the CLI through the running server's admin socket.
    let cli_token = cli_json(&upkeep_cli(
        &data,
        &[
            "--json",
            "token",
            "create",
            "--account",
            "acme",
            "--name",
            "via-socket",
        ],
    ))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server.http("GET", "/v1/account", Some(&cli_token), "").0,
        200,
        "the server sees the CLI's token at once"
    );
    let log = server.stop();

    let secrets = [
        &admin,
        &account_token,
        &license_key,
        &ci,
        &rotated,
        &cli_token,
    ];
    let mut files = Vec::new();
    files_under(&data, &mut files);
    assert!(files.len() >= 3, "the store wrote files: {files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret",
                file.display()
            );
        }
    }
    assert!(
        log.lines().count() > 10 && log.contains("\"route\":\"rotate_self\""),
        "the log recorded the requests:\n{log}"
    );
    for secret in secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret:\n{log}"
        );
        // Not even the secret part without its prefix.
        assert!(
            !log.contains(&secret[7..39]),
            "the log holds a secret's core"
        );
    }
}
