//! Liveness during an online backup (issue 10): while a backup streams out of a running
//! server whose runtime has a single thread (as under `taskset -c 0`), `/healthz`, an
//! authenticated `GET /v1/account` and a token creation are all answered.
//!
//! The bounds here are seconds, so that a busy machine cannot fail the test; what it
//! checks is that nothing waits for the backup. The latency figures (300,000 tokens, one
//! core, p99 under 50 ms for the reads, no write over 250 ms) are measured by
//! `benches/backup-under-load.sh`, not here.

use crate::support::*;
use serde_json::json;
use std::io::Write;
use std::time::Duration;
use upkeep::model::{AccountPrefix, NewAccount, Principal, Scope, Scopes};

/// Far longer than any of these requests takes, even on a loaded debug build.
const GENEROUS: Duration = Duration::from_secs(20);

/// A backup's destination that keeps the first write (the header line) and then holds the
/// backup still, mid-stream, until released: the CLI side stops reading the admin socket,
/// the server's writes fill its buffer and the server-side backup waits half done.
struct Held {
    bytes: Vec<u8>,
    started: Option<tokio::sync::oneshot::Sender<()>>,
    release: std::sync::mpsc::Receiver<()>,
}

impl Write for Held {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        if let Some(started) = self.started.take() {
            let _ = started.send(());
            let _ = self.release.recv();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

// The default test runtime is current_thread: one thread serves every connection.
#[tokio::test]
async fn requests_and_token_creations_are_answered_while_a_backup_runs() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    // A store whose backup (several MB) is far bigger than what the socket and the
    // buffers on both sides hold, so that a backup held still cannot finish.
    let now = server.now();
    for a in 0..500 {
        let prefix = format!("fill{a:04}");
        let new = NewAccount::parse("Fill", &format!("{prefix}@example.com"), Some(&prefix))
            .expect("valid account");
        drop(server.store().create_account(new, now).expect("account"));
        let prefix = AccountPrefix::parse(&prefix).expect("prefix");
        for t in 0..9 {
            let token = upkeep::store::NewToken {
                principal: Principal::Account(prefix),
                name: format!("fill-token-{t}"),
                scopes: Scopes::only(Scope::Api),
                expires_at: None,
            };
            drop(server.store().create_token(token, now).expect("token"));
        }
    }
    assert!(!server.store().backup_in_progress());

    let (started, backup_began) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel();
    let dir = server.path().to_owned();
    let backup = tokio::task::spawn_blocking(move || {
        let mut out = Held {
            bytes: Vec::new(),
            started: Some(started),
            release: released,
        };
        upkeep::control::backup(&dir, &mut out).map(|()| out.bytes)
    });
    tokio::time::timeout(GENEROUS, backup_began)
        .await
        .expect("the backup's first line within 20 s")
        .expect("the backup began");
    assert!(
        server.store().backup_in_progress(),
        "the server is writing the backup"
    );

    // Nothing below may wait for the backup.
    let health = tokio::time::timeout(
        GENEROUS,
        server.request(http::Method::GET, "/healthz").send(),
    )
    .await
    .expect("/healthz answered during the backup");
    health.expect(200);
    let account = tokio::time::timeout(GENEROUS, server.get("/v1/account", &acme.token).send())
        .await
        .expect("GET /v1/account answered during the backup");
    account.expect(200);
    let created = tokio::time::timeout(
        GENEROUS,
        server
            .post(
                "/v1/account/tokens",
                &acme.token,
                json!({"name": "made-during-backup"}),
            )
            .send(),
    )
    .await
    .expect("a token creation acknowledged during the backup");
    created.expect(200);
    assert!(
        server.store().backup_in_progress(),
        "the backup was still running when the requests were answered"
    );

    release.send(()).expect("the backup is waiting");
    let bytes = tokio::time::timeout(Duration::from_secs(120), backup)
        .await
        .expect("the backup ends once read")
        .expect("backup thread")
        .expect("backup succeeded");
    assert!(!server.store().backup_in_progress());
    let text = String::from_utf8(bytes).expect("text");
    assert!(
        text.len() > 1024 * 1024,
        "the backup ({} bytes) is too small to be held mid-stream",
        text.len()
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.contains("\"end\":true")),
        "a complete backup"
    );
    // Acknowledged before the backup's instant, so it is in it.
    assert!(
        text.contains(&hex("made-during-backup")),
        "the token made during the backup is in it"
    );
}
