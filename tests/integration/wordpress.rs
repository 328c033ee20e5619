//! A real WordPress against the real server (issue "Update checks", "A real WordPress, in
//! CI"): `tests/wordpress/harness.sh e2e` sets up a private MariaDB and a private copy of
//! Debian's WordPress 6.1 with the two test plugins at 1.0.0, runs core's own update check
//! (`wp_update_plugins()`) and core's own `Plugin_Upgrader`, and prints JSON lines
//! (`tests/wordpress/README.md`, "Driving it from the Rust integration test"). This test
//! serves it from `TestServer` (the real `server::run` on `127.0.0.1:0`): the 2.0.0 it
//! offers is exactly the test plugin, built by `tests/wordpress/bin/build-plugin.php` and
//! released through `POST /api/v1/releases`.
//!
//! `upkeep-uri-test` asks in the Plugin Update Checker dialect (`/updates/{prefix}/{slug}`,
//! through core's `Update URI` filter), `upkeep-wu-test` in the WunderUpdates one
//! (`/v1/public/{prefix}/plugins/{slug}`). Three harness runs, each covering both plugins:
//!
//! 1. free: both offered 2.0.0 with a signed `/dl/` link, both installed (the Plugins
//!    screen's "Update now", `bulk_upgrade`);
//! 2. licensed (static keys), `upkeep-uri-test` without a key (`missing_key`),
//!    `upkeep-wu-test` with an expired key (`expired`): 2.0.0 is announced without a
//!    package, the upgrade fails with `no_package`, 1.0.0 stays, nothing is downloaded;
//! 3. licensed, both with a valid key: both installed (update.php's `upgrade()` this time).
//!
//! Without `php`, WordPress, MariaDB or PHP's mysqli (the harness exits 77) the test
//! prints a loud `SKIPPED [upkeep-wordpress]` line past libtest's capture and passes —
//! and fails instead when `CI` is set (`.ci/run` installs them). Each run's phase timings
//! go to stderr the same way; `UPKEEP_WP_DUMP=1` (with `--nocapture`) also prints every
//! JSON line the harness wrote, e.g. to see the server's answers as the plugins saw them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use upkeep::model::ProductId;

use crate::support::{TestAccount, TestServer};

const URI: &str = "upkeep-uri-test";
const WU: &str = "upkeep-wu-test";
/// One harness run takes 2–3 s idle and ~10 s on a busy machine; far beyond that it hangs.
const DEADLINE: Duration = Duration::from_secs(180);

fn wordpress_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wordpress")
}

/// `SKIPPED …` past libtest's capture; under `CI`, a failure instead.
fn skip(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "the WordPress end-to-end test cannot run and CI is set: {why}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED [upkeep-wordpress]: a real WordPress updating from upkeep was NOT tested: \
         {why}\n"
    );
}

/// The test plugin `slug` at `version` as a zip, built by the harness's own
/// `build-plugin.php`; `Err` says what is missing to build it.
fn build_plugin(slug: &str, version: &str, dir: &Path) -> Result<Vec<u8>, String> {
    let wp_src = std::env::var("WP_SRC").unwrap_or_else(|_| "/usr/share/wordpress".into());
    let pclzip = Path::new(&wp_src).join("wp-admin/includes/class-pclzip.php");
    if !pclzip.is_file() {
        return Err(format!(
            "no WordPress in {wp_src} ({} is missing; apt-get install wordpress)",
            pclzip.display()
        ));
    }
    let out = dir.join(format!("{slug}-{version}.zip"));
    let run = Command::new("php")
        .arg(wordpress_dir().join("bin/build-plugin.php"))
        .args([slug, version])
        .arg(&out)
        .output();
    match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("no `php` on PATH (apt-get install php-cli)".into())
        }
        Err(e) => panic!("run php: {e}"),
        Ok(o) => {
            assert!(
                o.status.success(),
                "build-plugin.php {slug} {version}: {:?}\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            Ok(std::fs::read(&out).expect("the built zip"))
        }
    }
}

/// What one `harness.sh e2e` printed.
struct Run {
    name: &'static str,
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    fn step(&self, step: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["step"] == step).collect()
    }

    fn one(&self, step: &str) -> &Value {
        match self.step(step)[..] {
            [line] => line,
            ref other => panic!(
                "{}: {} `{step}` lines{}",
                self.name,
                other.len(),
                self.dump()
            ),
        }
    }

    /// The `check` step's entry of `slug`.
    fn check(&self, slug: &str) -> &Value {
        &self.one("check")["plugins"][format!("{slug}/{slug}.php")]
    }

    /// The `upgrade` step of `slug`.
    fn upgrade(&self, slug: &str) -> &Value {
        let file = format!("{slug}/{slug}.php");
        let found: Vec<_> = self
            .step("upgrade")
            .into_iter()
            .filter(|l| l["plugin"] == file)
            .collect();
        match found[..] {
            [line] => line,
            _ => panic!("{}: no single upgrade of {file}{}", self.name, self.dump()),
        }
    }

    /// Everything the harness printed, for failure messages (the server's answers as the
    /// plugins saw them are in the `check` line).
    fn dump(&self) -> String {
        let lines: Vec<String> = self.lines.iter().map(Value::to_string).collect();
        format!(
            "\n--- harness stdout\n{}\n--- harness stderr\n{}",
            lines.join("\n"),
            self.stderr
        )
    }

    /// Prints the phases' timings (the `timings` line, in the harness's order, and the
    /// teardown from its log) past libtest's capture.
    fn report_timings(&self, total: Duration) {
        const ORDER: [&str; 4] = ["mariadb_start", "wp_copy", "wp_install", "update_check"];
        let mut phases: Vec<(String, String)> = self.one("timings")["ms"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(phase, ms)| (phase.clone(), format!("{ms} ms")))
            .collect();
        phases.sort_by_key(|(phase, _)| ORDER.iter().position(|p| p == phase).unwrap_or(4));
        // "[wp-harness +…ms] teardown: 93 ms (exit status 0)"
        if let Some(teardown) = self.stderr.lines().find_map(|l| {
            let rest = l.split_once("] teardown: ")?.1;
            Some(rest.split_once(" (").map_or(rest, |(ms, _)| ms))
        }) {
            phases.push(("teardown".into(), teardown.to_owned()));
        }
        let phases: Vec<String> = phases.iter().map(|(p, ms)| format!("{p} {ms}")).collect();
        let _ = writeln!(
            std::io::stderr(),
            "[upkeep-wordpress] {}: harness.sh e2e {} ms: {}",
            self.name,
            total.as_millis(),
            phases.join(", ")
        );
    }
}

/// Runs `harness.sh e2e` against `server` with `env` (besides `UPKEEP_URL` and
/// `UPKEEP_PREFIX`), on a blocking thread so that the server, on this test's runtime,
/// keeps serving. SIGTERM after [`DEADLINE`] (the harness then tears down at once).
/// `None`: the harness exited 77 (something is missing), already reported by [`skip`].
async fn harness(
    name: &'static str,
    server: &TestServer,
    prefix: &str,
    env: &[(&str, &str)],
) -> Option<Run> {
    let mut command = Command::new("bash");
    command
        .arg(wordpress_dir().join("harness.sh"))
        .arg("e2e")
        .env("UPKEEP_URL", format!("http://{}", server.addr))
        .env("UPKEEP_PREFIX", prefix)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Only what this run sets: nothing inherited from the caller's environment.
    for var in [
        "UPKEEP_KEY",
        "UPKEEP_KEY_UPKEEP_URI_TEST",
        "UPKEEP_KEY_UPKEEP_WU_TEST",
        "WP_E2E_FROM",
        "WP_E2E_PLUGINS",
        "WP_E2E_MODE",
        "WP_NO_ALLOW_MU",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let child = command.spawn().expect("spawn bash harness.sh");
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = match tokio::time::timeout(DEADLINE, &mut waiting).await {
        Ok(joined) => joined.expect("harness thread").expect("harness output"),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been waited for (the
            // blocking thread is still in wait), so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let output = tokio::time::timeout(Duration::from_secs(30), waiting)
                .await
                .ok()
                .and_then(|joined| joined.ok()?.ok());
            panic!(
                "{name}: harness.sh e2e did not finish within {DEADLINE:?}; sent SIGTERM\n{}",
                output
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default()
            );
        }
    };
    let total = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.code() == Some(77) {
        // "[wp-harness +29ms] missing: mariadbd … (apt-get install …)"
        let missing = stderr
            .lines()
            .find_map(|l| l.split_once("] missing: "))
            .map_or(
                "harness.sh exited 77 (a needed program is missing)",
                |(_, m)| m,
            );
        skip(&format!("missing: {missing}"));
        return None;
    }
    assert!(
        output.status.success(),
        "{name}: harness.sh e2e failed: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    let lines = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: not a JSON line ({e}): {line}\n{stderr}"))
        })
        .collect();
    let run = Run {
        name,
        lines,
        stderr,
    };
    run.report_timings(total);
    if std::env::var_os("UPKEEP_WP_DUMP").is_some() {
        eprintln!("{}", run.dump());
    }
    Some(run)
}

/// Both plugins were activated at 1.0.0 before the check.
fn assert_activated(run: &Run) {
    for slug in [URI, WU] {
        let file = format!("{slug}/{slug}.php");
        let activated = &run.one("activate")["plugins"][&file];
        assert_eq!(
            activated["active"],
            true,
            "{}: {file}{}",
            run.name,
            run.dump()
        );
        assert_eq!(
            run.check(slug)["installed"],
            "1.0.0",
            "{}{}",
            run.name,
            run.dump()
        );
    }
}

/// Core's check offers 2.0.0 with a package on the server's signed link, and core's
/// upgrader downloads and installs it: 2.0.0 on disk, still active.
fn assert_installed(run: &Run, slug: &str, base: &str) {
    let ctx = || format!("{}, {slug}{}", run.name, run.dump());
    let check = run.check(slug);
    assert_eq!(check["answer"]["status"], 200, "{}", ctx());
    assert_eq!(
        check["answer"]["body"]["license"],
        json!({"valid": true}),
        "{}",
        ctx()
    );
    let offered = &check["offered"];
    assert_eq!(offered["new_version"], "2.0.0", "{}", ctx());
    let dl = format!("{base}/dl/");
    let package = offered["package"].as_str().unwrap_or_default();
    assert!(package.starts_with(&dl), "package {package:?}: {}", ctx());
    let upgrade = run.upgrade(slug);
    assert!(
        upgrade["package"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&dl),
        "{}",
        ctx()
    );
    assert_eq!(upgrade["ok"], true, "{}", ctx());
    assert_eq!(upgrade["error_code"], Value::Null, "{}", ctx());
    assert_eq!(upgrade["version_before"], "1.0.0", "{}", ctx());
    assert_eq!(upgrade["version_after"], "2.0.0", "{}", ctx());
    assert_eq!(upgrade["active_after"], true, "{}", ctx());
}

/// Core's check shows 2.0.0 (the update notice) without a package, the server said why
/// with license code `code`, and the upgrade fails with `no_package`: 1.0.0 stays.
fn assert_refused(run: &Run, slug: &str, code: &str) {
    let ctx = || format!("{}, {slug}{}", run.name, run.dump());
    let check = run.check(slug);
    assert_eq!(check["answer"]["status"], 200, "{}", ctx());
    assert_eq!(
        check["answer"]["body"]["license"],
        json!({"valid": false, "code": code}),
        "{}",
        ctx()
    );
    let offered = &check["offered"];
    assert_eq!(offered["new_version"], "2.0.0", "{}", ctx());
    assert_eq!(offered["package"], "", "{}", ctx());
    let upgrade = run.upgrade(slug);
    assert_eq!(upgrade["ok"], false, "{}", ctx());
    assert_eq!(upgrade["error_code"], "no_package", "{}", ctx());
    assert_eq!(upgrade["version_after"], "1.0.0", "{}", ctx());
}

/// Downloads the server counted for `product` today (the manual clock does not move).
fn downloads(server: &TestServer, product: ProductId) -> u64 {
    server.counted(product.0).downloads
}

async fn put(server: &TestServer, account: &TestAccount, path: &str, body: Value) {
    server
        .put(path, &account.token, body)
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn core_updates_both_test_plugins_from_upkeep_free_and_licensed() {
    let zips = tempfile::tempdir().expect("temp dir");
    let mut built = Vec::new();
    for slug in [URI, WU] {
        match build_plugin(slug, "2.0.0", zips.path()) {
            Ok(zip) => built.push((slug, zip)),
            Err(why) => return skip(&why),
        }
    }

    let server = TestServer::start().await;
    let acme = server.account("acme");
    let base = format!("http://{}", server.addr);
    let mut products = Vec::new();
    for (slug, zip) in built {
        let reply = server
            .request(Method::POST, "/api/v1/releases")
            .header("authorization", &format!("Bearer {}", acme.token))
            .header("content-type", "application/zip")
            .body(zip)
            .send()
            .await;
        let version = reply.expect(201)["data"].clone();
        assert_eq!(version["version"], "2.0.0", "{reply:?}");
        assert_eq!(version["product"]["slug"], slug, "{reply:?}");
        products.push(ProductId(version["product"]["id"].as_u64().expect("id")));
    }

    // 1. Free: both plugins update, each from one of the server's signed links.
    let Some(free) = harness("free", &server, &acme.prefix, &[]).await else {
        return;
    };
    assert_activated(&free);
    for slug in [URI, WU] {
        assert_installed(&free, slug, &base);
    }
    let info = &free.one("info")["info"];
    assert_eq!(info["version"], "2.0.0", "plugins_api{}", free.dump());
    for &product in &products {
        assert!(
            downloads(&server, product) >= 1,
            "{product:?}{}",
            free.dump()
        );
    }

    // Licensed by static keys (customer download keys are being built elsewhere; once
    // they exist they belong here too): one valid key, one expired a month ago.
    const VALID: &str = "valid-key-0001";
    const EXPIRED: &str = "expired-key-01";
    for slug in [URI, WU] {
        let plugin = format!("/v1/plugins/{slug}");
        put(
            &server,
            &acme,
            &plugin,
            json!({"license": {"type": "static-keys"}}),
        )
        .await;
        let keys = format!("{plugin}/license/keys");
        put(&server, &acme, &keys, json!({"key": VALID})).await;
        put(
            &server,
            &acme,
            &keys,
            json!({"key": EXPIRED, "expires": "2026-10-24"}),
        )
        .await;
    }
    let before: Vec<u64> = products.iter().map(|&p| downloads(&server, p)).collect();

    // 2. No key (PUC dialect) and an expired key (WunderUpdates dialect): the update
    //    notice, no package, nothing downloaded.
    let Some(refused) = harness(
        "licensed without a valid key",
        &server,
        &acme.prefix,
        &[("UPKEEP_KEY_UPKEEP_WU_TEST", EXPIRED)],
    )
    .await
    else {
        return;
    };
    assert_activated(&refused);
    assert_refused(&refused, URI, "missing_key");
    assert_refused(&refused, WU, "expired");
    let after: Vec<u64> = products.iter().map(|&p| downloads(&server, p)).collect();
    assert_eq!(
        after,
        before,
        "no download without a valid key{}",
        refused.dump()
    );

    // 3. A valid key: both install (update.php's path: upgrade(), then activate again).
    let Some(licensed) = harness(
        "licensed with a valid key",
        &server,
        &acme.prefix,
        &[("UPKEEP_KEY", VALID), ("WP_E2E_MODE", "single")],
    )
    .await
    else {
        return;
    };
    assert_activated(&licensed);
    for slug in [URI, WU] {
        assert_installed(&licensed, slug, &base);
        assert_eq!(licensed.upgrade(slug)["mode"], "single");
    }
    for (i, &product) in products.iter().enumerate() {
        assert!(
            downloads(&server, product) > before[i],
            "{product:?}{}",
            licensed.dump()
        );
    }
}
