//! The audit log: every change, over HTTP or the admin socket, is one `upkeep::audit`
//! line saying who changed what — and never carries a secret.

use crate::support::{ServeProcess, cli_json, upkeep_cli};

#[test]
fn changes_are_logged_with_who_made_them_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start(&data, "info", &[]);
    // Through the admin socket: the command line.
    let made = cli_json(&upkeep_cli(
        &data,
        &[
            "--json",
            "account",
            "create",
            "--name",
            "Acme",
            "--email",
            "a@acme.io",
            "--prefix",
            "acme",
        ],
    ));
    let first = made["token"]["token"].as_str().unwrap().to_owned();
    // Over HTTP: an account token.
    let (status, body) = server.http(
        "POST",
        "/api/v1/tokens",
        Some(&first),
        r#"{"name":"ci","scopes":["read_user"]}"#,
    );
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let secret = created["data"]["token"].as_str().unwrap().to_owned();
    let (status, body) = server.http("DELETE", "/api/v1/tokens/ci", Some(&first), "");
    assert_eq!(status, 204, "{body}");
    let log = server.stop();

    let audit: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("upkeep::audit"))
        .collect();
    let has = |actor: &str, change: &str| {
        audit
            .iter()
            .any(|line| line.contains(actor) && line.contains(change))
    };
    assert!(
        has("the command line", "created account acme"),
        "{audit:#?}"
    );
    assert!(
        has(
            "account acme (token #",
            r#"created token of account acme \"ci\""#
        ),
        "{audit:#?}"
    );
    assert!(
        has(
            "account acme (token #",
            r#"deleted token of account acme \"ci\""#
        ),
        "{audit:#?}"
    );
    for secret in [&first, &secret] {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
}
