//! `TestServer`: a real server on `127.0.0.1:0` over a real store in a temporary
//! directory, a manual clock, fixtures that bootstrap through the store, and a minimal
//! HTTP/1.1 client (hyper's own) whose failures print the whole exchange.

#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use upkeep::clock::Clock;
use upkeep::model::{AccountPrefix, NewAccount, Timestamp};
use upkeep::{App, Settings, Store};

/// 2026-11-24T00:00:00Z: tests run on a manual clock starting here.
pub const START: Timestamp = Timestamp::from_secs(1_795_478_400);

pub struct TestServer {
    pub addr: SocketAddr,
    /// `None` only after `stop`.
    app: Option<Arc<App>>,
    pub clock: Clock,
    /// The data directory; kept alive (and removed) with the server unless taken.
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), upkeep::store::StoreError>>>,
    control: Option<upkeep::control::Listener>,
}

/// An account made through the store, with its first (`api`) token.
pub struct TestAccount {
    pub prefix: String,
    pub token: String,
}

impl TestServer {
    /// A server with default settings, except that failed-authentication throttling is
    /// off (tests send many bad tokens from 127.0.0.1 on purpose; the throttle's own tests
    /// turn it on with `start_with`).
    pub async fn start() -> TestServer {
        TestServer::start_with(Settings {
            auth_failures_per_minute: 0,
            ..Settings::default()
        })
        .await
    }

    pub async fn start_with(settings: Settings) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        let mut server = TestServer::start_in(&path, Clock::manual(START), settings).await;
        server.dir = Some(dir);
        server
    }

    /// Starts a server on an existing data directory (which the caller keeps alive).
    pub async fn start_in(path: &Path, clock: Clock, settings: Settings) -> TestServer {
        let store = Store::open(path).expect("store opens");
        let app = Arc::new(App::new(store, clock.clone(), settings));
        // Bound before spawning: the address is valid at once, no waiting needed.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let control = upkeep::control::listen(app.clone()).expect("admin socket");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(upkeep::server::run(listener, app.clone(), async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            app: Some(app),
            clock,
            dir: None,
            path: path.to_owned(),
            shutdown: Some(tx),
            task: Some(task),
            control: Some(control),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Graceful stop: drain, persist token uses, flush; the store is closed on return.
    /// Returns the data directory (still on disk) for a restart.
    pub async fn stop(mut self) -> (Option<tempfile::TempDir>, PathBuf) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        if let Some(control) = self.control.take() {
            control.close().await;
        }
        let dir = self.dir.take();
        let path = self.path.clone();
        let app = self.app.take().expect("running");
        drop(Arc::into_inner(app).expect("no other handle to the app remains"));
        (dir, path)
    }

    pub fn app(&self) -> &App {
        self.app.as_deref().expect("server running")
    }

    pub fn store(&self) -> &Store {
        &self.app().store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// What reports counted for product `id` today (SPEC §10): its stored rollup plus the
    /// counts not flushed yet, as the report routes will read them.
    pub fn counted(&self, id: u64) -> upkeep::model::DayRollup {
        let product = upkeep::model::ProductId(id);
        let account = self
            .store()
            .product_account(product)
            .expect("store reads")
            .expect("a product");
        upkeep::service::reports::day(
            self.store(),
            &self.app().public.counts,
            &account,
            product,
            upkeep::model::Day::of(self.now()),
        )
        .expect("rollups read")
    }

    /// An account with prefix `prefix` and its first token (scope `api`).
    pub fn account(&self, prefix: &str) -> TestAccount {
        let new = NewAccount::parse(
            "Test Vendor",
            &format!("{prefix}@example.com"),
            Some(prefix),
        )
        .expect("valid account");
        let (account, token) = self
            .store()
            .create_account(new, self.now())
            .expect("account created")
            .durable_blocking()
            .expect("durable");
        TestAccount {
            prefix: account.prefix.to_string(),
            token: token.secret,
        }
    }

    /// A token of `account` named `name` with `scopes`, expiring at `expires_at`.
    pub fn token(
        &self,
        account: &TestAccount,
        name: &str,
        scopes: &[&str],
        expires_at: Option<Timestamp>,
    ) -> String {
        let new = upkeep::store::NewToken {
            principal: upkeep::model::Principal::Account(
                AccountPrefix::parse(&account.prefix).expect("prefix"),
            ),
            name: name.to_owned(),
            scopes: upkeep::model::Scopes::parse_all(scopes.iter().copied()).expect("scopes"),
            expires_at,
        };
        self.store()
            .create_token(new, self.now())
            .expect("token created")
            .durable_blocking()
            .expect("durable")
            .secret
    }

    /// An operator token named `name` (`active`, `write`), expiring at `expires_at`.
    pub fn operator_token(
        &self,
        name: &str,
        active: bool,
        write: bool,
        expires_at: Option<Timestamp>,
    ) -> String {
        let new = upkeep::store::NewToken {
            principal: upkeep::model::Principal::Operator { active, write },
            name: name.to_owned(),
            scopes: upkeep::model::Scopes::empty(),
            expires_at,
        };
        self.store()
            .create_token(new, self.now())
            .expect("operator token created")
            .durable_blocking()
            .expect("durable")
            .secret
    }

    pub fn put(&self, path: &str, token: &str, json: Value) -> Call<'_> {
        self.request(Method::PUT, path)
            .header("authorization", &format!("Bearer {token}"))
            .body(json.to_string())
    }

    /// `DELETE` with a JSON body (the Query API's style).
    pub fn delete_with(&self, path: &str, token: &str, json: Value) -> Call<'_> {
        self.request(Method::DELETE, path)
            .header("authorization", &format!("Bearer {token}"))
            .body(json.to_string())
    }

    /// A plan license key with `limit`, expiring at `expires_at`.
    pub fn license(&self, limit: u32, expires_at: Option<Timestamp>) -> (u64, String) {
        let issued = self
            .store()
            .issue_license(limit, expires_at, self.now())
            .expect("license issued")
            .durable_blocking()
            .expect("durable");
        (issued.license.id.0, issued.key)
    }

    pub fn request(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            server: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn get(&self, path: &str, token: &str) -> Call<'_> {
        self.request(Method::GET, path).header("x-api-key", token)
    }

    pub fn post(&self, path: &str, token: &str, json: Value) -> Call<'_> {
        self.request(Method::POST, path)
            .header("x-api-key", token)
            .body(json.to_string())
    }

    pub fn delete(&self, path: &str, token: &str) -> Call<'_> {
        self.request(Method::DELETE, path)
            .header("x-api-key", token)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A request being built.
pub struct Call<'a> {
    server: &'a TestServer,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub async fn send(self) -> Reply {
        let stream = TcpStream::connect(self.server.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header("host", self.server.addr.to_string());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let req = builder.body(Full::new(self.body.clone())).expect("request");
        let res = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
            .await
            .expect("response within 30 s")
            .expect("response");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            request: format!(
                "{} {} {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            ),
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A response, with the request that produced it for failure messages.
pub struct Reply {
    pub request: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n  request: {}\n  status: {}\n  headers: {:?}\n  body: {}",
            self.request,
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

impl Reply {
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status:{self:?}");
        if self.body.is_empty() {
            return Value::Null;
        }
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "content type:{self:?}"
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}):{self:?}"))
    }

    /// Asserts an error envelope with `status` and `code`; returns its message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        let body = self.expect(status);
        assert_eq!(body["status"], status, "envelope status:{self:?}");
        assert_eq!(body["error"], code, "error code:{self:?}");
        body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("message:{self:?}"))
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The real `upkeep serve`, on `127.0.0.1:0`, logging JSON lines to a file.
pub struct ServeProcess {
    child: std::process::Child,
    pub addr: String,
    pub log_path: PathBuf,
    /// Copies the child's stderr, line by line, into `log_path` until the child exits.
    copier: Option<std::thread::JoinHandle<()>>,
}

impl ServeProcess {
    /// Starts `upkeep serve` on `data` with `RUST_LOG=log_level` and waits for the
    /// "listening" line. No sleeping, no polling: the server's stderr is a pipe, read line
    /// by line (blocking) by a thread that writes each line to the log file and then hands
    /// the address over a channel; this waits on that channel, for at most 30 s.
    pub fn start(data: &Path, log_level: &str, extra_args: &[&str]) -> ServeProcess {
        use std::io::{BufRead, BufReader, Write};
        let log_path = data.with_extension("serve.log");
        let mut log = std::fs::File::create(&log_path).expect("log file");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(extra_args)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", format!("{log_level},upkeep::listening=info"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn upkeep serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (listening, addr) = std::sync::mpsc::channel();
        let copier = std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr);
            let mut line = String::new();
            // Ends at EOF: the child exited (or was killed) and its stderr closed.
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                // Written before the address is handed over: whoever reads the log after
                // `start` returns sees every line up to the listening one.
                log.write_all(line.as_bytes()).expect("write log");
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if event["message"] == "upkeep listening" {
                        let addr = event["listen"].as_str().expect("listen field").to_owned();
                        let _ = listening.send(addr);
                    }
                }
                line.clear();
            }
        });
        let addr = match addr.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(why) => {
                // Do not leave the process running behind a failed test.
                let _ = child.kill();
                let _ = child.wait();
                let _ = copier.join();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                match why {
                    std::sync::mpsc::RecvTimeoutError::Timeout => {
                        panic!("serve did not start in 30 s; log:\n{log}")
                    }
                    std::sync::mpsc::RecvTimeoutError::Disconnected => {
                        panic!("serve exited before listening; log:\n{log}")
                    }
                }
            }
        };
        ServeProcess {
            child,
            addr,
            log_path,
            copier: Some(copier),
        }
    }

    /// Waits until the log is complete (the child has exited: its stderr is at EOF).
    fn finish_log(&mut self) {
        if let Some(copier) = self.copier.take() {
            copier.join().expect("log copier");
        }
    }

    /// One HTTP/1.1 request with `connection: close`; returns status and body.
    pub fn http(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect");
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .expect("write request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {response:?}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (`kill -9`): no drain, no flush, no destructors. Returns the log.
    pub fn kill9(mut self) -> String {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
        self.finish_log();
        std::fs::read_to_string(&self.log_path).expect("read log")
    }

    /// SIGTERM, wait for a clean exit, return the whole log.
    pub fn stop(mut self) -> String {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        self.finish_log();
        let log = std::fs::read_to_string(&self.log_path).expect("read log");
        assert!(exit.success(), "serve exited with {exit:?}; log:\n{log}");
        log
    }
}

/// A test that fails mid-way must not leave its server running.
impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(copier) = self.copier.take() {
            let _ = copier.join();
        }
    }
}

/// Runs the `upkeep` binary with `--data data` and `args`.
pub fn upkeep_cli(data: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run upkeep")
}

/// `upkeep --data DATA init`: a new data directory (only `init` and `serve` create one).
#[track_caller]
pub fn upkeep_init(data: &Path) {
    let output = upkeep_cli(data, &["init"]);
    assert!(
        output.status.success(),
        "upkeep init: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The JSON a successful `upkeep --json …` printed.
#[track_caller]
pub fn cli_json(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

/// A request body for [`TestServer::request`]-built calls: JSON, or raw bytes with a
/// content type (uploads).
#[derive(Debug, Clone)]
pub enum TestBody {
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

impl Call<'_> {
    /// Sends `body` with its content type.
    pub fn test_body(self, body: &TestBody) -> Self {
        match body {
            TestBody::Json(json) => self.body(json.to_string()),
            TestBody::Raw(content_type, bytes) => self
                .header("content-type", content_type)
                .body(bytes.clone()),
        }
    }
}

/// A zip of `entries` (name, content), deflated.
pub fn zip_of<C: AsRef<[u8]>>(entries: &[(&str, C)]) -> Vec<u8> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(content.as_ref()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A minimal plugin `slug` at `version`, with a readme; `extra` varies the content.
pub fn plugin_zip(slug: &str, version: &str, extra: &str) -> Vec<u8> {
    let header = format!(
        "<?php\n/**\n * Plugin Name: {slug} Test\n * Version: {version}\n * Requires at least: 6.0\n \
         * Requires PHP: 7.4\n * Author: Test Vendor\n * Plugin URI: https://example.com/{slug}\n */\n// {extra}\n"
    );
    let readme = "=== Test ===\nTested up to: 6.4\nStable tag: 1.0.0\n\n== Description ==\n\nA *test* plugin.<script>alert(1)</script>\n\n== Changelog ==\n\n= 1.0.0 =\n* First.\n";
    zip_of(&[
        (&format!("{slug}/{slug}.php"), header.as_bytes()),
        (&format!("{slug}/readme.txt"), readme.as_bytes()),
    ])
}

/// Catalogue records of one account, made over the API for tests that need real ids
/// (ids are random): records to read and change, and a victim of each kind to delete.
#[derive(Debug, Clone)]
pub struct CatalogIds {
    pub product: u64,
    pub product_slug: String,
    pub victim_product: u64,
    /// A draft version of `product`, holding `file` (primary) and `victim_file`.
    pub version: u64,
    pub victim_version: u64,
    pub file: u64,
    pub victim_file: u64,
    pub group: u64,
    pub victim_group: u64,
    /// A theme of the account (no versions).
    pub theme_slug: String,
}

/// Makes a [`CatalogIds`] set with `token` (an `api` token); `tag` keeps names unique.
pub async fn catalog_fixture(server: &TestServer, token: &str, tag: &str) -> CatalogIds {
    let bearer = format!("Bearer {token}");
    let json_call = |method: Method, path: String, body: Value| {
        server
            .request(method, &path)
            .header("authorization", &bearer)
            .body(body.to_string())
    };
    let id = |v: &Value| v["data"]["id"].as_u64().expect("an id");
    let slug = format!("alpha{tag}");
    let product = id(&json_call(
        Method::POST,
        "/api/v1/products".into(),
        serde_json::json!({"slug": slug, "kind": "plugin", "name": format!("Alpha {tag}")}),
    )
    .send()
    .await
    .expect(201));
    let victim_product = id(&json_call(
        Method::POST,
        "/api/v1/products".into(),
        serde_json::json!({"slug": format!("victim{tag}"), "name": format!("Victim {tag}")}),
    )
    .send()
    .await
    .expect(201));
    let version = id(&json_call(
        Method::POST,
        format!("/api/v1/products/{product}/versions"),
        serde_json::json!({"version": "1.0.0"}),
    )
    .send()
    .await
    .expect(201));
    let victim_version = id(&json_call(
        Method::POST,
        format!("/api/v1/products/{product}/versions"),
        serde_json::json!({"version": "0.1.0"}),
    )
    .send()
    .await
    .expect(201));
    let upload = |name: &'static str| {
        server
            .request(
                Method::POST,
                &format!("/api/v1/versions/{version}/files?name={name}"),
            )
            .header("authorization", &bearer)
            .header("content-type", "application/zip")
            .body(plugin_zip(&slug, "1.0.0", name))
    };
    let file = id(&upload("Installer").send().await.expect(201));
    let victim_file = id(&upload("Extra").send().await.expect(201));
    let group = id(&json_call(
        Method::POST,
        "/api/v1/groups".into(),
        serde_json::json!({"name": format!("keep{tag}")}),
    )
    .send()
    .await
    .expect(201));
    let victim_group = id(&json_call(
        Method::POST,
        "/api/v1/groups".into(),
        serde_json::json!({"name": format!("gone{tag}")}),
    )
    .send()
    .await
    .expect(201));
    let theme_slug = format!("theme{tag}");
    json_call(
        Method::POST,
        "/api/v1/products".into(),
        serde_json::json!({"slug": theme_slug, "kind": "theme", "name": format!("Theme {tag}")}),
    )
    .send()
    .await
    .expect(201);
    CatalogIds {
        product,
        product_slug: slug,
        victim_product,
        version,
        victim_version,
        file,
        victim_file,
        group,
        victim_group,
        theme_slug,
    }
}

/// A request that succeeds for route `name` of the release catalogue (SPEC §7.1) against
/// `ids`; `n` makes created names unique. `None` for other routes.
pub fn catalog_request(
    name: &str,
    ids: &CatalogIds,
    n: usize,
) -> Option<(String, Option<TestBody>)> {
    use serde_json::json;
    let j = |v: Value| Some(TestBody::Json(v));
    let zip = |slug: &str, version: String| {
        Some(TestBody::Raw(
            "application/zip",
            plugin_zip(slug, &version, "r"),
        ))
    };
    Some(match name {
        "list_groups" => ("/api/v1/groups".into(), None),
        "create_group" => ("/api/v1/groups".into(), j(json!({"name": format!("g{n}")}))),
        "get_group" => (format!("/api/v1/groups/{}", ids.group), None),
        "update_group" => (
            format!("/api/v1/groups/{}", ids.group),
            j(json!({"name": format!("renamed{n}")})),
        ),
        "delete_group" => (format!("/api/v1/groups/{}", ids.victim_group), None),
        "list_products" => ("/api/v1/products".into(), None),
        "create_product" => (
            "/api/v1/products".into(),
            j(json!({"slug": format!("p{n}")})),
        ),
        "get_product" => (format!("/api/v1/products/{}", ids.product), None),
        "update_product" => (
            format!("/api/v1/products/{}", ids.product),
            j(json!({"short_description": format!("s{n}")})),
        ),
        "delete_product" => (format!("/api/v1/products/{}", ids.victim_product), None),
        "duplicate_product" => (
            format!("/api/v1/products/{}/duplicate", ids.product),
            j(json!({"slug": format!("d{n}"), "name": format!("Dup {n}")})),
        ),
        "get_channels" => (format!("/api/v1/products/{}/channels", ids.product), None),
        "list_versions" => (format!("/api/v1/products/{}/versions", ids.product), None),
        "create_version" => (
            format!("/api/v1/products/{}/versions", ids.product),
            j(json!({"version": format!("5.{n}.0")})),
        ),
        "release_product" => (
            format!("/api/v1/products/{}/releases", ids.product),
            zip(&ids.product_slug, format!("9.{n}.0")),
        ),
        "release" => (
            "/api/v1/releases".into(),
            zip(&format!("rel{n}"), "1.0.0".into()),
        ),
        "get_version" => (format!("/api/v1/versions/{}", ids.version), None),
        "update_version" => (
            format!("/api/v1/versions/{}", ids.version),
            j(json!({"rollout": 50})),
        ),
        "delete_version" => (format!("/api/v1/versions/{}", ids.victim_version), None),
        "list_files" => (format!("/api/v1/versions/{}/files", ids.version), None),
        "create_file" => (
            format!("/api/v1/versions/{}/files?name=f{n}", ids.version),
            Some(TestBody::Raw(
                "application/octet-stream",
                format!("file {n}").into_bytes(),
            )),
        ),
        "get_file" => (format!("/api/v1/files/{}", ids.file), None),
        "update_file" => (
            format!("/api/v1/files/{}", ids.file),
            j(json!({"description": format!("d{n}")})),
        ),
        "delete_file" => (format!("/api/v1/files/{}", ids.victim_file), None),
        "replace_file_content" => (
            format!("/api/v1/files/{}/content", ids.file),
            Some(TestBody::Raw(
                "application/zip",
                plugin_zip(&ids.product_slug, "1.0.0", &format!("c{n}")),
            )),
        ),
        "download_file" => (format!("/api/v1/files/{}/content", ids.file), None),
        _ => return None,
    })
}

/// A theme zip: `slug/style.css` with a `Theme Name:` header of `version`.
pub fn theme_zip(slug: &str, version: &str, extra: &str) -> Vec<u8> {
    zip_of(&[
        (
            &format!("{slug}/style.css"),
            &format!("/*\nTheme Name: {slug}\nVersion: {version}\n*/\n/* {extra} */\n"),
        ),
        (&format!("{slug}/index.php"), &"<?php\n".to_owned()),
    ])
}

/// A request that succeeds (200, whatever the dialect says) for public route `name`
/// (SPEC §8) of account `prefix` holding `ids`. `None` for other routes, and for the
/// download (its link comes from a check).
pub fn public_request(
    name: &str,
    prefix: &str,
    ids: &CatalogIds,
) -> Option<(String, Option<TestBody>)> {
    let slug = &ids.product_slug;
    Some(match name {
        "wu_plugin" => (
            format!("/v1/public/{prefix}/plugins/{slug}?installed_version=0.9.0"),
            None,
        ),
        "wu_plugin_channel" => (format!("/v1/public/{prefix}/plugins/{slug}/beta"), None),
        "wu_theme" => (
            format!("/v1/public/{prefix}/themes/{}", ids.theme_slug),
            None,
        ),
        "wu_theme_channel" => (
            format!("/v1/public/{prefix}/themes/{}/dev", ids.theme_slug),
            None,
        ),
        "batch_check" => (
            format!("/v1/public/{prefix}/check"),
            Some(TestBody::Json(
                serde_json::json!({"site": "https://example.com", "items": [{"slug": slug, "version": "0.9.0"}]}),
            )),
        ),
        "puc" => (
            format!("/updates/{prefix}/{slug}?installed_version=0.9.0&php=8.2"),
            None,
        ),
        "puc_channel" => (format!("/updates/{prefix}/{slug}/rc"), None),
        "changelog" => (format!("/updates/{prefix}/{slug}/changelog"), None),
        "updatercloud_update" => (
            format!(
                "/api/v1/products/{}/update?installed_version=0.9.0",
                ids.product
            ),
            None,
        ),
        "edd" => (
            format!(
                "/edd/{prefix}/?edd_action=get_version&item_id={}",
                ids.product
            ),
            None,
        ),
        "edd_post" => (
            format!("/edd/{prefix}"),
            Some(TestBody::Raw(
                "application/x-www-form-urlencoded",
                format!(
                    "edd_action=get_version&item_id={}&version=0.9.0",
                    ids.product
                )
                .into_bytes(),
            )),
        ),
        "root_post" => (
            "/".to_owned(),
            Some(TestBody::Raw(
                "application/x-www-form-urlencoded",
                b"edd_action=get_version&item_name=nothing".to_vec(),
            )),
        ),
        _ => return None,
    })
}

// ----- customer licensing (SPEC §9.1) ----------------------------------------------------

/// Licensing records of one account for the authorization matrix and the OpenAPI run: ids
/// are random, so routes run against records made here. Each deleting route has its
/// victim.
pub struct LicensingIds {
    pub customer: u64,
    pub victim_customer: u64,
    pub key: u64,
    pub victim_key: u64,
    pub victim_activation: u64,
    /// The key's value, for the public licensing routes (SPEC §9.2).
    pub key_value: String,
    /// Two Lemon Squeezy instances of the key, as `instance_id`s (one per deactivating
    /// route).
    pub ls_instances: [String; 2],
}

/// Makes a [`LicensingIds`] set with `token` (an `api` token) for a product of the
/// account; `tag` keeps emails unique. The activation is made through the service (the
/// public activation routes are another family's).
pub async fn licensing_fixture(
    server: &TestServer,
    token: &str,
    prefix: &str,
    tag: &str,
    product: u64,
) -> LicensingIds {
    use upkeep::service::licensing as lic;
    let bearer = format!("Bearer {token}");
    let post = |path: &str, body: Value| {
        server
            .request(Method::POST, path)
            .header("authorization", &bearer)
            .body(body.to_string())
    };
    let id = |v: &Value| v["data"]["id"].as_u64().expect("an id");
    let customer = id(&post(
        "/api/v1/customers",
        serde_json::json!({"name": "Ann", "email": format!("ann{tag}@example.com")}),
    )
    .send()
    .await
    .expect(201));
    let victim_customer = id(&post(
        "/api/v1/customers",
        serde_json::json!({"name": "Bob", "email": format!("bob{tag}@example.com")}),
    )
    .send()
    .await
    .expect(201));
    let new_key = |customer: u64| serde_json::json!({"customer_id": customer, "product_ids": [product], "activation_limit": 0});
    let created = post("/api/v1/download-keys", new_key(customer))
        .send()
        .await
        .expect(201);
    let key = id(&created);
    let value = created["data"]["key"].as_str().unwrap().to_owned();
    // The victim customer takes its keys with it: the victim key is the kept customer's.
    let victim_key = id(&post("/api/v1/download-keys", new_key(customer))
        .send()
        .await
        .expect(201));
    let account = upkeep::model::AccountPrefix::parse(prefix).unwrap();
    let events = upkeep::service::Events::default();
    let ctx = upkeep::service::Ctx {
        store: server.store(),
        events: &events,
        actor: upkeep::service::Actor::Cli,
        now: server.now(),
    };
    let rules = lic::ActivationRules {
        default_activation_limit: 0,
        max_activations_per_day: 0,
        ..lic::ActivationRules::default()
    };
    let site = upkeep::model::normalize_site(&format!("victim{tag}.example.com")).unwrap();
    let outcome = activate_now(
        &ctx,
        &rules,
        &account,
        None,
        &value,
        lic::Target::Site(site),
    );
    let instance = |name: &str| {
        let target = lic::Target::NewInstance(name.to_owned());
        let made = activate_now(&ctx, &rules, &account, None, &value, target);
        upkeep::api::public::licensing::instance_uuid(&account, made.activation.unwrap().id)
    };
    let ls_instances = [instance("first"), instance("second")];
    LicensingIds {
        customer,
        victim_customer,
        key,
        victim_key,
        victim_activation: outcome.activation.unwrap().id.0,
        key_value: value,
        ls_instances,
    }
}

/// Activates `target` with key `key` now, through the licensing service as the licensing
/// dialects do, acknowledged once durable; the outcome must be valid.
pub fn activate_now(
    ctx: &upkeep::service::Ctx<'_>,
    rules: &upkeep::service::licensing::ActivationRules,
    account: &upkeep::model::AccountPrefix,
    product: Option<upkeep::model::ProductId>,
    key: &str,
    target: upkeep::service::licensing::Target,
) -> upkeep::service::licensing::Outcome {
    let outcome = upkeep::service::licensing::activate(
        ctx,
        rules,
        account,
        product,
        Some(key),
        target,
        None,
        None,
    )
    .unwrap()
    .durable_blocking()
    .unwrap();
    assert!(outcome.valid(), "{outcome:?}");
    outcome
}

/// A request that succeeds for route `name` of customer licensing (SPEC §9.1) against
/// `ids`; `n` makes created records unique. `None` for other routes.
pub fn licensing_request(
    name: &str,
    ids: &LicensingIds,
    product: u64,
    n: usize,
) -> Option<(String, Option<TestBody>)> {
    use serde_json::json;
    let j = |v: Value| Some(TestBody::Json(v));
    Some(match name {
        "list_customers" => ("/api/v1/customers?q=ann".into(), None),
        "create_customer" => (
            "/api/v1/customers".into(),
            j(json!({"name": format!("C {n}"), "email": format!("c{n}@example.com")})),
        ),
        "get_customer" => (format!("/api/v1/customers/{}", ids.customer), None),
        "update_customer" => (
            format!("/api/v1/customers/{}", ids.customer),
            j(json!({"city": format!("City {n}")})),
        ),
        "delete_customer" => (format!("/api/v1/customers/{}", ids.victim_customer), None),
        "list_download_keys" => (
            format!("/api/v1/download-keys?customer_id={}", ids.customer),
            None,
        ),
        "generate_download_key" => (
            "/api/v1/download-keys".into(),
            j(json!({"customer_id": ids.customer, "product_ids": [product], "expires_in": "365d"})),
        ),
        "get_download_key" => (format!("/api/v1/download-keys/{}", ids.key), None),
        "update_download_key" => (
            format!("/api/v1/download-keys/{}", ids.key),
            j(json!({"notes": format!("n{n}")})),
        ),
        "delete_download_key" => (format!("/api/v1/download-keys/{}", ids.victim_key), None),
        "list_activations" => (
            format!("/api/v1/download-keys/{}/activations", ids.key),
            None,
        ),
        "delete_activation" => (
            format!("/api/v1/activations/{}", ids.victim_activation),
            None,
        ),
        "get_download_key_settings" => ("/api/v1/settings/download-keys".into(), None),
        "put_download_key_settings" => (
            "/api/v1/settings/download-keys".into(),
            j(json!({"generator": "uuid4"})),
        ),
        _ => return None,
    })
}

/// A request that gets past authorization (2xx) for public licensing route `name`
/// (SPEC §9.2) of account `prefix` (also the default account, for `/v1/licenses/…`),
/// with the key and instances of `ids` for `product`. `None` for other routes.
pub fn public_licensing_request(
    name: &str,
    prefix: &str,
    product: u64,
    ids: &LicensingIds,
) -> Option<(String, Option<TestBody>)> {
    let key = &ids.key_value;
    let uc = |action: &str| format!("/api/v1/products/{product}/download-keys/{action}");
    let form = |text: String| {
        Some(TestBody::Raw(
            "application/x-www-form-urlencoded",
            text.into_bytes(),
        ))
    };
    let json = |value: Value| Some(TestBody::Json(value));
    Some(match name {
        "uc_key_check" => (
            format!("{}?download_key={key}&domain=example.com", uc("check")),
            None,
        ),
        "uc_key_check_post" => (uc("check"), form(format!("download_key={key}"))),
        "uc_key_activate" => (
            format!(
                "{}?download_key={key}&domain=matrix.example.com",
                uc("activate")
            ),
            None,
        ),
        "uc_key_activate_post" => (
            uc("activate"),
            form(format!("download_key={key}&machine=matrix-1")),
        ),
        "uc_key_deactivate" => (
            format!(
                "{}?download_key={key}&domain=nowhere.example.com",
                uc("deactivate")
            ),
            None,
        ),
        "uc_key_deactivate_post" => (
            uc("deactivate"),
            json(serde_json::json!({"download_key": key, "domain": "nowhere.example.com"})),
        ),
        "uc_key_activations" => (format!("{}?download_key={key}", uc("activations")), None),
        "ls_activate" => (
            format!("/ls/{prefix}/v1/licenses/activate"),
            form(format!("license_key={key}&instance_name=Matrix")),
        ),
        "ls_validate" => (
            format!("/ls/{prefix}/v1/licenses/validate"),
            json(serde_json::json!({"license_key": key})),
        ),
        "ls_deactivate" => (
            format!("/ls/{prefix}/v1/licenses/deactivate"),
            form(format!(
                "license_key={key}&instance_id={}",
                ids.ls_instances[0]
            )),
        ),
        "ls_default_activate" => (
            "/v1/licenses/activate".to_owned(),
            json(serde_json::json!({"license_key": key, "instance_name": "Default"})),
        ),
        "ls_default_validate" => (
            "/v1/licenses/validate".to_owned(),
            form(format!("license_key={key}")),
        ),
        "ls_default_deactivate" => (
            "/v1/licenses/deactivate".to_owned(),
            json(serde_json::json!({"license_key": key, "instance_id": ids.ls_instances[1]})),
        ),
        _ => return None,
    })
}
