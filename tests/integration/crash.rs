//! Crash safety (SPEC §3, §6): "a 2xx to a write means it is on disk" and "a crash
//! (power loss, kill -9) at any moment loses no acknowledged write and leaves a store
//! that opens".
//!
//! One data directory lives through every cycle, so state accumulates. Each cycle runs the
//! real `upkeep serve`, lets [`WRITERS`] threads hammer it over plain HTTP/1.1 (create
//! accounts, account tokens and operator tokens; delete account tokens, operator tokens and
//! accounts), sends it `SIGKILL` right after a random number (1–200) of writes of the cycle were
//! acknowledged, while the other writers' requests are in flight, restarts it on the same directory and checks the ledger of acknowledged (complete `2xx`)
//! writes against it:
//!
//! - the store opens (the server starts and `GET /healthz` is 200);
//! - every acknowledged account is listed by `GET /_/account`, every acknowledged operator
//!   token by `GET /_/token`, every acknowledged account token by its account's
//!   `GET /v1/account/tokens` (asked with the account's first token, which must
//!   authenticate);
//! - every token acknowledged in the cycle just killed authenticates (`GET /v1/account`,
//!   `GET /_/token`), and an operator token's value reads back unchanged
//!   (`GET /_/token/value`); after the last cycle, every live token is checked that way;
//! - every acknowledged deletion stays deleted: the name or prefix is absent from its
//!   listing, and (for a bounded sample per restart, most recent first, so that the
//!   per-address throttle on failed authentications of SPEC §2 can never kick in) the
//!   deleted token gets `401`.
//!
//! A request that got no complete response (the kill) is unacknowledged: it may or may not
//! have happened, and nothing is asserted about it.
//!
//! Cycles: 20 by default. For a longer run:
//!
//! ```text
//! UPKEEP_CRASH_CYCLES=200 cargo test --test integration crash -- --nocapture
//! ```
//!
//! The seed of the kill points is printed first; `UPKEEP_CRASH_SEED=<seed>` replays the
//! same kill points (thread timing still varies). On failure the data directory is kept and its
//! path printed.

use crate::support::{ServeProcess, cli_json, upkeep_cli};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

const DEFAULT_CYCLES: usize = 20;
/// Concurrent writer threads per cycle.
const WRITERS: usize = 4;
/// The kill comes right after this many writes (inclusive range) of the cycle were
/// acknowledged, counted over all writers.
const KILL_AFTER_ACKS: (u64, u64) = (1, 200);
/// The acknowledgments a kill waits for must come within this (else the server is stuck).
const ACK_DEADLINE: Duration = Duration::from_secs(30);
/// Deleted tokens checked for `401` after each restart (stays under the throttle).
const DELETED_AUTH_CHECKS: usize = 12;
/// `RUST_LOG` for the server: warnings, plus the "upkeep listening" line (`main`, at
/// info) that `ServeProcess::start` waits for; not one line per request.
const LOG_LEVEL: &str = "warn,upkeep=info,upkeep::app=warn";
/// A writer stops after this long even if no kill came (a bug in the harness).
const WRITER_LIMIT: Duration = Duration::from_secs(20);

/// SplitMix64: enough randomness for kill points and operation mixes, no dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn pick(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

pub(crate) fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

pub(crate) fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
    )
}

/// Blocks until the writers have reported `n` acknowledged writes on `acks` (one message
/// each), or all of them have stopped; panics if the acknowledgments stop coming for
/// [`ACK_DEADLINE`]. Returns how many were seen.
fn await_acks(acks: &mpsc::Receiver<()>, n: u64) -> u64 {
    let mut seen = 0;
    while seen < n {
        match acks.recv_timeout(ACK_DEADLINE) {
            Ok(()) => seen += 1,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{seen} of {n} writes acknowledged, then none for {ACK_DEADLINE:?}")
            }
        }
    }
    seen
}

// ---- HTTP ---------------------------------------------------------------------------

/// One HTTP/1.1 request (`connection: close`) with a Bearer token. `Ok` only for a
/// complete response (status line, headers, the whole `content-length` body); anything
/// else (refused, reset, truncated by the kill) is `Err`: no answer, not acknowledged.
fn call(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| format!("timeout: {e}"))?;
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e} after {} bytes", raw.len()))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("incomplete response head ({} bytes)", raw.len()))?;
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {head:?}"))?;
    let length = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(n) if n == body.len() => Ok((status, body.to_owned())),
        Some(n) => Err(format!("truncated body: {} of {n} bytes", body.len())),
        None => Err(format!("no content-length in {head:?}")),
    }
}

fn parse_json(body: &str) -> Option<Value> {
    serde_json::from_str(body).ok()
}

// ---- the ledger ---------------------------------------------------------------------

/// An acknowledged token: its name, its secret, and the cycle that created it.
#[derive(Clone, Debug)]
struct Tok {
    name: String,
    secret: String,
    cycle: usize,
}

/// An acknowledged account, its first token (never deleted while the account lives) and
/// the acknowledged tokens made through `/v1/account/tokens`.
#[derive(Clone, Debug)]
struct Acct {
    prefix: String,
    first: Tok,
    tokens: Vec<Tok>,
}

/// A token whose deletion was acknowledged.
#[derive(Clone, Debug)]
struct Deleted {
    /// The owning account's prefix; `None` for an operator token.
    account: Option<String>,
    token: Tok,
    /// The cycle that acknowledged the deletion.
    cycle: usize,
}

/// What one writer was told (2xx) over every cycle. Each writer only touches its own
/// accounts and tokens, so writers never race each other's deletions.
#[derive(Default)]
struct Writer {
    id: usize,
    next: u64,
    accounts: Vec<Acct>,
    operator_tokens: Vec<Tok>,
    deleted_tokens: Vec<Deleted>,
    /// Prefixes of accounts whose deletion was acknowledged.
    deleted_accounts: Vec<String>,
    acknowledged: u64,
    acknowledged_this_cycle: u64,
    /// Requests without a complete answer (cut by the kill).
    unanswered: u64,
    /// Complete non-2xx answers and malformed 2xx bodies: every one is a bug.
    unexpected: Vec<String>,
}

enum Step {
    Continue,
    /// The server stopped answering.
    Stop,
}

impl Writer {
    fn new(id: usize) -> Writer {
        Writer {
            id,
            ..Writer::default()
        }
    }

    fn name(&mut self, cycle: usize, kind: char) -> String {
        self.next += 1;
        format!("c{cycle}w{}{kind}{}", self.id, self.next)
    }

    fn ack(&mut self) {
        self.acknowledged += 1;
        self.acknowledged_this_cycle += 1;
    }

    /// Sends one request; a complete answer with `expected` status comes back as JSON.
    fn send(
        &mut self,
        addr: &str,
        (method, path): (&str, &str),
        token: &str,
        body: &str,
        expected: u16,
    ) -> Result<Option<Value>, ()> {
        match call(addr, method, path, Some(token), body) {
            Err(_) => {
                self.unanswered += 1;
                Err(())
            }
            Ok((status, reply)) if status == expected => match parse_json(&reply) {
                Some(value) => Ok(Some(value)),
                None => {
                    self.unexpected.push(format!(
                        "{method} {path} {body}: {status} not JSON: {reply}"
                    ));
                    Ok(None)
                }
            },
            Ok((status, reply)) => {
                self.unexpected
                    .push(format!("{method} {path} {body}: {status} {reply}"));
                Ok(None)
            }
        }
    }

    /// One random write: create an account 20%, an account token 35%, an operator token
    /// 15%; delete an account token 18%, an operator token 6%, an account 6% (falling
    /// back to a create when there is nothing to delete). `Stop` once the server no
    /// longer answers.
    fn step(&mut self, addr: &str, admin: &str, cycle: usize, rng: &mut Rng) -> Step {
        let roll = rng.below(100);
        let has_tokens = self.accounts.iter().any(|a| !a.tokens.is_empty());
        let result = if self.accounts.is_empty() || roll < 20 {
            self.create_account(addr, admin, cycle)
        } else if roll < 55 || (roll < 88 && !has_tokens) {
            let at = rng.pick(self.accounts.len());
            self.create_account_token(addr, at, cycle)
        } else if roll < 70 || ((88..94).contains(&roll) && self.operator_tokens.is_empty()) {
            self.create_operator_token(addr, admin, cycle)
        } else if roll < 88 {
            let with_tokens: Vec<usize> = (0..self.accounts.len())
                .filter(|&i| !self.accounts[i].tokens.is_empty())
                .collect();
            let at = with_tokens[rng.pick(with_tokens.len())];
            let which = rng.pick(self.accounts[at].tokens.len());
            self.delete_account_token(addr, at, which, cycle)
        } else if roll < 94 {
            let which = rng.pick(self.operator_tokens.len());
            self.delete_operator_token(addr, admin, which, cycle)
        } else if self.accounts.len() > 2 {
            let at = rng.pick(self.accounts.len());
            self.delete_account(addr, admin, at, cycle)
        } else {
            self.create_account(addr, admin, cycle)
        };
        match result {
            Ok(()) => Step::Continue,
            Err(()) => Step::Stop,
        }
    }

    fn create_account(&mut self, addr: &str, admin: &str, cycle: usize) -> Result<(), ()> {
        let prefix = self.name(cycle, 'a');
        let body = json!({
            "name": format!("Crash {prefix}"),
            "email": format!("{prefix}@example.com"),
            "prefix": prefix,
        })
        .to_string();
        let Some(reply) = self.send(addr, ("POST", "/_/account"), admin, &body, 201)? else {
            return Ok(());
        };
        match reply["data"][0]["token"]["token"].as_str() {
            Some(secret) if reply["data"][0]["prefix"] == prefix.as_str() => {
                self.ack();
                self.accounts.push(Acct {
                    first: Tok {
                        name: "default".to_owned(),
                        secret: secret.to_owned(),
                        cycle,
                    },
                    prefix,
                    tokens: Vec::new(),
                });
            }
            _ => self.unexpected.push(format!(
                "POST /_/account {body}: 201 without the account token: {reply}"
            )),
        }
        Ok(())
    }

    fn create_account_token(&mut self, addr: &str, at: usize, cycle: usize) -> Result<(), ()> {
        let name = self.name(cycle, 't');
        let body = json!({"name": name, "expires": -1}).to_string();
        let first = self.accounts[at].first.secret.clone();
        let Some(reply) = self.send(addr, ("POST", "/v1/account/tokens"), &first, &body, 200)?
        else {
            return Ok(());
        };
        match reply["token"]["token"].as_str() {
            Some(secret) => {
                let token = Tok {
                    name,
                    secret: secret.to_owned(),
                    cycle,
                };
                self.ack();
                self.accounts[at].tokens.push(token);
            }
            None => self.unexpected.push(format!(
                "POST /v1/account/tokens {body}: 200 without the token: {reply}"
            )),
        }
        Ok(())
    }

    fn create_operator_token(&mut self, addr: &str, admin: &str, cycle: usize) -> Result<(), ()> {
        let name = format!("crash-{}", self.name(cycle, 'o'));
        let body = json!({"name": name}).to_string();
        let Some(reply) = self.send(addr, ("POST", "/_/token"), admin, &body, 201)? else {
            return Ok(());
        };
        match reply["data"][0]["token"].as_str() {
            Some(secret) => {
                let token = Tok {
                    name,
                    secret: secret.to_owned(),
                    cycle,
                };
                self.ack();
                self.operator_tokens.push(token);
            }
            None => self.unexpected.push(format!(
                "POST /_/token {body}: 201 without the token: {reply}"
            )),
        }
        Ok(())
    }

    fn delete_account_token(
        &mut self,
        addr: &str,
        at: usize,
        which: usize,
        cycle: usize,
    ) -> Result<(), ()> {
        // Whatever the answer, the token is no longer known to be live.
        let token = self.accounts[at].tokens.swap_remove(which);
        let first = self.accounts[at].first.secret.clone();
        let path = format!("/v1/account/tokens/{}", token.name);
        if self
            .send(addr, ("DELETE", &path), &first, "", 200)?
            .is_some()
        {
            self.ack();
            self.deleted_tokens.push(Deleted {
                account: Some(self.accounts[at].prefix.clone()),
                token,
                cycle,
            });
        }
        Ok(())
    }

    fn delete_operator_token(
        &mut self,
        addr: &str,
        admin: &str,
        which: usize,
        cycle: usize,
    ) -> Result<(), ()> {
        let token = self.operator_tokens.swap_remove(which);
        let body = json!({"name": token.name}).to_string();
        if self
            .send(addr, ("DELETE", "/_/token"), admin, &body, 200)?
            .is_some()
        {
            self.ack();
            self.deleted_tokens.push(Deleted {
                account: None,
                token,
                cycle,
            });
        }
        Ok(())
    }

    fn delete_account(
        &mut self,
        addr: &str,
        admin: &str,
        at: usize,
        cycle: usize,
    ) -> Result<(), ()> {
        let account = self.accounts.swap_remove(at);
        let body = json!({"prefix": account.prefix}).to_string();
        if self
            .send(addr, ("DELETE", "/_/account"), admin, &body, 200)?
            .is_some()
        {
            self.ack();
            for token in std::iter::once(account.first).chain(account.tokens) {
                self.deleted_tokens.push(Deleted {
                    account: Some(account.prefix.clone()),
                    token,
                    cycle,
                });
            }
            self.deleted_accounts.push(account.prefix);
        }
        Ok(())
    }
}

/// Writes until told to stop or until the server stops answering; reports each
/// acknowledged write on `acks`.
#[allow(clippy::too_many_arguments)]
fn write_until_killed(
    mut writer: Writer,
    addr: &str,
    admin: &str,
    cycle: usize,
    mut rng: Rng,
    start: &Barrier,
    stop: &AtomicBool,
    acks: mpsc::Sender<()>,
) -> Writer {
    writer.acknowledged_this_cycle = 0;
    start.wait();
    let limit = Instant::now() + WRITER_LIMIT;
    while !stop.load(Ordering::Acquire) && Instant::now() < limit {
        let before = writer.acknowledged_this_cycle;
        let step = writer.step(addr, admin, cycle, &mut rng);
        for _ in before..writer.acknowledged_this_cycle {
            // The receiver is gone once the kill came: nothing left to report to.
            let _ = acks.send(());
        }
        if let Step::Stop = step {
            break;
        }
    }
    writer
}

// ---- verification -------------------------------------------------------------------

/// `GET path` with `token`; a complete answer or a panic (the server is up: no answer
/// is a failure of its own, not a lost write).
fn get(addr: &str, path: &str, token: &str) -> (u16, String) {
    call(addr, "GET", path, Some(token), "")
        .unwrap_or_else(|e| panic!("GET {path} after the restart got no answer: {e}"))
}

/// Names listed under `field` of `key` in the `200` JSON answers to `GET path`, every
/// page of it (lists are paged: follow `next_cursor`).
fn listed(addr: &str, path: &str, token: &str, key: &str, field: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = format!("{path}?limit=1000&cursor={cursor}");
        let (status, body) = get(addr, &page, token);
        assert_eq!(status, 200, "GET {page}: {body}");
        let value = parse_json(&body).unwrap_or_else(|| panic!("GET {page}: not JSON: {body}"));
        let items = value[key]
            .as_array()
            .unwrap_or_else(|| panic!("GET {page}: no `{key}` list in {body}"));
        names.extend(
            items
                .iter()
                .filter_map(|item| item[field].as_str().map(str::to_owned)),
        );
        match value["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return names,
        }
    }
}

/// A lost acknowledged write: which write, and how the restarted server showed it.
struct Lost {
    write: String,
    symptom: String,
}

fn lost(write: String, symptom: impl Into<String>) -> Lost {
    Lost {
        write,
        symptom: symptom.into(),
    }
}

/// What the restarted server must show for one writer's ledger. `full`: check that
/// every live token authenticates, not only those of this cycle.
fn verify_writer(
    addr: &str,
    admin: &str,
    writer: &Writer,
    listed_accounts: &HashSet<String>,
    listed_operator_tokens: &HashSet<String>,
    cycle: usize,
    full: bool,
) -> (usize, Vec<Lost>) {
    let mut checks = 0;
    let mut missing = Vec::new();
    for account in &writer.accounts {
        let write = || {
            format!(
                "account {} (created in cycle {})",
                account.prefix, account.first.cycle
            )
        };
        checks += 1;
        if !listed_accounts.contains(&account.prefix) {
            missing.push(lost(write(), "not listed by GET /_/account"));
            continue;
        }
        checks += 1;
        let (status, body) = get(addr, "/v1/account/tokens", &account.first.secret);
        if status != 200 {
            missing.push(lost(
                write(),
                format!("its first token gets {status} {body}"),
            ));
            continue;
        }
        let names: HashSet<String> = parse_json(&body)
            .and_then(|v| v["tokens"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        for token in &account.tokens {
            let write = || {
                format!(
                    "token {} of account {} (created in cycle {})",
                    token.name, account.prefix, token.cycle
                )
            };
            checks += 1;
            if !names.contains(&token.name) {
                missing.push(lost(write(), "not listed by GET /v1/account/tokens"));
            }
            if full || token.cycle == cycle {
                checks += 1;
                let (status, body) = get(addr, "/v1/account", &token.secret);
                if status != 200 {
                    missing.push(lost(write(), format!("GET /v1/account: {status} {body}")));
                }
            }
        }
        for deleted in &writer.deleted_tokens {
            if deleted.account.as_deref() == Some(account.prefix.as_str()) {
                checks += 1;
                if names.contains(&deleted.token.name) {
                    missing.push(lost(
                        format!(
                            "deletion of token {} of account {} (cycle {})",
                            deleted.token.name, account.prefix, deleted.cycle
                        ),
                        "listed again by GET /v1/account/tokens",
                    ));
                }
            }
        }
    }
    for prefix in &writer.deleted_accounts {
        checks += 1;
        if listed_accounts.contains(prefix) {
            missing.push(lost(
                format!("deletion of account {prefix}"),
                "listed again by GET /_/account",
            ));
        }
    }
    for token in &writer.operator_tokens {
        let write = || {
            format!(
                "operator token {} (created in cycle {})",
                token.name, token.cycle
            )
        };
        checks += 1;
        if !listed_operator_tokens.contains(&token.name) {
            missing.push(lost(write(), "not listed by GET /_/token"));
            continue;
        }
        if full || token.cycle == cycle {
            checks += 2;
            let (status, body) = get(addr, "/_/token", &token.secret);
            if status != 200 {
                missing.push(lost(write(), format!("GET /_/token: {status} {body}")));
            }
            let path = format!("/_/token/value?name={}", token.name);
            let (status, body) = get(addr, &path, admin);
            let value =
                parse_json(&body).and_then(|v| v["data"][0]["token"].as_str().map(str::to_owned));
            if status != 200 || value.as_deref() != Some(token.secret.as_str()) {
                missing.push(lost(write(), format!("reads back as {status} {body}")));
            }
        }
    }
    for deleted in writer.deleted_tokens.iter().filter(|d| d.account.is_none()) {
        checks += 1;
        if listed_operator_tokens.contains(&deleted.token.name) {
            missing.push(lost(
                format!(
                    "deletion of operator token {} (cycle {})",
                    deleted.token.name, deleted.cycle
                ),
                "listed again by GET /_/token",
            ));
        }
    }
    (checks, missing)
}

/// Checks every writer's ledger against the restarted server; returns (checks, lost).
fn verify(
    server: &ServeProcess,
    admin: &str,
    writers: &[Writer],
    cycle: usize,
    full: bool,
) -> (usize, Vec<Lost>) {
    let addr = server.addr.as_str();
    let accounts = listed(addr, "/_/account", admin, "data", "prefix");
    let operator_tokens = listed(addr, "/_/token", admin, "data", "name");
    let (mut checks, mut missing) = std::thread::scope(|scope| {
        let tasks: Vec<_> = writers
            .iter()
            .map(|writer| {
                let (accounts, operator_tokens) = (&accounts, &operator_tokens);
                scope.spawn(move || {
                    verify_writer(addr, admin, writer, accounts, operator_tokens, cycle, full)
                })
            })
            .collect();
        tasks
            .into_iter()
            .map(|task| task.join().expect("verifier thread"))
            .fold((0, Vec::new()), |(n, mut all), (m, missing)| {
                all.extend(missing);
                (n + m, all)
            })
    });
    // Deleted tokens must not authenticate; a bounded sample, most recent first.
    let mut deleted: Vec<&Deleted> = writers.iter().flat_map(|w| &w.deleted_tokens).collect();
    deleted.sort_by_key(|d| std::cmp::Reverse(d.cycle));
    for d in deleted.into_iter().take(DELETED_AUTH_CHECKS) {
        checks += 1;
        let path = if d.account.is_some() {
            "/v1/account"
        } else {
            "/_/token"
        };
        let (status, body) = get(addr, path, &d.token.secret);
        if status != 401 {
            missing.push(lost(
                format!(
                    "deletion of token {} of {} (cycle {})",
                    d.token.name,
                    d.account.as_deref().unwrap_or("the operators"),
                    d.cycle
                ),
                format!("GET {path} with it: {status} instead of 401 {body}"),
            ));
        }
    }
    (checks, missing)
}

/// Starts the server on `data`; `Err` with the log when the store does not open.
fn reopen(data: &Path) -> Result<ServeProcess, String> {
    let started = std::panic::catch_unwind(|| ServeProcess::start(data, LOG_LEVEL, &[]));
    let log = || std::fs::read_to_string(data.with_extension("serve.log")).unwrap_or_default();
    let server = started.map_err(|_| format!("the server did not start; log:\n{}", log()))?;
    match call(&server.addr, "GET", "/healthz", None, "") {
        Ok((200, _)) => Ok(server),
        other => Err(format!(
            "GET /healthz after the restart: {other:?}; log:\n{}",
            server.kill9()
        )),
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_at_any_moment() {
    let cycles: usize = env_number("UPKEEP_CRASH_CYCLES").unwrap_or(DEFAULT_CYCLES);
    let seed: u64 = env_number("UPKEEP_CRASH_SEED").unwrap_or_else(fresh_seed);
    println!(
        "crash: {cycles} cycles, {WRITERS} writers, kill after {}–{} acknowledged writes; \
         seed {seed} (replay the kill points with UPKEEP_CRASH_SEED={seed})",
        KILL_AFTER_ACKS.0, KILL_AFTER_ACKS.1
    );
    let began = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    crate::support::upkeep_init(&data);
    let admin = cli_json(&upkeep_cli(
        &data,
        &["--json", "operator-token", "create", "--name", "admin"],
    ))["token"]
        .as_str()
        .expect("operator token")
        .to_owned();

    let mut rng = Rng(seed);
    let mut writers: Vec<Writer> = (0..WRITERS).map(Writer::new).collect();
    // Each lost write once, with the first restart that showed it.
    let mut lost: BTreeMap<String, String> = BTreeMap::new();
    let mut reopen_failures: Vec<String> = Vec::new();
    let mut checks = 0;
    let mut server = Some(reopen(&data).expect("the first start"));
    let mut done = 0;
    for cycle in 1..=cycles {
        let Some(running) = server.take() else { break };
        let kill_after = KILL_AFTER_ACKS.0 + rng.below(KILL_AFTER_ACKS.1 - KILL_AFTER_ACKS.0 + 1);
        let start = Arc::new(Barrier::new(WRITERS + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let (acks, acked_writes) = mpsc::channel();
        let tasks: Vec<_> = writers
            .drain(..)
            .map(|writer| {
                let (addr, admin) = (running.addr.clone(), admin.clone());
                let (start, stop, acks) = (start.clone(), stop.clone(), acks.clone());
                let writer_rng = Rng(rng.next());
                std::thread::spawn(move || {
                    write_until_killed(
                        writer, &addr, &admin, cycle, writer_rng, &start, &stop, acks,
                    )
                })
            })
            .collect();
        drop(acks);
        start.wait();
        let began_cycle = Instant::now();
        let seen = await_acks(&acked_writes, kill_after);
        let killed_in = began_cycle.elapsed();
        running.kill9();
        stop.store(true, Ordering::Release);
        writers = tasks
            .into_iter()
            .map(|task| task.join().expect("writer thread"))
            .collect();
        done = cycle;
        let acked: u64 = writers.iter().map(|w| w.acknowledged_this_cycle).sum();
        let cut: u64 = writers.iter().map(|w| w.unanswered).sum();
        // The kill came after (at least) the writes it waited for: each cycle checks some.
        assert!(
            seen == kill_after && acked >= kill_after,
            "cycle {cycle}: the writers stopped after {seen} of {kill_after} acknowledged \
             writes, before the kill ({acked} counted)"
        );
        match reopen(&data) {
            Ok(restarted) => {
                let (n, missing) = verify(&restarted, &admin, &writers, cycle, cycle == cycles);
                let now_lost = missing.len();
                for Lost { write, symptom } in missing {
                    lost.entry(write)
                        .or_insert_with(|| format!("after the kill of cycle {cycle}: {symptom}"));
                }
                println!(
                    "cycle {cycle}/{cycles}: killed after {kill_after} acknowledged writes \
                     ({} ms in); {acked} writes acknowledged ({cut} requests cut so far); \
                     {n} checks after the restart, {now_lost} failed",
                    killed_in.as_millis(),
                );
                checks += n;
                server = Some(restarted);
            }
            Err(why) => {
                println!(
                    "cycle {cycle}/{cycles}: killed after {kill_after} acknowledged writes \
                     ({} ms in); the store did not reopen",
                    killed_in.as_millis()
                );
                reopen_failures.push(format!("cycle {cycle}: {why}"));
            }
        }
    }
    if let Some(server) = server {
        server.stop();
        // The CLI opens the store directly, too, and sees every live account.
        let listed = cli_json(&upkeep_cli(&data, &["--json", "account", "list"]));
        let prefixes: HashSet<&str> = listed["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .filter_map(|a| a["prefix"].as_str())
            .collect();
        for account in writers.iter().flat_map(|w| &w.accounts) {
            checks += 1;
            if !prefixes.contains(account.prefix.as_str()) {
                lost.entry(format!("account {}", account.prefix))
                    .or_insert_with(|| {
                        "after a clean stop: not in `upkeep account list`".to_owned()
                    });
            }
        }
    }

    let acknowledged: u64 = writers.iter().map(|w| w.acknowledged).sum();
    let unanswered: u64 = writers.iter().map(|w| w.unanswered).sum();
    let unexpected: Vec<&String> = writers.iter().flat_map(|w| &w.unexpected).collect();
    println!(
        "crash summary: cycles={done} acknowledged={acknowledged} unanswered={unanswered} \
         checks={checks} lost={} reopen_failures={} unexpected={} seed={seed} time={:.1}s",
        lost.len(),
        reopen_failures.len(),
        unexpected.len(),
        began.elapsed().as_secs_f64()
    );
    let failed = !lost.is_empty() || !reopen_failures.is_empty() || !unexpected.is_empty();
    if failed {
        println!(
            "data directory kept for inspection: {}",
            dir.keep().display()
        );
    }
    assert!(
        reopen_failures.is_empty(),
        "the store did not reopen after kill -9 (seed {seed}):\n{}",
        reopen_failures.join("\n")
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost after kill -9 (seed {seed}):\n{}",
        lost.len(),
        lost.iter()
            .map(|(write, symptom)| format!("{write}: {symptom}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        unexpected.is_empty(),
        "{} writes got an unexpected answer (seed {seed}):\n{}",
        unexpected.len(),
        unexpected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        acknowledged > 0 && done == cycles,
        "the harness wrote nothing ({acknowledged} acknowledged in {done} of {cycles} cycles)"
    );
}
