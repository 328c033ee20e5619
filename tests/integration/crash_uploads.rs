//! Crash safety of uploads (SPEC §7 *Blobs*, `src/store/blobs.rs` *Crash points*): a
//! `kill -9` at any moment of an upload loses no acknowledged upload, leaves no record
//! pointing at a missing blob, and (after the start-up sweep) no blob without a record
//! and nothing in `<data>/blobs/tmp/`.
//!
//! One data directory lives through every cycle. Each cycle runs the real `upkeep serve`
//! and [`WRITERS`] threads that upload without pause over plain HTTP/1.1, each request
//! body written in 64 KiB pieces:
//!
//! - `POST /api/v1/releases`, a raw plugin zip (a new product each time) padded with a
//!   stored entry of random bytes;
//! - `POST /api/v1/versions/{id}/files` to the writer's own draft version, raw
//!   (`application/octet-stream`) or `multipart/form-data`;
//! - `PUT /api/v1/files/{id}/content` on one of the writer's acknowledged draft files
//!   (the old blob loses its last reference: the crash point "durable commit, blob not yet
//!   deleted").
//!
//! Contents are random, 256 KiB – 3 MiB. The kill (`SIGKILL`) comes after a random number
//! of acknowledged uploads of the cycle (1–[`MAX_ACKS_BEFORE_KILL`]) and then a random
//! number of further request bytes written by the writers (0–4 MiB), so it lands inside
//! request bodies, between the last byte and the answer, or after a commit. No sleeps:
//! the writers report each acknowledgment and each piece written over a channel, and the
//! kill waits on that (with a deadline). After the restart on the same directory:
//!
//! - every upload acknowledged with a complete `2xx` is listed with the blake3 it was
//!   acknowledged with (a replacement whose answer was cut off may show the old or the new
//!   content, nothing else), and after the cycle its content downloads unchanged;
//! - every file listed (products → versions → files, all pages) downloads completely, with
//!   the size and blake3 its record gives: no record points at a missing or short blob;
//! - the blob files under `<data>/blobs/ab/cd/` are exactly the blake3 hashes of the listed
//!   files (no orphan, none missing), and `<data>/blobs/tmp/` is empty.
//!
//! Cycles: 20 by default (`UPKEEP_UPLOAD_CRASH_CYCLES`); the seed is printed first and
//! `UPKEEP_UPLOAD_CRASH_SEED=<seed>` replays the same kill points and contents (thread
//! timing still varies):
//!
//! ```text
//! UPKEEP_UPLOAD_CRASH_CYCLES=50 cargo test --test integration crash_uploads -- --nocapture
//! ```

use crate::crash::{Rng, env_number, fresh_seed};
use crate::support::{ServeProcess, cli_json, upkeep_cli, upkeep_init};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const DEFAULT_CYCLES: usize = 20;
/// Concurrent uploading threads per cycle.
const WRITERS: usize = 4;
/// The kill waits for between 1 and this many acknowledged uploads of the cycle…
const MAX_ACKS_BEFORE_KILL: u64 = 6;
/// …and then for between 0 and this many more request bytes written by the writers.
const MAX_BYTES_AFTER_ACKS: u64 = 4 << 20;
/// Upload sizes (bytes of random content), inclusive range.
const SIZES: (u64, u64) = (256 << 10, 3 << 20);
/// The events a kill waits for must come within this (else the server is stuck).
const EVENT_DEADLINE: Duration = Duration::from_secs(30);
/// A writer stops after this long even if no kill came (a bug in the harness).
const WRITER_LIMIT: Duration = Duration::from_secs(40);
/// Pieces in which request bodies are written (each reported to the killer).
const PIECE: usize = 64 * 1024;
const LOG_LEVEL: &str = "warn,upkeep=info,upkeep::app=warn";

// ---- HTTP ---------------------------------------------------------------------------

/// What a writer tells the killer.
enum Event {
    /// An upload was acknowledged (a complete 2xx).
    Ack,
    /// This many more request bytes were written.
    Sent(u64),
}

/// A complete response.
struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request (`connection: close`) with a Bearer token, the body written in
/// [`PIECE`]s (each reported on `progress`). `Ok` only for a complete response (status
/// line, headers and the whole `content-length` body); anything else — refused, reset,
/// cut short by the kill — is `Err`: no answer.
fn request(
    addr: &str,
    (method, path): (&str, &str),
    token: &str,
    content_type: Option<&str>,
    body: &[u8],
    progress: Option<&mpsc::Sender<Event>>,
) -> Result<Response, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| format!("timeout: {e}"))?;
    let content_type = content_type
        .map(|t| format!("content-type: {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         {content_type}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut written = stream.write_all(head.as_bytes());
    for piece in body.chunks(PIECE) {
        if written.is_err() {
            break;
        }
        written = stream.write_all(piece);
        if written.is_ok() {
            if let Some(progress) = progress {
                let _ = progress.send(Event::Sent(piece.len() as u64));
            }
        }
    }
    // A server that answers before reading the whole body (a refusal) may reset the
    // connection under the rest of it: read what it said anyway.
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    match parse_response(&raw) {
        Ok(response) => Ok(response),
        Err(why) => Err(format!(
            "{why}; write: {:?}; read: {:?}",
            written.err(),
            read.err()
        )),
    }
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
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
        Some(n) if n == body.len() => Ok(Response {
            status,
            body: body.to_vec(),
        }),
        Some(n) => Err(format!("truncated body: {} of {n} bytes", body.len())),
        None => Err(format!("no content-length in {head:?}")),
    }
}

/// A `GET` that must succeed (the server is up and idle): its JSON body.
#[track_caller]
fn get_json(addr: &str, path: &str, token: &str) -> Value {
    let response = request(addr, ("GET", path), token, None, &[], None)
        .unwrap_or_else(|why| panic!("GET {path}: {why}"));
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    response
        .json()
        .unwrap_or_else(|| panic!("GET {path}: not JSON: {}", response.text()))
}

/// Every item of a paged list (`?limit=1000`, following `next_cursor`).
fn list_all(addr: &str, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            None => get_json(addr, &format!("{path}?limit=1000"), token),
            Some(c) => get_json(addr, &format!("{path}?limit=1000&cursor={c}"), token),
        };
        items.extend(page["data"].as_array().expect("data array").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

// ---- contents -----------------------------------------------------------------------

fn random_bytes(rng: &mut Rng, len: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len as usize + 8);
    while (bytes.len() as u64) < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len as usize);
    bytes
}

fn random_size(rng: &mut Rng) -> u64 {
    SIZES.0 + rng.below(SIZES.1 - SIZES.0 + 1)
}

/// A plugin zip `slug` 1.0.0 with a stored entry of `padding` random bytes.
fn padded_plugin_zip(slug: &str, padding: &[u8]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let header = format!("<?php\n/**\n * Plugin Name: {slug}\n * Version: 1.0.0\n */\n");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file(format!("{slug}/{slug}.php"), deflated)
        .unwrap();
    w.write_all(header.as_bytes()).unwrap();
    w.start_file(format!("{slug}/readme.txt"), deflated)
        .unwrap();
    w.write_all(b"=== Padded ===\nStable tag: 1.0.0\n").unwrap();
    w.start_file(format!("{slug}/assets/padding.bin"), stored)
        .unwrap();
    w.write_all(padding).unwrap();
    w.finish().unwrap().into_inner()
}

fn multipart(boundary: &str, name: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    write!(body, "\r\n--{boundary}--\r\n").unwrap();
    body
}

fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

// ---- the ledger ---------------------------------------------------------------------

/// What the store must hold for one file whose upload was acknowledged.
#[derive(Clone, Debug)]
struct Expect {
    /// The blake3 acknowledged last; a replacement cut off by the kill may have taken
    /// effect, so its hash is allowed too until the next check settles it.
    hash: String,
    maybe: Option<String>,
    size: u64,
    maybe_size: u64,
    /// A draft file (its content may be replaced).
    draft: bool,
    /// Acknowledged in the cycle just killed (downloaded and compared by content too).
    cycle: usize,
}

/// One writer's view over every cycle: what it was told (2xx).
struct Writer {
    id: usize,
    /// Its own draft version (files are added to it and replaced).
    version: u64,
    next: u64,
    files: BTreeMap<u64, Expect>,
    acknowledged: u64,
    unanswered: u64,
    /// Complete non-2xx answers and malformed 2xx bodies: every one is a bug.
    unexpected: Vec<String>,
    /// Why the last request got no answer (for a stuck cycle's report).
    last_error: String,
    cycle_start: Instant,
}

impl Writer {
    /// Uploads until a request gets no answer (the kill) or `stop`.
    fn run(
        &mut self,
        addr: &str,
        token: &str,
        cycle: usize,
        rng: &mut Rng,
        events: &mpsc::Sender<Event>,
        stop: &AtomicBool,
    ) {
        let started = Instant::now();
        self.cycle_start = started;
        while !stop.load(Ordering::SeqCst) && started.elapsed() < WRITER_LIMIT {
            if self.step(addr, token, cycle, rng, events).is_err() {
                return;
            }
        }
    }

    /// One upload: a release 35%, a raw file 25%, a multipart file 20%, a replacement
    /// 20% (a raw file while there is no draft file to replace).
    fn step(
        &mut self,
        addr: &str,
        token: &str,
        cycle: usize,
        rng: &mut Rng,
        events: &mpsc::Sender<Event>,
    ) -> Result<(), ()> {
        self.next += 1;
        let tag = format!("c{cycle}w{}n{}", self.id, self.next);
        let size = random_size(rng);
        let content = random_bytes(rng, size);
        let roll = rng.below(100);
        let drafts: Vec<u64> = self
            .files
            .iter()
            .filter(|(_, e)| e.draft)
            .map(|(id, _)| *id)
            .collect();
        let version = self.version;
        // The content the file record must name: the zip itself for a release, the
        // random bytes otherwise (for multipart, the file part's).
        let (target, content_type, body, stored, replaced) = if roll < 35 {
            let zip = padded_plugin_zip(&tag, &content);
            let stored = (hash(&zip), zip.len() as u64);
            (
                ("POST", "/api/v1/releases".to_owned()),
                "application/zip".to_owned(),
                zip,
                stored,
                None,
            )
        } else if roll < 60 || (roll >= 80 && drafts.is_empty()) {
            let stored = (hash(&content), content.len() as u64);
            (
                (
                    "POST",
                    format!("/api/v1/versions/{version}/files?name={tag}"),
                ),
                "application/octet-stream".to_owned(),
                content,
                stored,
                None,
            )
        } else if roll < 80 {
            let boundary = format!("crash-{tag}");
            let stored = (hash(&content), content.len() as u64);
            (
                ("POST", format!("/api/v1/versions/{version}/files")),
                format!("multipart/form-data; boundary={boundary}"),
                multipart(&boundary, &tag, &content),
                stored,
                None,
            )
        } else {
            let id = drafts[rng.pick(drafts.len())];
            let stored = (hash(&content), content.len() as u64);
            (
                ("PUT", format!("/api/v1/files/{id}/content")),
                "application/octet-stream".to_owned(),
                content,
                stored,
                Some(id),
            )
        };
        let draft = roll >= 35;
        let (expected_hash, expected_size) = stored;
        let (method, path) = (target.0, target.1.as_str());
        if let Some(id) = replaced {
            // Until answered, the replacement may or may not take effect.
            let expect = self.files.get_mut(&id).expect("a draft file");
            expect.maybe = Some(expected_hash.clone());
            expect.maybe_size = expected_size;
        }
        let response = match request(
            addr,
            (method, path),
            token,
            Some(&content_type),
            &body,
            Some(events),
        ) {
            Ok(response) => response,
            Err(why) => {
                self.unanswered += 1;
                self.last_error = format!(
                    "{method} {path} ({} bytes), {:.3} s after the cycle began: {why}",
                    body.len(),
                    self.cycle_start.elapsed().as_secs_f64()
                );
                return Err(());
            }
        };
        let expected_status = if replaced.is_some() { 200 } else { 201 };
        let data = response.json().map(|v| v["data"].clone());
        if response.status != expected_status || data.is_none() {
            self.unexpected.push(format!(
                "{method} {path}: {} {}",
                response.status,
                response.text()
            ));
            if let Some(id) = replaced {
                // A refusal changes nothing.
                self.files.get_mut(&id).expect("a draft file").maybe = None;
            }
            return Ok(());
        }
        let data = data.expect("checked");
        // A release answers the version with its files; a file upload the file.
        let file = if method == "POST" && path == "/api/v1/releases" {
            data["files"][0].clone()
        } else {
            data
        };
        let (Some(id), Some(blake3), Some(size)) = (
            file["id"].as_u64(),
            file["blake3"].as_str(),
            file["size"].as_u64(),
        ) else {
            self.unexpected
                .push(format!("{method} {path}: no file id/blake3/size in {file}"));
            return Ok(());
        };
        if blake3 != expected_hash || size != expected_size {
            self.unexpected.push(format!(
                "{method} {path}: acknowledged {blake3} ({size} bytes), sent {expected_hash} \
                 ({expected_size} bytes)"
            ));
        }
        self.files.insert(
            id,
            Expect {
                hash: expected_hash,
                maybe: None,
                size: expected_size,
                maybe_size: 0,
                draft,
                cycle,
            },
        );
        self.acknowledged += 1;
        let _ = events.send(Event::Ack);
        Ok(())
    }
}

// ---- checks -------------------------------------------------------------------------

/// Every blob file name under `<data>/blobs/ab/cd/`; asserts `tmp/` is empty.
fn blob_files(data: &Path) -> BTreeSet<String> {
    let root = data.join("blobs");
    let tmp: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .expect("blobs/tmp exists")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert!(
        tmp.is_empty(),
        "blobs/tmp not empty after the restart: {tmp:?}"
    );
    let mut found = BTreeSet::new();
    for first in std::fs::read_dir(&root).expect("blobs dir").flatten() {
        if first.file_name() == "tmp" {
            continue;
        }
        for second in std::fs::read_dir(first.path())
            .expect("fan-out dir")
            .flatten()
        {
            for blob in std::fs::read_dir(second.path())
                .expect("fan-out dir")
                .flatten()
            {
                let name = blob.file_name().to_string_lossy().into_owned();
                let expected_prefix = format!(
                    "{}{}",
                    first.file_name().to_string_lossy(),
                    second.file_name().to_string_lossy()
                );
                assert!(
                    name.len() == 64 && name.starts_with(&expected_prefix),
                    "unexpected file in the blob store: {}",
                    blob.path().display()
                );
                found.insert(name);
            }
        }
    }
    found
}

/// A listed file: its record's hash and size.
struct Listed {
    blake3: String,
    size: u64,
}

/// Every file of every version of every product of the account.
fn list_files(addr: &str, token: &str) -> BTreeMap<u64, Listed> {
    let mut files = BTreeMap::new();
    for product in list_all(addr, "/api/v1/products", token) {
        let product = product["id"].as_u64().expect("product id");
        for version in list_all(addr, &format!("/api/v1/products/{product}/versions"), token) {
            let version = version["id"].as_u64().expect("version id");
            for file in list_all(addr, &format!("/api/v1/versions/{version}/files"), token) {
                files.insert(
                    file["id"].as_u64().expect("file id"),
                    Listed {
                        blake3: file["blake3"].as_str().expect("blake3").to_owned(),
                        size: file["size"].as_u64().expect("size"),
                    },
                );
            }
        }
    }
    files
}

/// Checks the restarted server against the ledgers; settles replacements cut off by the
/// kill. Returns (files listed, bytes downloaded).
fn verify(addr: &str, token: &str, data: &Path, writers: &mut [Writer]) -> (usize, u64) {
    let listed = list_files(addr, token);
    let mut failures = Vec::new();
    for writer in writers.iter_mut() {
        for (id, expect) in &mut writer.files {
            let Some(file) = listed.get(id) else {
                failures.push(format!("acknowledged file {id} ({}) is gone", expect.hash));
                continue;
            };
            if file.blake3 == expect.hash && file.size == expect.size {
                expect.maybe = None;
            } else if expect.maybe.as_deref() == Some(file.blake3.as_str())
                && file.size == expect.maybe_size
            {
                expect.hash = file.blake3.clone();
                expect.size = file.size;
                expect.maybe = None;
            } else {
                failures.push(format!(
                    "file {id}: listed {} ({} bytes), acknowledged {} ({} bytes){}",
                    file.blake3,
                    file.size,
                    expect.hash,
                    expect.size,
                    expect
                        .maybe
                        .as_ref()
                        .map(|m| format!(" or, replacement unanswered, {m}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    // No record points at a missing (or different) blob: every listed file downloads whole
    // with the size and hash its record gives.
    let mut downloaded = 0;
    for (id, file) in &listed {
        let path = format!("/api/v1/files/{id}/content");
        match request(addr, ("GET", &path), token, None, &[], None) {
            Ok(response) if response.status == 200 => {
                downloaded += response.body.len() as u64;
                let got = hash(&response.body);
                if got != file.blake3 || response.body.len() as u64 != file.size {
                    failures.push(format!(
                        "file {id}: downloads as {got} ({} bytes), its record says {} ({} bytes)",
                        response.body.len(),
                        file.blake3,
                        file.size
                    ));
                }
            }
            Ok(response) => failures.push(format!(
                "GET {path}: {} {}",
                response.status,
                response.text()
            )),
            Err(why) => failures.push(format!("GET {path}: {why}")),
        }
    }
    // No orphan, nothing missing: the blob files are exactly the listed hashes.
    let on_disk = blob_files(data);
    let referenced: BTreeSet<String> = listed.values().map(|f| f.blake3.clone()).collect();
    let orphans: Vec<_> = on_disk.difference(&referenced).collect();
    let missing: Vec<_> = referenced.difference(&on_disk).collect();
    if !orphans.is_empty() {
        failures.push(format!("orphan blobs after the restart: {orphans:?}"));
    }
    if !missing.is_empty() {
        failures.push(format!("listed files without a blob: {missing:?}"));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s); data directory kept at {}:\n{}",
        failures.len(),
        data.display(),
        failures.join("\n")
    );
    (listed.len(), downloaded)
}

/// Every thread's backtrace of a (stuck) process, by gdb if it is installed.
fn thread_stacks(pid: u32) -> String {
    match std::process::Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(why) => format!("(no gdb: {why})"),
    }
}

/// What the start-up sweep logged it removed (temporary files, orphan blobs).
fn swept(log_path: &Path) -> (u64, u64) {
    let log = std::fs::read_to_string(log_path).expect("serve log");
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| {
            event["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("blob sweep"))
        })
        .fold((0, 0), |(t, o), event| {
            (
                t + event["temp_files"].as_u64().unwrap_or(0),
                o + event["orphans"].as_u64().unwrap_or(0),
            )
        })
}

// ---- the test -----------------------------------------------------------------------

#[test]
fn kill_9_during_concurrent_uploads_loses_no_acknowledged_upload_and_leaves_no_orphan() {
    let seed = env_number("UPKEEP_UPLOAD_CRASH_SEED").unwrap_or_else(fresh_seed);
    let cycles = env_number("UPKEEP_UPLOAD_CRASH_CYCLES").unwrap_or(DEFAULT_CYCLES);
    println!("upload crash test: seed {seed}, {cycles} cycles");
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
            "uploader",
            "--scopes",
            "api",
        ],
    ))["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let mut server = ServeProcess::start(&data, LOG_LEVEL, &[]);
    // One draft version per writer, in one product: files are added and replaced there.
    let product = {
        let body = r#"{"slug":"crash-drafts","kind":"plugin","name":"Crash drafts"}"#.as_bytes();
        let reply = request(
            &server.addr,
            ("POST", "/api/v1/products"),
            &token,
            Some("application/json"),
            body,
            None,
        )
        .expect("create product");
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json().expect("JSON")["data"]["id"].as_u64().unwrap()
    };
    let mut writers: Vec<Writer> = (0..WRITERS)
        .map(|id| {
            let body = format!(r#"{{"version":"1.0.{id}"}}"#);
            let reply = request(
                &server.addr,
                ("POST", &format!("/api/v1/products/{product}/versions")),
                &token,
                Some("application/json"),
                body.as_bytes(),
                None,
            )
            .expect("create version");
            assert_eq!(reply.status, 201, "{}", reply.text());
            Writer {
                id,
                version: reply.json().expect("JSON")["data"]["id"].as_u64().unwrap(),
                next: 0,
                files: BTreeMap::new(),
                acknowledged: 0,
                unanswered: 0,
                unexpected: Vec::new(),
                last_error: String::new(),
                cycle_start: Instant::now(),
            }
        })
        .collect();

    let started = Instant::now();
    let mut swept_total = (0, 0);
    for cycle in 0..cycles {
        let acks_before_kill = 1 + rng.below(MAX_ACKS_BEFORE_KILL);
        let bytes_after_acks = rng.below(MAX_BYTES_AFTER_ACKS + 1);
        let (events, received) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let addr = server.addr.clone();
        let handles: Vec<_> = writers
            .drain(..)
            .map(|mut writer| {
                let (addr, token, events, stop) =
                    (addr.clone(), token.clone(), events.clone(), stop.clone());
                let mut writer_rng = Rng(rng.next());
                std::thread::spawn(move || {
                    writer.run(&addr, &token, cycle, &mut writer_rng, &events, &stop);
                    writer
                })
            })
            .collect();
        drop(events);
        // Wait for the kill point: N acknowledgments, then M more bytes written.
        let (mut acks, mut bytes) = (0, 0);
        while acks < acks_before_kill || bytes < bytes_after_acks {
            match received.recv_timeout(EVENT_DEADLINE) {
                Ok(Event::Ack) => acks += 1,
                Ok(Event::Sent(n)) if acks >= acks_before_kill => bytes += n,
                Ok(Event::Sent(_)) => {}
                Err(why) => {
                    let stacks = thread_stacks(server.pid());
                    let log = server.kill9();
                    stop.store(true, Ordering::SeqCst);
                    let errors: Vec<String> = handles
                        .into_iter()
                        .map(|h| h.join().expect("writer thread").last_error)
                        .collect();
                    panic!(
                        "cycle {cycle}: waiting for {acks_before_kill} acks (+{bytes_after_acks} \
                         bytes), got {acks} (+{bytes}): {why:?}; the writers' last errors: \
                         {errors:#?}\nserver log:\n{log}\nserver threads:\n{stacks}"
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
        let unexpected: Vec<&String> = writers.iter().flat_map(|w| &w.unexpected).collect();
        assert!(
            unexpected.is_empty(),
            "cycle {cycle}: unexpected answers:\n{unexpected:#?}\nserver log:\n{log}"
        );

        server = ServeProcess::start(&data, LOG_LEVEL, &[]);
        let (temp_files, orphans) = swept(&server.log_path);
        swept_total.0 += temp_files;
        swept_total.1 += orphans;
        let (listed, downloaded) = verify(&server.addr, &token, &data, &mut writers);
        let recent = writers
            .iter()
            .flat_map(|w| w.files.values())
            .filter(|e| e.cycle == cycle)
            .count();
        println!(
            "cycle {cycle}: killed after {acks_before_kill} acks + {bytes} bytes; \
             {recent} new acknowledged files; the restart swept {temp_files} temporary \
             file(s) and {orphans} orphan blob(s); then {listed} files, {downloaded} bytes \
             downloaded and checked, blobs = records ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
    let acknowledged: u64 = writers.iter().map(|w| w.acknowledged).sum();
    let unanswered: u64 = writers.iter().map(|w| w.unanswered).sum();
    server.stop();
    println!(
        "{cycles} kills in {:.1} s: {acknowledged} uploads acknowledged, {unanswered} cut off; \
         the restarts swept {} temporary file(s) and {} orphan blob(s)",
        started.elapsed().as_secs_f64(),
        swept_total.0,
        swept_total.1
    );
    // The kill must have cut requests off, or it proved nothing about mid-flight crashes.
    assert!(
        unanswered >= cycles as u64,
        "only {unanswered} requests were cut off by {cycles} kills"
    );
}
