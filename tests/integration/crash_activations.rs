//! Crash safety of activations (SPEC §9 *Activation*): a `kill -9` at any moment of
//! concurrent activations and deactivations loses no acknowledged activation, brings back
//! no acknowledged deactivation, and counts no slot twice.
//!
//! One data directory lives through every cycle: an account, a product licensed with
//! `download_keys`, a customer and [`LIMITS`]`.len()` keys (some unlimited, some with a
//! small limit, so concurrent writers race for the last slot). Each cycle runs the real
//! `upkeep serve` and 4–8 writer threads that call the public UpdaterCloud routes without
//! pause, over plain HTTP/1.1, each on production sites of its own
//! (`site<writer>-<n>.example.org`, counted against the limit):
//!
//! - `activate?download_key=K&domain=D` on a new site of a random key (a limited key that is
//!   full answers `activated: false`, `activation_limit_reached`: nothing written);
//! - `deactivate?download_key=K&domain=D` on one of the writer's acknowledged sites;
//! - `activate` again on an acknowledged site: the same activation, no new slot.
//!
//! The kill (`SIGKILL`) comes after a random number of acknowledged activations and
//! deactivations of the cycle (1–[`MAX_ACKS_BEFORE_KILL`]) and then a random number of
//! further requests sent (0–[`MAX_SENT_AFTER_ACKS`]), so it lands while requests are in
//! flight. No sleeps: the writers report each acknowledgment and each request sent over a
//! channel, and the kill waits on that (with a deadline). After the restart on the same
//! directory, from the admin API (`GET /api/v1/download-keys/{id}`, its `/activations`,
//! `GET /v1/account`):
//!
//! - every activation acknowledged (`200`, `activated: true`) is listed on its key with the
//!   id it was acknowledged with; every site whose deactivation was acknowledged, or whose
//!   activation was refused, is not; a site whose request got no answer may be either (and
//!   is settled by what the restart shows);
//! - no site is listed twice for a key, and no site is listed that no writer asked for;
//! - per key, `activations.usage` equals the number of counted activations listed and never
//!   exceeds a non-zero limit; the account's `activationUsage` is the sum over its keys.
//!
//! What it catches: an acknowledgment before the commit is durable (group commit answering
//! early, or an activation written outside the batch) shows as an acknowledged site missing
//! after the kill; a deactivation acknowledged but not durable as a site back from the
//! dead; the key's `counted` or the account's usage kept apart from the activations (a
//! separate write, or a counter rebuilt wrongly at start-up) as a usage that does not match
//! the list; two concurrent activations both taking a key's last slot, as usage over the
//! limit; a re-activation after the restart that makes a second record, as a site listed
//! twice or with a new id. Tried once: with `service::write` not waiting for the commit
//! to be durable (`store.wait_durable(ticket)` removed), the first cycle failed with
//! "acknowledged activation … of site1-1.example.org (key …) is gone".
//!
//! Cycles: 30 by default (`UPKEEP_ACTIVATION_CRASH_CYCLES`); the seed is printed first and
//! `UPKEEP_ACTIVATION_CRASH_SEED=<seed>` replays the same kill points and choices (thread
//! timing still varies):
//!
//! ```text
//! UPKEEP_ACTIVATION_CRASH_CYCLES=50 cargo test --test integration crash_activations -- --nocapture
//! ```

use crate::crash::{Rng, env_number, fresh_seed};
use crate::support::{ServeProcess, cli_json, upkeep_cli, upkeep_init};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const DEFAULT_CYCLES: usize = 30;
/// Writer threads per cycle: between these two (inclusive).
const WRITERS: (usize, usize) = (4, 8);
/// The keys' `activation_limit`s (0 = unlimited).
const LIMITS: [u32; 5] = [0, 3, 0, 3, 1];
/// The kill waits for between 1 and this many acknowledged activations and deactivations
/// of the cycle…
const MAX_ACKS_BEFORE_KILL: u64 = 40;
/// …and then for between 0 and this many more requests sent by the writers.
const MAX_SENT_AFTER_ACKS: u64 = 8;
/// The events a kill waits for must come within this (else the server is stuck).
const EVENT_DEADLINE: Duration = Duration::from_secs(30);
/// A writer stops after this long even if no kill came (a bug in the harness).
const WRITER_LIMIT: Duration = Duration::from_secs(40);
const LOG_LEVEL: &str = "warn,upkeep=info,upkeep::app=warn";
/// No per-key daily activation limit and no monthly deactivation budget (the writers make
/// far more than a holder would), no account pool: only the keys' own limits refuse.
const SERVE_ARGS: &[&str] = &[
    "--max-activations-per-day",
    "0",
    "--max-deactivations-per-month",
    "0",
    "--default-activation-limit",
    "0",
];

// ---- HTTP ---------------------------------------------------------------------------

/// What a writer tells the killer.
enum Event {
    /// An activation or a deactivation was acknowledged (`200` with `true`).
    Ack,
    /// A request was written whole.
    Sent,
}

/// How a request ended.
enum Answer {
    /// A complete response: status and JSON body (`Null` if it was not JSON).
    Complete(u16, Value, String),
    /// Not connected, or the request was not written whole: the server cannot have acted.
    NotSent(String),
    /// Written whole, no complete answer (the kill): the server may have acted.
    CutOff(String),
}

/// One HTTP/1.1 request (`connection: close`), with a Bearer token if given; `sent` is
/// told when the request is written whole.
fn request(
    addr: &str,
    (method, path): (&str, &str),
    token: Option<&str>,
    body: &str,
    sent: Option<&mpsc::Sender<Event>>,
) -> Answer {
    let mut stream = match TcpStream::connect(addr) {
        Ok(stream) => stream,
        Err(e) => return Answer::NotSent(format!("connect: {e}")),
    };
    if let Err(e) = stream.set_read_timeout(Some(Duration::from_secs(30))) {
        return Answer::NotSent(format!("timeout: {e}"));
    }
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let content_type = if body.is_empty() {
        ""
    } else {
        "content-type: application/json\r\n"
    };
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}{content_type}content-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = stream.write_all(raw.as_bytes()) {
        return Answer::NotSent(format!("write: {e}"));
    }
    if let Some(sent) = sent {
        let _ = sent.send(Event::Sent);
    }
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    match parse_response(&raw) {
        Ok((status, text)) => Answer::Complete(
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        ),
        Err(why) => Answer::CutOff(format!("{why}; read: {:?}", read.err())),
    }
}

/// Status and body of a complete response (the whole `content-length` body).
fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete response head ({} bytes)", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let body = &raw[end + 4..];
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
        Some(n) if n == body.len() => Ok((status, String::from_utf8_lossy(body).into_owned())),
        Some(n) => Err(format!("truncated body: {} of {n} bytes", body.len())),
        None => Err(format!("no content-length in {head:?}")),
    }
}

/// A request that must succeed with `status` (the server is up and idle): its JSON.
#[track_caller]
fn must(addr: &str, method: &str, path: &str, token: &str, body: &str, status: u16) -> Value {
    match request(addr, (method, path), Some(token), body, None) {
        Answer::Complete(got, json, text) => {
            assert_eq!(got, status, "{method} {path}: {text}");
            json
        }
        Answer::NotSent(why) | Answer::CutOff(why) => panic!("{method} {path}: {why}"),
    }
}

/// Every item of a paged list (`?limit=1000`, following `next_cursor`).
fn list_all(addr: &str, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            None => format!("{path}?limit=1000"),
            Some(c) => format!("{path}?limit=1000&cursor={c}"),
        };
        let page = must(addr, "GET", &page, token, "", 200);
        items.extend(page["data"].as_array().expect("data array").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

// ---- the ledger ---------------------------------------------------------------------

/// A download key of the shop.
#[derive(Clone)]
struct Key {
    id: u64,
    value: String,
    limit: u32,
}

/// What the store must hold for one site, after what the writer was told.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Activation acknowledged with this activation id: must be listed, with that id.
    Active(u64),
    /// Deactivation acknowledged, or activation refused: must not be listed.
    Gone,
    /// Activation sent, no answer: either; settled by the next check.
    MaybeActive,
    /// Deactivation of `Active(id)` sent, no answer: either; settled by the next check.
    MaybeGone(u64),
}

#[derive(Debug)]
struct Site {
    /// Index into the keys.
    key: usize,
    state: State,
}

/// One writer's view over every cycle: its sites and what it was told about them.
struct Writer {
    id: usize,
    next: u64,
    sites: BTreeMap<String, Site>,
    activated: u64,
    deactivated: u64,
    refused: u64,
    reactivated: u64,
    /// Requests written whole that got no answer (cut off by the kill).
    cut_off: u64,
    /// Complete answers that are not what the ledger allows: every one is a bug.
    unexpected: Vec<String>,
    /// Why the last request got no answer (for a stuck cycle's report).
    last_error: String,
}

impl Writer {
    fn new(id: usize) -> Writer {
        Writer {
            id,
            next: 0,
            sites: BTreeMap::new(),
            activated: 0,
            deactivated: 0,
            refused: 0,
            reactivated: 0,
            cut_off: 0,
            unexpected: Vec::new(),
            last_error: String::new(),
        }
    }

    /// Writes until a request gets no answer (the kill) or `stop`.
    fn run(
        &mut self,
        addr: &str,
        product: u64,
        keys: &[Key],
        rng: &mut Rng,
        events: &mpsc::Sender<Event>,
        stop: &AtomicBool,
    ) {
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < WRITER_LIMIT {
            if self.step(addr, product, keys, rng, events).is_err() {
                return;
            }
        }
    }

    /// One call: a deactivation 25%, a re-activation 15% (of an acknowledged site; a new
    /// activation while there is none), a new activation otherwise.
    fn step(
        &mut self,
        addr: &str,
        product: u64,
        keys: &[Key],
        rng: &mut Rng,
        events: &mpsc::Sender<Event>,
    ) -> Result<(), ()> {
        let active: Vec<(String, usize, u64)> = self
            .sites
            .iter()
            .filter_map(|(name, site)| match site.state {
                State::Active(id) => Some((name.clone(), site.key, id)),
                _ => None,
            })
            .collect();
        let roll = rng.below(100);
        let (name, key, kind) = if roll < 40 && !active.is_empty() {
            let (name, key, id) = active[rng.pick(active.len())].clone();
            (name, key, if roll < 25 { Some(id) } else { None })
        } else {
            let name = format!("site{}-{}.example.org", self.id, self.next);
            self.next += 1;
            let key = rng.pick(keys.len());
            self.sites.insert(
                name.clone(),
                Site {
                    key,
                    state: State::MaybeActive,
                },
            );
            (name, key, None)
        };
        let deactivating = kind.is_some();
        let reactivating = !deactivating && self.sites[&name].state != State::MaybeActive;
        if let Some(id) = kind {
            self.sites.get_mut(&name).unwrap().state = State::MaybeGone(id);
        }
        let action = if deactivating {
            "deactivate"
        } else {
            "activate"
        };
        let path = format!(
            "/api/v1/products/{product}/download-keys/{action}?download_key={}&domain={name}",
            keys[key].value
        );
        let (status, body, text) = match request(addr, ("GET", &path), None, "", Some(events)) {
            Answer::Complete(status, body, text) => (status, body, text),
            Answer::CutOff(why) => {
                self.cut_off += 1;
                self.last_error = why;
                return Err(());
            }
            Answer::NotSent(why) => {
                // The server never saw it: nothing changed.
                let site = self.sites.get_mut(&name).unwrap();
                site.state = match site.state {
                    State::MaybeActive => State::Gone,
                    State::MaybeGone(id) => State::Active(id),
                    other => other,
                };
                self.last_error = why;
                return Err(());
            }
        };
        let site = self.sites.get_mut(&name).unwrap();
        let limit = keys[key].limit;
        let activation_id = body["activation"]["id"].as_u64();
        if status != 200 {
            self.unexpected
                .push(format!("{action} {name}: {status} {text}"));
            return Ok(());
        }
        if deactivating {
            if body["deactivated"] == true {
                site.state = State::Gone;
                self.deactivated += 1;
                let _ = events.send(Event::Ack);
            } else {
                // The writer deactivates only sites whose activation was acknowledged.
                self.unexpected.push(format!(
                    "deactivate {name} (acknowledged {:?}): {text}",
                    site.state
                ));
            }
        } else if body["activated"] == true
            && body["activation"]["domain"] == name.as_str()
            && body["activation"]["counts"] == true
            && let Some(id) = activation_id
        {
            if reactivating {
                // An active site: the same activation, no new slot.
                if site.state != State::Active(id) {
                    self.unexpected.push(format!(
                        "activate {name} again (acknowledged {:?}): {text}",
                        site.state
                    ));
                }
                self.reactivated += 1;
            } else {
                site.state = State::Active(id);
                self.activated += 1;
                let _ = events.send(Event::Ack);
            }
        } else if !reactivating
            && body["activated"] == false
            && body["code"] == "activation_limit_reached"
            && limit != 0
        {
            site.state = State::Gone;
            self.refused += 1;
        } else {
            self.unexpected
                .push(format!("{action} {name} (key limit {limit}): {text}"));
        }
        Ok(())
    }
}

// ---- checks -------------------------------------------------------------------------

/// What the restarted server shows, and how the requests the kill cut off came out.
struct Shown {
    listed: usize,
    counted: u64,
    /// Cut-off requests that took effect (committed, then killed before the answer)…
    took_effect: u64,
    /// …and that did not.
    did_not: u64,
}

fn verify(addr: &str, token: &str, keys: &[Key], writers: &mut [Writer]) -> Shown {
    let (mut took_effect, mut did_not) = (0, 0);
    let mut failures = Vec::new();
    // Per key: site → (activation id, counts).
    let mut listed: Vec<BTreeMap<String, u64>> = Vec::new();
    let mut usage_sum = 0;
    let mut total = 0;
    for key in keys {
        let view = &must(
            addr,
            "GET",
            &format!("/api/v1/download-keys/{}", key.id),
            token,
            "",
            200,
        )["data"];
        let usage = view["activations"]["usage"].as_u64().expect("usage");
        let limit = view["activations"]["limit"].as_u64().expect("limit");
        let activations = list_all(
            addr,
            &format!("/api/v1/download-keys/{}/activations", key.id),
            token,
        );
        total += activations.len();
        let mut sites = BTreeMap::new();
        let mut counted = 0;
        for activation in &activations {
            let site = activation["site"].as_str().expect("site").to_owned();
            let id = activation["id"].as_u64().expect("activation id");
            if activation["counts"] == true {
                counted += 1;
            }
            if let Some(other) = sites.insert(site.clone(), id) {
                failures.push(format!(
                    "key {}: {site} listed twice (activations {other} and {id})",
                    key.id
                ));
            }
        }
        if usage != counted {
            failures.push(format!(
                "key {}: activations.usage {usage}, {counted} counted activations listed",
                key.id
            ));
        }
        if limit != u64::from(key.limit) {
            failures.push(format!("key {}: limit {limit}, made {}", key.id, key.limit));
        }
        if limit != 0 && usage > limit {
            failures.push(format!(
                "key {}: usage {usage} over its limit {limit}",
                key.id
            ));
        }
        usage_sum += usage;
        listed.push(sites);
    }
    let account = must(addr, "GET", "/v1/account", token, "", 200);
    let account_usage = account["account"]["activationUsage"]
        .as_u64()
        .expect("activationUsage");
    if account_usage != usage_sum {
        failures.push(format!(
            "the account's activationUsage is {account_usage}, its keys' usage sums to {usage_sum}"
        ));
    }
    // The ledgers against the lists; settle what the kill cut off.
    for writer in writers.iter_mut() {
        for (name, site) in &mut writer.sites {
            let here = listed[site.key].remove(name);
            site.state = match (site.state, here) {
                (State::Active(id), Some(got)) | (State::MaybeGone(id), Some(got)) => {
                    if got != id {
                        failures.push(format!(
                            "{name}: listed as activation {got}, acknowledged as {id}"
                        ));
                    }
                    if matches!(site.state, State::MaybeGone(_)) {
                        did_not += 1;
                    }
                    State::Active(got)
                }
                (State::Active(id), None) => {
                    failures.push(format!(
                        "acknowledged activation {id} of {name} (key {}) is gone",
                        keys[site.key].id
                    ));
                    State::Gone
                }
                (State::Gone, Some(got)) => {
                    failures.push(format!(
                        "{name} (key {}): deactivation acknowledged or activation refused, \
                         listed as activation {got}",
                        keys[site.key].id
                    ));
                    State::Active(got)
                }
                (State::MaybeActive, Some(got)) => {
                    took_effect += 1;
                    State::Active(got)
                }
                (State::MaybeActive, None) => {
                    did_not += 1;
                    State::Gone
                }
                (State::MaybeGone(_), None) => {
                    took_effect += 1;
                    State::Gone
                }
                (State::Gone, None) => State::Gone,
            };
        }
    }
    // Whatever is left was asked for by no writer (or on another key).
    for (key, rest) in keys.iter().zip(&listed) {
        for (name, id) in rest {
            failures.push(format!(
                "key {}: {name} listed (activation {id}), no writer activated it there",
                key.id
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    Shown {
        listed: total,
        counted: usage_sum,
        took_effect,
        did_not,
    }
}

// ---- the test -----------------------------------------------------------------------

#[test]
fn kill_9_during_concurrent_activations_loses_no_acknowledged_activation_and_counts_no_slot_twice()
{
    let seed = env_number("UPKEEP_ACTIVATION_CRASH_SEED").unwrap_or_else(fresh_seed);
    let cycles = env_number("UPKEEP_ACTIVATION_CRASH_CYCLES").unwrap_or(DEFAULT_CYCLES);
    println!("activation crash test: seed {seed}, {cycles} cycles");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    upkeep_init(&data);
    cli_json(&upkeep_cli(
        &data,
        &[
            "--json",
            "account",
            "create",
            "--name",
            "Crash Vendor",
            "--email",
            "crash@example.com",
            "--prefix",
            "crash",
        ],
    ));
    let token = cli_json(&upkeep_cli(
        &data,
        &[
            "--json",
            "token",
            "create",
            "--account",
            "crash",
            "--name",
            "licensing",
            "--scopes",
            "api",
        ],
    ))["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let mut server = ServeProcess::start(&data, LOG_LEVEL, SERVE_ARGS);
    let addr = server.addr.clone();
    let product = must(
        &addr,
        "POST",
        "/api/v1/products",
        &token,
        r#"{"slug":"crash-licensed","name":"Crash Licensed","license":"download_keys"}"#,
        201,
    )["data"]["id"]
        .as_u64()
        .expect("product id");
    let customer = must(
        &addr,
        "POST",
        "/api/v1/customers",
        &token,
        r#"{"name":"Ada Lovelace","email":"ada@example.com"}"#,
        201,
    )["data"]["id"]
        .as_u64()
        .expect("customer id");
    let keys: Arc<Vec<Key>> = Arc::new(
        LIMITS
            .iter()
            .map(|&limit| {
                let body = format!(
                    r#"{{"customer_id":{customer},"product_ids":[{product}],"activation_limit":{limit}}}"#
                );
                let made = &must(&addr, "POST", "/api/v1/download-keys", &token, &body, 201)["data"];
                Key {
                    id: made["id"].as_u64().expect("key id"),
                    value: made["key"].as_str().expect("key").to_owned(),
                    limit,
                }
            })
            .collect(),
    );
    let mut writers: Vec<Writer> = (0..WRITERS.1).map(Writer::new).collect();

    let started = Instant::now();
    let mut cut_off_total = 0;
    let mut took_effect = 0;
    for cycle in 0..cycles {
        let running = WRITERS.0 + rng.pick(WRITERS.1 - WRITERS.0 + 1);
        let acks_before_kill = 1 + rng.below(MAX_ACKS_BEFORE_KILL);
        let sent_after_acks = rng.below(MAX_SENT_AFTER_ACKS + 1);
        let (events, received) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let addr = server.addr.clone();
        let idle = writers.split_off(running);
        let handles: Vec<_> = writers
            .drain(..)
            .map(|mut writer| {
                let (addr, keys, events, stop) =
                    (addr.clone(), keys.clone(), events.clone(), stop.clone());
                let mut writer_rng = Rng(rng.next());
                std::thread::spawn(move || {
                    writer.run(&addr, product, &keys, &mut writer_rng, &events, &stop);
                    writer
                })
            })
            .collect();
        drop(events);
        // Wait for the kill point: N acknowledgments, then M more requests sent.
        let (mut acks, mut sent) = (0, 0);
        while acks < acks_before_kill || sent < sent_after_acks {
            match received.recv_timeout(EVENT_DEADLINE) {
                Ok(Event::Ack) => acks += 1,
                Ok(Event::Sent) if acks >= acks_before_kill => sent += 1,
                Ok(Event::Sent) => {}
                Err(why) => {
                    let log = server.kill9();
                    stop.store(true, Ordering::SeqCst);
                    let errors: Vec<String> = handles
                        .into_iter()
                        .map(|h| h.join().expect("writer thread").last_error)
                        .collect();
                    panic!(
                        "cycle {cycle}: waiting for {acks_before_kill} acks (+{sent_after_acks} \
                         requests), got {acks} (+{sent}): {why:?}; the writers' last errors: \
                         {errors:#?}\nserver log:\n{log}"
                    )
                }
            }
        }
        let log = server.kill9();
        stop.store(true, Ordering::SeqCst);
        writers = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect();
        writers.extend(idle);
        let unexpected: Vec<&String> = writers.iter().flat_map(|w| &w.unexpected).collect();
        assert!(
            unexpected.is_empty(),
            "cycle {cycle}: unexpected answers:\n{unexpected:#?}\nserver log:\n{log}"
        );
        let cut_off: u64 = writers.iter().map(|w| w.cut_off).sum::<u64>() - cut_off_total;
        cut_off_total += cut_off;

        server = ServeProcess::start(&data, LOG_LEVEL, SERVE_ARGS);
        let shown = verify(&server.addr, &token, &keys, &mut writers);
        took_effect += shown.took_effect;
        println!(
            "cycle {cycle}: {running} writers, killed after {acks_before_kill} acks + {sent} \
             requests, {cut_off} cut off ({} took effect, {} did not); then {} activations \
             listed, {} counted, as acknowledged ({:.1} s)",
            shown.took_effect,
            shown.did_not,
            shown.listed,
            shown.counted,
            started.elapsed().as_secs_f64()
        );
    }
    let sum = |f: fn(&Writer) -> u64| writers.iter().map(f).sum::<u64>();
    let (activated, deactivated) = (sum(|w| w.activated), sum(|w| w.deactivated));
    let (refused, reactivated) = (sum(|w| w.refused), sum(|w| w.reactivated));
    server.stop();
    println!(
        "{cycles} kills in {:.1} s: {activated} activations and {deactivated} deactivations \
         acknowledged, {refused} refused at a key's limit, {reactivated} re-activations, \
         {cut_off_total} requests cut off ({took_effect} of them took effect)",
        started.elapsed().as_secs_f64(),
    );
    // The kill must have cut requests off, or it proved nothing about mid-flight crashes.
    assert!(
        cut_off_total >= cycles as u64,
        "only {cut_off_total} requests were cut off by {cycles} kills"
    );
    assert!(refused > 0, "no key's limit was ever reached");
}
