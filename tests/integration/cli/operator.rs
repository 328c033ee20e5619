//! Operator experience (issue 14), through the real binary: which commands create a data
//! directory, how a wrong, unreadable or foreign one is explained, each command's own
//! options, consistent CLI shapes, visible version and settings, the man page.

use crate::support::{ServeProcess, upkeep_init};
use std::path::Path;
use std::process::{Command, Output};

/// `upkeep ARGS` with no `--data` added: the caller says where.
fn upkeep_raw(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_upkeep"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("UPKEEP_DATA")
        .env_remove("UPKEEP_JSON");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run upkeep")
}

/// `upkeep --data DATA ARGS`.
fn upkeep(data: &Path, args: &[&str]) -> Output {
    let mut command = upkeep_raw(&["--data"]);
    command.arg(data).args(args);
    run(&mut command)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// Exit code 2 and the stderr.
#[track_caller]
fn fails(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    stderr(output)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// --- 1. only serve and init create a data directory ---------------------------------------

#[test]
fn admin_commands_on_a_missing_directory_fail_naming_it_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("typo");
    for args in [
        &["account", "list"][..],
        &["token", "list", "--account", "acme"],
        &["operator-token", "list"],
        &["license", "list"],
        &[
            "account",
            "create",
            "--name",
            "A",
            "--email",
            "a@example.com",
        ],
    ] {
        let err = fails(&upkeep(&data, args));
        assert!(
            err.contains(&format!("no data directory at {}", data.display())),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("--data") && err.contains("UPKEEP_DATA") && err.contains("upkeep init"),
            "{args:?}: {err}"
        );
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
    let backup = dir.path().join("backup.jsonl");
    fails(&upkeep(&data, &["backup", backup.to_str().unwrap()]));
    assert!(!backup.exists() && !backup.with_extension("partial").exists());
    // doctor: exit 1, says where it looked.
    let output = upkeep(&data, &["doctor"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains(&format!("no data directory at {}", data.display())),
        "{}",
        stdout(&output)
    );
    assert!(!data.exists());

    // The default directory too, run from an empty working directory.
    let cwd = tempfile::tempdir().unwrap();
    let err = fails(&run(
        upkeep_raw(&["account", "list"]).current_dir(cwd.path())
    ));
    assert!(err.contains("./upkeep-data (the default)"), "{err}");
    assert!(!cwd.path().join("upkeep-data").exists());
}

#[test]
fn init_creates_a_private_directory_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new");
    let text = ok(&upkeep(&data, &["init"]));
    assert!(text.contains("created"), "{text}");
    assert!(text.contains("server.key"), "{text}");
    assert_eq!(mode(&data), 0o700);
    assert!(data.join("server.key").is_file() && data.join("db").is_dir());
    let key = std::fs::read(data.join("server.key")).unwrap();
    let again = ok(&upkeep(&data, &["init"]));
    assert!(again.contains("already holds a store"), "{again}");
    assert_eq!(std::fs::read(data.join("server.key")).unwrap(), key);
    // Now the admin commands work on it.
    assert!(ok(&upkeep(&data, &["account", "list"])).contains("no accounts"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&upkeep(&data, &["--json", "init"]))).unwrap();
    assert_eq!(json["initialized"], false);
}

#[test]
fn serve_creates_its_directory_and_says_so_in_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let server = ServeProcess::start(&data, "info", &[]);
    assert_eq!(mode(&data), 0o700);
    let (status, body) = server.http("GET", "/healthz", None, "");
    assert_eq!(status, 200, "{body}");
    let log = server.stop();
    assert!(log.contains("created the data directory"), "{log}");
    assert!(log.contains("effective settings"), "{log}");

    // A second start on the same directory does not claim to have created it.
    let server = ServeProcess::start(&data, "info", &[]);
    let log = server.stop();
    assert!(!log.contains("created the data directory"), "{log}");
}

#[test]
fn a_failed_start_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never");
    // The port is taken (held by this test).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = fails(&upkeep(&data, &["serve", "--listen", &addr]));
    assert!(err.contains("cannot listen on"), "{err}");
    assert!(
        !data.exists(),
        "a start that could not listen created {}",
        data.display()
    );
    // A bad address.
    let err = fails(&upkeep(&data, &["serve", "--listen", "nonsense"]));
    assert!(err.contains("--listen"), "{err}");
    assert!(!data.exists());
    // A link lifetime under a second would make every link expired as it is made.
    let err = fails(&upkeep(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--download-url-ttl",
            "500ms",
        ],
    ));
    assert!(
        err.contains("--download-url-ttl must be at least 1s"),
        "{err}"
    );
    assert!(!data.exists());
    drop(taken);
}

#[test]
fn help_and_doctor_say_which_directory_is_used() {
    let cwd = tempfile::tempdir().unwrap();
    let help = ok(&run(upkeep_raw(&["--help"]).current_dir(cwd.path())));
    assert!(
        help.contains("Data directory right now: ./upkeep-data (the default)")
            || help.contains("Data directory right now: /var/lib/upkeep"),
        "{help}"
    );
    let given = cwd.path().join("elsewhere");
    let help = ok(&run(upkeep_raw(&["account", "--help"])
        .current_dir(cwd.path())
        .env("UPKEEP_DATA", &given)));
    assert!(
        help.contains(&format!(
            "Data directory right now: {} (from --data / UPKEEP_DATA)",
            given.display()
        )),
        "{help}"
    );
    upkeep_init(&given);
    let report = ok(&upkeep(&given, &["doctor", "--min-free-space", "0"]));
    assert!(
        report.starts_with(&format!(
            "ok    data directory: {} (from --data / UPKEEP_DATA)",
            given.display()
        )),
        "{report}"
    );
}

// --- 2. permission and path errors explained -----------------------------------------------

#[test]
fn a_file_as_data_directory_is_called_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    for args in [
        &["account", "list"][..],
        &["init"],
        &["serve", "--listen", "127.0.0.1:0"],
    ] {
        let err = fails(&upkeep(&file, args));
        assert!(err.contains("is not a directory"), "{args:?}: {err}");
        assert!(!err.contains("os error 17"), "{err}");
    }
    let output = upkeep(&file, &["doctor"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("is not a directory"),
        "{}",
        stdout(&output)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// Runs the binary as uid/gid 65534 (nobody), or says loudly why it cannot.
fn as_nobody(args: &[&std::ffi::OsStr]) -> Option<Output> {
    let probe = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_upkeep"))
        .arg("--version")
        .output();
    match probe {
        Ok(output) if output.status.success() => {}
        other => {
            println!(
                "\n*** SKIPPED: cannot run upkeep as another user here (setpriv: {other:?}); \
                 the non-owner checks did NOT run ***\n"
            );
            return None;
        }
    }
    Some(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_upkeep"))
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("UPKEEP_DATA")
            .output()
            .expect("setpriv"),
    )
}

#[test]
fn a_non_owner_is_told_to_run_as_the_owner_and_doctor_fails() {
    if upkeep::datadir::euid() != 0 {
        println!("\n*** SKIPPED: not root, cannot switch to another user ***\n");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Readable parents, as /var/lib is: only the data directory itself is private.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    upkeep_init(&data);
    let d = data.as_os_str();
    let Some(listed) = as_nobody(&["--data".as_ref(), d, "account".as_ref(), "list".as_ref()])
    else {
        return;
    };
    assert_eq!(listed.status.code(), Some(2), "{}", stdout(&listed));
    let err = stderr(&listed);
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("sudo -u root upkeep"), "{err}");
    assert!(!err.contains("Operation not permitted"), "{err}");

    let doctor = as_nobody(&["--data".as_ref(), d, "doctor".as_ref()]).unwrap();
    let report = stdout(&doctor);
    assert_eq!(doctor.status.code(), Some(1), "{report}");
    assert!(report.contains("permission denied"), "{report}");
    assert!(!report.contains("no store yet"), "{report}");
    assert!(report.contains("sudo -u root"), "{report}");

    // --json: the error is JSON too.
    let json = as_nobody(&[
        "--json".as_ref(),
        "--data".as_ref(),
        d,
        "license".as_ref(),
        "list".as_ref(),
    ])
    .unwrap();
    let err: serde_json::Value = serde_json::from_str(stderr(&json).trim()).expect("JSON error");
    assert_eq!(err["error"], "permission_denied");
}

#[test]
fn root_does_not_write_into_another_users_stopped_store() {
    if upkeep::datadir::euid() != 0 {
        println!(
            "\n*** SKIPPED: not root: the root-on-a-foreign-directory refusal did NOT run ***\n"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let err = fails(&upkeep(
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
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("run as the directory's owner"), "{err}");
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "root wrote into it"
    );
}

// --- 3. each command shows and accepts only its own options ---------------------------------

#[test]
fn each_command_shows_and_accepts_only_its_own_options() {
    let help = |args: &[&str]| ok(&run(&mut upkeep_raw(args)));
    let completions = help(&["completions", "--help"]);
    let account_list = help(&["account", "list", "--help"]);
    let serve = help(&["serve", "--help"]);
    for flag in [
        "--default-activation-limit",
        "--min-free-space",
        "--listen",
        "--data",
    ] {
        assert!(
            !completions.contains(flag),
            "completions shows {flag}:\n{completions}"
        );
    }
    for flag in [
        "--default-activation-limit",
        "--listen",
        "--max-body-bytes",
        "--trust-proxy",
    ] {
        assert!(
            !account_list.contains(flag),
            "account list shows {flag}:\n{account_list}"
        );
        assert!(serve.contains(flag), "serve lacks {flag}:\n{serve}");
    }
    assert!(account_list.contains("--data") && account_list.contains("--json"));
    assert!(serve.contains("--check-config"));

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let err = fails(&upkeep(
        data,
        &["account", "list", "--default-activation-limit", "5"],
    ));
    assert!(err.contains("unexpected argument"), "{err}");
    let err = fails(&upkeep(
        data,
        &["completions", "bash", "--min-free-space", "0"],
    ));
    assert!(err.contains("unexpected argument"), "{err}");
}

#[test]
fn json_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let err = fails(&upkeep(
        data,
        &["--json", "token", "list", "--account", "nobody"],
    ));
    let err: serde_json::Value = serde_json::from_str(err.trim()).expect("JSON");
    assert_eq!(err["error"], "not_found");
    assert_eq!(err["status"], 404);
    assert_eq!(err["message"], "no account with prefix `nobody`");
    // A usage error, --json after the command.
    let err = fails(&upkeep(
        data,
        &["license", "issue", "--limit", "lots", "--json"],
    ));
    let err: serde_json::Value = serde_json::from_str(err.trim()).expect("JSON");
    assert_eq!(err["error"], "usage");
    assert!(
        err["message"].as_str().unwrap().contains("--limit"),
        "{err}"
    );
    // A missing directory.
    let err = fails(&upkeep(
        &data.join("missing"),
        &["account", "list", "--json"],
    ));
    let err: serde_json::Value = serde_json::from_str(err.trim()).expect("JSON");
    assert_eq!(err["error"], "no_data_directory");
}

#[test]
fn a_store_option_the_running_server_does_not_use_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start(&data, "warn", &[]);
    let output = upkeep(&data, &["account", "list", "--min-free-space", "1MiB"]);
    ok(&output);
    assert!(
        stderr(&output).contains("--min-free-space 1MiB is not used"),
        "{}",
        stderr(&output)
    );
    server.stop();
}

// --- 4. consistent shapes -------------------------------------------------------------------

#[test]
fn names_are_positional_and_the_old_flag_form_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(&upkeep(
        data,
        &[
            "account",
            "create",
            "--name",
            "A",
            "--email",
            "a@example.com",
            "--prefix",
            "acme",
        ],
    ));
    for name in ["one", "two"] {
        ok(&upkeep(
            data,
            &["token", "create", "--account", "acme", "--name", name],
        ));
        ok(&upkeep(data, &["operator-token", "create", "--name", name]));
    }
    assert!(
        ok(&upkeep(
            data,
            &["token", "revoke", "--account", "acme", "one"]
        ))
        .contains("revoked")
    );
    assert!(
        ok(&upkeep(
            data,
            &["token", "revoke", "--account", "acme", "--name", "two"]
        ))
        .contains("revoked")
    );
    assert!(ok(&upkeep(data, &["operator-token", "revoke", "one"])).contains("revoked"));
    assert!(
        ok(&upkeep(
            data,
            &["operator-token", "revoke", "--name", "two"]
        ))
        .contains("revoked")
    );
    let listed = ok(&upkeep(data, &["token", "list", "--account", "acme"]));
    assert!(
        !listed.contains("one") && !listed.contains("two"),
        "{listed}"
    );
}

#[test]
fn an_unknown_account_reads_the_same_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let expected = "no account with prefix `ghost`";
    for args in [
        &["token", "list", "--account", "ghost"][..],
        &["token", "create", "--account", "ghost", "--name", "x"],
        &["token", "revoke", "--account", "ghost", "x"],
        &["account", "delete", "ghost"],
    ] {
        let err = fails(&upkeep(data, args));
        assert_eq!(err.trim(), format!("upkeep: {expected}"), "{args:?}");
    }
}

#[test]
fn bare_numbers_and_negative_limits_get_a_useful_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let err = fails(&upkeep(
        data,
        &[
            "token",
            "create",
            "--account",
            "a",
            "--name",
            "x",
            "--expires",
            "90",
        ],
    ));
    assert!(err.contains("did you mean 90d"), "{err}");
    assert!(!err.contains("90ms"), "{err}");
    let err = fails(&upkeep(data, &["license", "issue", "--limit", "-1"]));
    assert!(!err.contains("unexpected argument"), "{err}");
    assert!(err.contains("1 or more"), "{err}");
    assert!(
        ok(&upkeep(
            data,
            &["license", "issue", "--limit", "5", "--expires", "365d"]
        ))
        .contains("issued")
    );
}

#[test]
fn the_license_table_is_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for limit in ["5", "100000"] {
        ok(&upkeep(data, &["license", "issue", "--limit", limit]));
    }
    let table = ok(&upkeep(data, &["license", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    // Every column ends (right-aligned numbers) or starts (text) where the header's does.
    let end_of = |line: &str, n: usize| {
        line.split_whitespace()
            .take(n)
            .last()
            .map(|word| line.find(word).unwrap() + word.len())
    };
    for row in &lines[1..] {
        assert_eq!(end_of(row, 1), end_of(lines[0], 1), "ID column:\n{table}");
        assert_eq!(
            end_of(row, 2),
            end_of(lines[0], 2),
            "LIMIT column:\n{table}"
        );
    }
    let account_at = lines[0].find("ACCOUNT").unwrap();
    for row in &lines[1..] {
        assert_eq!(
            &row[account_at..account_at + 1],
            "-",
            "ACCOUNT column:\n{table}"
        );
    }
}

#[test]
fn doctor_the_start_up_log_and_restore_count_credentials_alike() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    upkeep_init(&data);
    let created = crate::support::cli_json(&upkeep(
        &data,
        &[
            "--json",
            "account",
            "create",
            "--name",
            "A",
            "--email",
            "a@example.com",
            "--prefix",
            "acme",
        ],
    ));
    let token = created["token"]["token"].as_str().unwrap().to_owned();
    // One rotation with a grace window: 1 token, 1 grace secret, 2 credentials.
    let server = ServeProcess::start(&data, "info", &[]);
    let (status, body) = rotate(&server, &token);
    assert_eq!(status, 201, "{body}");
    server.stop();
    let report = ok(&upkeep(&data, &["doctor", "--min-free-space", "0"]));
    assert!(report.contains("1 accounts and 1 tokens"), "{report}");
    assert!(report.contains("1 grace secrets"), "{report}");
    assert!(report.contains("2 credentials authenticate"), "{report}");
    let server = ServeProcess::start(&data, "info", &[]);
    let log = server.stop();
    let listening = log
        .lines()
        .find(|line| line.contains("upkeep listening"))
        .expect("listening line");
    assert!(listening.contains("\"credentials\":2"), "{listening}");
    let backup = dir.path().join("backup.jsonl");
    ok(&upkeep(&data, &["backup", backup.to_str().unwrap()]));
    let restored = dir.path().join("restored");
    let text = ok(&upkeep(&restored, &["restore", backup.to_str().unwrap()]));
    assert!(
        text.contains("2 credentials authenticate (tokens and grace secrets)"),
        "{text}"
    );
}

fn rotate(server: &ServeProcess, token: &str) -> (u16, String) {
    server.http(
        "POST",
        "/api/v1/tokens/self/rotate",
        Some(token),
        r#"{"grace":"1h"}"#,
    )
}

// --- 5. version and settings visible ---------------------------------------------------------

#[test]
fn check_config_prints_the_settings_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = ok(&upkeep(
        &data,
        &[
            "serve",
            "--check-config",
            "--listen",
            "127.0.0.1:9",
            "--trust-proxy",
            "--header-timeout",
            "7s",
        ],
    ));
    assert!(text.contains("configuration is valid"), "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    for expected in [
        "--listen",
        "127.0.0.1:9",
        "--trust-proxy",
        "true",
        "--header-timeout",
        "7s",
        "missing: created at the first start",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    assert!(!data.exists(), "--check-config created {}", data.display());
    let err = fails(&upkeep(
        &data,
        &["serve", "--check-config", "--listen", "nowhere"],
    ));
    assert!(err.contains("--listen `nowhere`"), "{err}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&upkeep(&data, &["--json", "serve", "--check-config"]))).unwrap();
    // The default listen address, as printed (nothing binds it).
    assert_eq!(json["settings"]["listen"], upkeep::defaults::LISTEN);
    assert!(!data.exists());
}

#[test]
fn the_start_up_log_prints_the_effective_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start(
        &data,
        "info",
        &["--max-body-bytes", "1234", "--trust-proxy"],
    );
    let log = server.stop();
    let line = log
        .lines()
        .find(|line| line.contains("effective settings"))
        .unwrap_or_else(|| panic!("no settings line:\n{log}"));
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    let settings = event["settings"].as_str().unwrap();
    for expected in [
        "max-body-bytes=1234",
        "trust-proxy=true",
        "header-timeout=10s",
        "listen=127.0.0.1:0",
    ] {
        assert!(
            settings.contains(expected),
            "{expected} missing: {settings}"
        );
    }
    assert!(
        event["version"]
            .as_str()
            .unwrap()
            .starts_with(env!("CARGO_PKG_VERSION"))
    );
}

// --- 6. the landing at / ----------------------------------------------------------------------

#[tokio::test]
async fn the_landing_answers_json_to_clients_and_html_to_browsers() {
    use http::Method;
    let server = crate::support::TestServer::start().await;
    let body = server.request(Method::GET, "/").send().await.expect(200);
    assert_eq!(body["links"]["health"], "/healthz");
    assert_eq!(body["links"]["openapi"], "/openapi.json");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let reply = server
        .request(Method::GET, "/")
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = String::from_utf8_lossy(&reply.body);
    assert!(
        page.contains("href=\"/healthz\"") && page.contains("href=\"/openapi.json\""),
        "{page}"
    );
    // A client preferring JSON gets JSON.
    let reply = server
        .request(Method::GET, "/")
        .header("accept", "application/json, text/html;q=0.5")
        .send()
        .await;
    reply.expect(200);
    // A POST to `/` is EDD's (SPEC §8.2): always 200 in EDD's shapes.
    let edd = server.request(Method::POST, "/").send().await.expect(200);
    assert_eq!(edd["success"], false, "{edd}");
    server
        .request(Method::PUT, "/")
        .send()
        .await
        .expect_error(405, "method_not_allowed");
}

// --- 7. the man page ------------------------------------------------------------------------

#[test]
fn the_man_page_lists_every_option_once_named() {
    use clap::CommandFactory;
    let page = ok(&run(&mut upkeep_raw(&["man"])));
    fn longs(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                if !arg.is_hide_set() && long != "help" && long != "version" {
                    out.push(long.to_owned());
                }
            }
        }
        for sub in command.get_subcommands() {
            longs(sub, out);
        }
    }
    let mut all = Vec::new();
    longs(&upkeep::cli::Cli::command(), &mut all);
    assert!(all.contains(&"default-activation-limit".to_owned()));
    for long in &all {
        let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
        assert!(page.contains(&roff), "--{long} missing from the man page");
    }
    for sub in [
        "upkeep serve",
        "upkeep token revoke",
        "upkeep license issue",
        "upkeep init",
    ] {
        assert!(
            page.contains(&format!(".SS \"{}\"", sub.replace('-', "\\-"))),
            "{sub}"
        );
    }
    let name = page
        .split(".SH NAME\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap();
    assert_eq!(name.matches("upkeep").count(), 1, "NAME line: {name}");
}

// --- 9. request logs --------------------------------------------------------------------------

/// `upkeep serve` logging text lines to a file, with `rust_log`; waits for "listening".
struct TextServer {
    child: std::process::Child,
    addr: String,
    log: std::path::PathBuf,
}

impl TextServer {
    fn start(data: &Path, rust_log: &str, extra: &[&str]) -> TextServer {
        use std::io::Read;
        let log = data.with_extension("text.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut child = upkeep_raw(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--data",
        ])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", rust_log)
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut text = String::new();
        let mut reader = std::fs::File::open(&log).unwrap();
        let addr = loop {
            reader.read_to_string(&mut text).unwrap();
            if let Some(rest) = text.split("upkeep listening listen=").nth(1) {
                if let Some(addr) = rest.split_whitespace().next() {
                    break addr.to_owned();
                }
            }
            if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                panic!("serve did not start:\n{text}");
            }
            std::thread::yield_now();
        };
        TextServer { child, addr, log }
    }

    /// Sends `raw` bytes as one request on a new connection; returns the response.
    fn raw(&self, raw: &[u8]) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        stream.write_all(raw).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }

    /// SIGTERM, wait, the whole log.
    fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for TextServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn request_lines_carry_client_path_route_status_latency_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = TextServer::start(&data, "info", &["--trust-proxy"]);
    let reply = server.raw(
        b"GET /v1/account?license=upk_pl_SECRETSECRET&limit=5 HTTP/1.1\r\nhost: x\r\n\
          x-forwarded-for: 203.0.113.7\r\nx-api-key: upk_at_bogus\r\nconnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    let reply = server.raw(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // EDD answers a body too large with a `200` (SPEC §9.2): the line says why.
    let reply = server.raw(
        b"POST /edd/acme HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
          content-length: 100000\r\nconnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"payload_too_large\""), "{reply}");
    let log = server.stop();
    assert!(
        !log.contains("SECRETSECRET"),
        "a query value reached the log:\n{log}"
    );
    let line = log
        .lines()
        .find(|line| line.contains("route=get_account"))
        .unwrap_or_else(|| panic!("no request line:\n{log}"));
    for part in [
        "client=203.0.113.7",
        "method=GET",
        "path=/v1/account?license=[redacted]&limit=5",
        "status=401",
        "reason=credential refused",
    ] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
    let latency = line
        .split("latency_us=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    assert!(
        latency.parse::<u64>().is_ok(),
        "latency_us={latency}: {line}"
    );
    let health = log
        .lines()
        .find(|line| line.contains("route=health"))
        .expect("healthz line");
    assert!(
        health.contains("status=200") && !health.contains("reason="),
        "{health}"
    );
    let edd = log
        .lines()
        .find(|line| line.contains("route=edd_post"))
        .expect("EDD line");
    assert!(
        edd.contains("status=200")
            && edd.contains("reason=payload_too_large: answered in the dialect's shape"),
        "{edd}"
    );
}

#[test]
fn nothing_a_client_sends_reaches_the_text_log_raw() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = TextServer::start(&data, "debug", &[]);
    // Encoded control characters, raw ones (hyper may refuse these before we see them),
    // and a forged log line in the query.
    server.raw(b"GET /%0A%1B%00x?name=a%0Ab HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    server.raw(b"GET /a\x1b[31mb\x00c HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    server
        .raw(b"GET /x?limit=1\nFAKE INFO forged HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    server.raw(b"GET /v1/account HTTP/1.1\r\nhost: x\r\nx-api-key: \x1b]0;pwned\x07\r\nconnection: close\r\n\r\n");
    let log = server.stop();
    for (i, byte) in log.bytes().enumerate() {
        assert!(
            byte == b'\n' || (byte >= 0x20 && byte != 0x7f),
            "raw control byte {byte:#04x} at {i} in the log:\n{log}"
        );
    }
    // Every line is one of ours: it starts with a timestamp.
    for line in log.lines() {
        assert!(
            line.starts_with("20"),
            "a line that is not ours: {line:?}\n{log}"
        );
    }
    assert!(log.contains("path=/%0A%1B%00x?name=a%0Ab"), "{log}");
    // RUST_LOG=debug is upkeep's debug, not the store engine's.
    assert!(log.contains("DEBUG upkeep"), "{log}");
    assert!(
        !log.contains(" sled::"),
        "sled's debug lines in the log:\n{log}"
    );
}

#[tokio::test]
async fn dropped_log_lines_are_a_metric() {
    use http::Method;
    let server = crate::support::TestServer::start().await;
    let operator = server.operator_token("metrics-reader", true, false, None);
    let reply = server
        .request(Method::GET, "/metrics")
        .header("authorization", &format!("Bearer {operator}"))
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        text.contains("# TYPE upkeep_log_lines_dropped_total counter"),
        "{text}"
    );
    assert!(text.contains("\nupkeep_log_lines_dropped_total "), "{text}");
}
