//! The real `upkeep` binary: help, the admin commands on an in-process store, the refusal
//! while another process holds the store, and `serve` answering and stopping on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn upkeep(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run upkeep")
}

#[track_caller]
fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[track_caller]
fn fails(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr.clone()).expect("utf-8")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(output)).expect("JSON output")
}

#[test]
fn help_explains_every_command_without_touching_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-created");
    let help = ok(&upkeep(&data, &["--help"]));
    for word in ["serve", "account", "token", "license", "UPKEEP_DATA"] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    let serve_help = ok(&upkeep(&data, &["serve", "--help"]));
    // The documented default address (a string in the help text; nothing binds it here).
    for word in [
        "--listen",
        upkeep::defaults::LISTEN,
        "UPKEEP_LISTEN",
        "--max-body-bytes",
        "--header-timeout",
    ] {
        assert!(
            serve_help.contains(word),
            "{word} missing from:\n{serve_help}"
        );
    }
    assert!(ok(&upkeep(&data, &["--version"])).starts_with("upkeep "));
    assert!(!data.exists());
}

#[test]
fn admin_commands_round_trip_on_a_stopped_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let text = ok(&upkeep(
        data,
        &[
            "account",
            "create",
            "--name",
            "Acme",
            "--email",
            "dev@acme.io",
            "--prefix",
            "acme",
        ],
    ));
    assert!(text.contains("created account acme"), "{text}");
    let token = text.lines().last().unwrap();
    assert!(
        upkeep::token::parse(token).is_ok(),
        "last line is the token: {text}"
    );

    let created = json(&upkeep(
        data,
        &[
            "--json",
            "account",
            "create",
            "--name",
            "Globex",
            "--email",
            "ops@globex.io",
        ],
    ));
    let random_prefix = created["account"]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(random_prefix.len(), 8);
    assert!(
        created["token"]["token"]
            .as_str()
            .unwrap()
            .starts_with("upk_at_")
    );

    let duplicate = fails(&upkeep(
        data,
        &[
            "account", "create", "--name", "A", "--email", "a@b.io", "--prefix", "acme",
        ],
    ));
    assert!(duplicate.contains("already exists"), "{duplicate}");
    let bad = fails(&upkeep(
        data,
        &[
            "account", "create", "--name", "A", "--email", "nope", "--prefix", "x1y",
        ],
    ));
    assert!(bad.contains("email"), "{bad}");

    let list = json(&upkeep(data, &["--json", "account", "list"]));
    let prefixes: Vec<&str> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["prefix"].as_str().unwrap())
        .collect();
    assert!(
        prefixes.contains(&"acme") && prefixes.contains(&random_prefix.as_str()),
        "{list}"
    );

    let token = json(&upkeep(
        data,
        &[
            "--json",
            "token",
            "create",
            "--account",
            "acme",
            "--name",
            "deploy",
            "--scopes",
            "read_user,reports",
            "--expires",
            "90d",
        ],
    ));
    assert!(token["token"].as_str().unwrap().starts_with("upk_at_"));
    assert_eq!(
        token["details"]["scopes"],
        serde_json::json!(["read_user", "reports"])
    );
    let tokens = json(&upkeep(
        data,
        &["--json", "token", "list", "--account", "acme"],
    ));
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 2);
    let bad_scope = fails(&upkeep(
        data,
        &[
            "token",
            "create",
            "--account",
            "acme",
            "--name",
            "x",
            "--scopes",
            "root",
        ],
    ));
    assert!(bad_scope.contains("unknown scope `root`"), "{bad_scope}");
    fails(&upkeep(
        data,
        &["token", "create", "--account", "nobody", "--name", "x"],
    ));
    ok(&upkeep(
        data,
        &["token", "revoke", "--account", "acme", "--name", "deploy"],
    ));
    let again = fails(&upkeep(
        data,
        &["token", "revoke", "--account", "acme", "--name", "deploy"],
    ));
    assert!(again.contains("no token named `deploy`"), "{again}");

    let issued = json(&upkeep(
        data,
        &[
            "--json",
            "license",
            "issue",
            "--limit",
            "10",
            "--expires",
            "365d",
        ],
    ));
    assert!(issued["key"].as_str().unwrap().starts_with("upk_pl_"));
    let id = issued["license"]["id"].as_u64().unwrap().to_string();
    let licenses = ok(&upkeep(data, &["license", "list"]));
    assert!(
        licenses.contains(&id) && !licenses.contains("upk_pl_"),
        "{licenses}"
    );
    ok(&upkeep(data, &["license", "revoke", &id]));
    fails(&upkeep(data, &["license", "revoke", &id]));
    fails(&upkeep(data, &["license", "issue", "--limit", "0"]));

    let deleted = ok(&upkeep(data, &["account", "delete", "acme"]));
    assert!(
        deleted.contains("deleted account acme and its 1 token"),
        "{deleted}"
    );
    fails(&upkeep(data, &["account", "delete", "acme"]));
}

#[test]
fn admin_commands_refuse_clearly_when_the_store_is_locked_and_no_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = upkeep::Store::open(dir.path()).unwrap();
    let message = fails(&upkeep(dir.path(), &["account", "list"]));
    assert!(message.contains("locked by another process"), "{message}");
    assert!(message.contains("admin.sock"), "{message}");
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    drop(store);
    ok(&upkeep(dir.path(), &["account", "list"]));
}

#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let text = ok(&upkeep(
        dir.path(),
        &[
            "account",
            "create",
            "--name",
            "Acme",
            "--email",
            "dev@acme.io",
            "--prefix",
            "abcde123",
        ],
    ));
    let token = text.lines().last().unwrap().to_owned();

    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data")
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // The first log line announces the bound address.
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve exited before listening"
        );
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if event["message"] == "upkeep listening" {
            break event["listen"].as_str().unwrap().to_owned();
        }
    };

    let response = raw_get(&addr, "/v1/account", &token);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""prefix":"abcde123""#), "{response}");

    // SAFETY: plain libc-free signal through the `kill` command; no unsafe needed.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(exit.success(), "exit {exit:?}; log:\n{rest}");
    assert!(rest.contains("store flushed"), "{rest}");
    assert!(!rest.contains(&token), "the token must never be logged");
}

/// A one-shot HTTP/1.1 GET over std's TcpStream.
fn raw_get(addr: &str, path: &str, token: &str) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {token}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Runs the CLI off the async runtime (the server under test lives on it).
async fn cli_async(data: &Path, args: &[&str]) -> Output {
    let data = data.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        upkeep(&data, &args)
    })
    .await
    .expect("cli task")
}

#[tokio::test]
async fn the_cli_changes_a_running_server_through_its_admin_socket() {
    use std::os::unix::fs::PermissionsExt;
    let server = crate::support::TestServer::start().await;
    let data = server.path().to_owned();
    let socket = data.join(upkeep::control::SOCKET_FILE);
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(data.join("server.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let created = json(
        &cli_async(
            &data,
            &[
                "--json",
                "account",
                "create",
                "--name",
                "Via CLI",
                "--email",
                "cli@example.com",
                "--prefix",
                "viacli",
            ],
        )
        .await,
    );
    let token = created["token"]["token"].as_str().unwrap().to_owned();
    // The server sees the account and its token at once.
    let body = server.get("/v1/account", &token).send().await.expect(200);
    assert_eq!(body["account"]["prefix"], "viacli");

    let made = json(
        &cli_async(
            &data,
            &[
                "--json",
                "token",
                "create",
                "--account",
                "viacli",
                "--name",
                "deploy",
                "--scopes",
                "read_user",
            ],
        )
        .await,
    );
    let deploy = made["token"].as_str().unwrap().to_owned();
    server.get("/v1/account", &deploy).send().await.expect(200);
    let listed = json(&cli_async(&data, &["--json", "token", "list", "--account", "viacli"]).await);
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2);

    ok(&cli_async(
        &data,
        &["token", "revoke", "--account", "viacli", "--name", "deploy"],
    )
    .await);
    server
        .get("/v1/account", &deploy)
        .send()
        .await
        .expect_error(401, "unauthenticated");

    // Errors come back through the socket as one clear line and exit code 2.
    let refused = fails(
        &cli_async(
            &data,
            &["token", "revoke", "--account", "viacli", "--name", "deploy"],
        )
        .await,
    );
    assert!(refused.contains("no token named `deploy`"), "{refused}");

    let operator = json(
        &cli_async(
            &data,
            &[
                "--json",
                "operator-token",
                "create",
                "--name",
                "ops",
                "--read-only",
            ],
        )
        .await,
    );
    let ops = operator["token"].as_str().unwrap().to_owned();
    assert_eq!(operator["write"], false);
    let reply = server
        .request(http::Method::GET, "/_/account")
        .header("authorization", &format!("Bearer {ops}"))
        .send()
        .await;
    let accounts = reply.expect(200);
    assert_eq!(accounts["data"][0]["prefix"], "viacli");

    ok(&cli_async(&data, &["account", "delete", "viacli"]).await);
    server
        .get("/v1/account", &token)
        .send()
        .await
        .expect_error(401, "unauthenticated");
}

#[test]
fn doctor_reports_and_exits_by_health() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&upkeep(&data, &["init"]));
    ok(&upkeep(
        &data,
        &[
            "account",
            "create",
            "--name",
            "A",
            "--email",
            "a@example.com",
        ],
    ));
    let report = ok(&upkeep(&data, &["doctor", "--min-free-space", "0"]));
    assert!(report.contains("ok    server.key present"), "{report}");
    assert!(report.contains("1 accounts and 1 tokens"), "{report}");
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let output = upkeep(&data, &["--json", "doctor", "--min-free-space", "0"]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let failed: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["level"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(failed[0]["fix"].as_str().unwrap().contains("chmod 600"));
    // Doctor only looks: the key's mode is as it was.
    assert_eq!(
        std::fs::metadata(data.join("server.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    assert_eq!(
        upkeep(&dir.path().join("missing"), &["doctor"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn version_man_page_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let version = ok(&upkeep(dir.path(), &["--version"]));
    assert!(
        version.starts_with("upkeep 0.") && version.contains("(git "),
        "{version}"
    );
    let man = ok(&upkeep(dir.path(), &["man"]));
    assert!(
        man.contains(".TH upkeep 1") && man.contains("serve"),
        "{}",
        &man[..200]
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&upkeep(dir.path(), &["completions", shell]));
        assert!(script.contains("operator-token"), "{shell}");
    }
    assert!(
        !dir.path().join("db").exists(),
        "none of these touch the data directory"
    );
}
