//! # upkeep
//!
//! A self-hosted, single-binary update server for software vendors: accounts, plan
//! licenses, scoped API tokens and the release catalogue (products, versions, files) in an
//! embedded sled store with file content in a blob directory, spoken through the admin API
//! families — the WunderUpdates API (`/v1/account…`, `/v1/plugins…`), UpdaterCloud
//! (`/api/v1/…`) and a Query-style operator API (`/_/…`) — and the public update checks
//! every customer's site makes, in each update client's own protocol (`/v1/public/…`,
//! `/updates/…`, `/edd/…`, `/api/v1/products/{id}/update`, `/dl/…`, `/`). How to run it is
//! `README.md`; every route is a row of [`api::table`], documented at `GET /openapi.json`.
//!
//! # Layout (reading order; one line a module)
//!
//! - `main.rs` — thin: parse, init logging, dispatch, map errors to an exit code; the
//!   global allocator (mimalloc, without transparent huge pages: see `Cargo.toml`).
//! - [`cli`] — clap definitions (their doc comments are `--help`); converts admin
//!   commands into [`admin::AdminCommand`]; `cli/licensing.rs`: `customer`, `key`,
//!   `activation`. [`defaults`] — every default setting, once.
//! - [`config`] — `serve` flags → a validated [`config::Config`]; writes nothing.
//! - [`datadir`] — which data directory a command uses and the checks before touching it.
//! - [`server`] — `run(listener, app, shutdown)`: accept loop, connection slots (total and
//!   per address, idle ones closed first), header timeout, drain, final flush.
//! - [`app`] — [`App`]: the shared state (store, event bus, clock, settings, throttle,
//!   metrics) and [`App::ctx`]/[`App::write`], the service contexts of a request.
//! - [`http`] — the edge, knowing no family: `service.rs` (the pipeline, `App::handle`),
//!   [`http::route`] (rows, one matcher, body policies, [`http::route::Call`]),
//!   [`http::auth`] (credentials, [`http::auth::Caller`], [`http::auth::Need`]),
//!   [`http::request`] (bodies, JSON naming the bad field, structs read from objects only,
//!   paging), [`http::body`] (streamed bodies both ways, `Range`), [`http::response`] (JSON, files,
//!   the error envelope), [`http::dto`] (wire shapes), [`http::upload`] (an upload —
//!   multipart or raw — streamed into the blob store; refused uploads leave nothing).
//! - [`api`] — the families, each a folder (`wunderupdates/`, `updatercloud/`, `query/`)
//!   or file (`ops.rs`) with its `ROWS`, its handlers (wire ⇄ service call) and its
//!   OpenAPI operations (`openapi.json`); [`api::table`] gathers the rows,
//!   [`api::openapi`] builds the document from them. `updatercloud/catalog.rs` is the
//!   catalogue of §7.1 (groups, products, versions, files, the one-call release);
//!   [`api::public`] the public update checks and downloads of §8 (one adapter per
//!   dialect over [`update::decide`]; `public/edd.rs` is EDD's `get_version` and the
//!   root `/` dispatch for the default account, reached from `ops.rs`);
//!   `public/licensing/` is the key holders' licensing of §9.2 over `service::licensing`,
//!   one file per dialect (`updatercloud.rs`, `edd.rs` for EDD's license actions,
//!   `lemon_squeezy.rs`) and what they share in `mod.rs`. `wunderupdates/catalog.rs` is the
//!   catalogue as WunderUpdates sees it (`/v1/plugins…`, `/v1/themes…`, §7.2): one set of
//!   handlers for both kinds, uploads through `http::upload`, static keys sealed with
//!   [`secrets::KeyVault`].
//! - [`service`] — the use cases, each rule once: `tokens.rs`, `accounts.rs`,
//!   `plan_licenses.rs`, `catalog/` (`products.rs`, `versions.rs` with files,
//!   `release.rs` the one-call release; every §7 rule: publishing needs a file, published
//!   files are immutable, the idempotent release), `licensing.rs` (customers, download
//!   keys, activations; `licensing/validation.rs`: `validate`/`standing`/`check`/
//!   `activate`/`deactivate` for the public dialects and the update decision),
//!   `reports.rs` (§10: `flush` moves the in-memory counts into the stored rollups,
//!   `daily` reads stored + unflushed, as the report routes will); an
//!   [`service::Actor`] on every call;
//!   [`service::Done`] publishes domain events after the write is durable;
//!   [`service::write`] runs writes off the runtime. HTTP, the admin CLI and the admin
//!   socket all call these.
//! - [`admin`] — the admin commands' output (text and JSON), over the services;
//!   `admin/release.rs`: `release push` (`PushRequest`: planned, stored, released) and its
//!   upload progress; `admin/licensing.rs`: `customer`, `key`, `activation`.
//! - [`control`] — the admin socket (`<data>/admin.sock`), its own versioned protocol; a
//!   pushed file's bytes follow its request line (never a path, never inside the JSON).
//! - [`doctor`], [`man`] — `upkeep doctor` and `upkeep man`.
//! - [`store`] — the only module that knows sled and bincode; its public surface speaks
//!   domain types only. `mod.rs` (the `Store`, errors, `write`, `Pending`), one file per
//!   aggregate (`accounts.rs`, `tokens.rs`, `plan_licenses.rs`, `catalog.rs`: groups,
//!   products, versions with their files, keyed by account so another account's id is
//!   simply absent; `licensing.rs`: customers, keys, activations, `activation_usage`,
//!   the holders' deactivations in their month (`holder_deactivations`);
//!   `license_uses.rs`: key checks noted in memory, written in batches;
//!   `reports.rs`: the daily rollups per account, product and UTC day, §10),
//!   [`store::schema`] (the
//!   one typed table of trees), `key.rs` (the only place key bytes are built), `codec.rs`,
//!   `tx.rs` (typed transactions), `page.rs` (opaque versioned cursors), `index_load.rs`,
//!   `commit.rs` (group commit), `migrate.rs`, [`store::backup`], `files.rs`,
//!   `token_index.rs` ([`store::TokenIndex`]: also each account's token count, for the
//!   quota), `key_index.rs` (download keys by lookup hash), `activation_index.rs` (each
//!   key's status, expiry, products and activated sites, by key id: with the key index, an
//!   update check's key check reads no record), `snapshot.rs` (`<data>/index.snapshot`,
//!   the three indexes); the operator tokens
//!   are also kept in memory (listed without a sled read),
//!   [`store::blobs`] (file content by blake3 hash in `<data>/blobs/`, `blob_refs` counts).
//! - [`package`] — reads a WordPress zip (SPEC §7): headers, readme as safe HTML; pure.
//! - [`update`] — the public update checks (SPEC §8): the decision (`decide.rs`: the
//!   candidate for the channel, rollout, requirements, may-download, over catalogue views
//!   cached per store generation — no store read on the hot path), the dialect-neutral
//!   answer (`answer.rs`, borrowing the view), one renderer per dialect (`render.rs`:
//!   JSON bytes, no `Value` trees; `golden.rs` pins their exact bytes), PHP `serialize()` for
//!   EDD (`php.rs`), signed `/dl/` links (`link.rs`), form and batch parsing (`request.rs`),
//!   counts for reports (`counts.rs`: per account, product and UTC day, and downloads per
//!   file, in memory — no write on the request path — flushed to the store by the server
//!   every minute and at graceful shutdown through `service::reports`, the files'
//!   `downloads` in the same transaction as the rollups).
//! - [`model`] — records and pure rules: accounts, tokens, plan licenses, scopes, time,
//!   sizes, the catalogue ([`model::catalog`]: products, versions, files, random ids).
//!   [`token`] — the `upk_…` format, pure.
//!   Releases: `version.rs` (semver ∩ PHP), `channel.rs`, `rollout.rs` (§8.3), pure.
//!   Licensing (§9): [`model::licensing`] (customers, download keys, activations and
//!   their field rules), [`model::license_key`] (key generators, accepted keys, lookup
//!   form), [`model::site`] (site normalization, development sites, masked hosts), pure.
//!   Reports (§10): [`model::report`] (`Day`, `DayRollup`), pure.
//! - [`secrets`] — license keys at rest (§9): [`secrets::KeyVault`], keyed lookup hashes
//!   and sealed values (XChaCha20-Poly1305), subkeys derived from `server.key`; pure.
//! - [`error`] — the use-case error: one `status()`, one `code()`.
//! - [`metrics`], [`throttle`], [`systemd`], [`clock`], [`telemetry`] — Prometheus
//!   counters, failed-authentication limits, readiness, time (manual in tests), logging
//!   (the escaped request line, the `upkeep::audit` change log).
//! - `base64url` — the strict unpadded codec of download-link tokens and list cursors.
//! - `swar` — byte tests eight bytes at a time, shared by the hot path's scans (JSON
//!   escaping, the log line's escape check, form decoding, the cuts of a query at `&`
//!   and `=`).
//!
//! # Adding a route (three places)
//!
//! 1. **Its row**, in its family's `ROWS` (`src/api/<family>/mod.rs`): method, name, path
//!    pattern (`{param}` segments, any length), [`http::auth::Need`], the handler, and
//!    `.without_body()` or a streamed body policy if it is not the default (GET: none,
//!    others: JSON), and `.refusing(f)` when its dialect answers a request it cannot take
//!    (a body too large, too slow or unreadable, input that does not parse) in its own
//!    shape (EDD, Lemon Squeezy, UpdaterCloud's key routes: SPEC §3; every public row
//!    that reads a body needs one, but our own batch check). When every row of a path
//!    refuses so, a method none of them takes is a `405` in that shape too.
//!    Add its OpenAPI operation under the row's name to the family's `openapi.json` —
//!    every test run fails until the row has one.
//! 2. **Its handler**, beside the row: parse the wire shape (`call.param`,
//!    `request::json`…), call the service, render the family's view. A read is
//!    `Handler::Read` (answers at once, nothing boxed), a write `Handler::Write` (a boxed
//!    future owning the request); a row that is mostly read, sometimes written (EDD's URL)
//!    is `Handler::ReadFirst`, whose read hands the request on by answering `None`.
//! 3. **Its service call**, in `src/service/<aggregate>.rs`: the rules, the store write,
//!    the events. Writes from HTTP go through [`App::write`] (off the runtime).
//!
//! Matching, 404/405 + `Allow`, authentication before the body, the second credential
//! check after it, metrics by route and the OpenAPI path all follow from the row.
//!
//! # Invariants
//!
//! - Layering: `main → cli/config → server → http::service → api → service → store →
//!   model`; `http::route`, `http::auth`, `http::request` are the edge's tools, used by
//!   `api`. `model` and `token` know nothing else; `store` knows no HTTP; `service` knows
//!   no HTTP, JSON or sled; only `store` names `sled` or `bincode`; records never reach
//!   the wire without a view in `http::dto`.
//! - A rule lives once: in the service (or, if pure, the model). Adapters parse and render.
//! - A credential is checked when the request *executes*: after its body is read, again,
//!   and a write checks it once more under the store's write lock
//!   (`Store::as_credential`; SPEC §2). A route that takes no body never reads one.
//! - A `2xx` to a write means it is on disk: store writes return a `Pending` value that is
//!   released only by `durable()` (group commit) or `durable_blocking()`; a service's
//!   events are published only then.
//! - A failed request changes nothing: validation and domain refusals happen before or
//!   inside one sled transaction (over every tree, under the store's write lock), and the
//!   in-memory indexes change only after its commit. One exception, kept narrow: if the
//!   flush after a commit fails (the disk failed), the change stays applied in memory and
//!   the store refuses all further writes until restarted; the free-space guard exists
//!   so that this does not happen on a full disk.
//! - The index snapshot is used only if its stamp equals the store's, and every change to
//!   the store writes a new stamp in the same transaction: a snapshot older than the
//!   store (a crash after writes, a copied-back file) is never trusted.
//! - Public requests never write for reports: counts are kept in memory and added to the
//!   stored rollups in the background (every `report_flush_every`, 60 s, and at graceful
//!   shutdown); a failed flush keeps them for the next, a crash loses at most that
//!   minute (SPEC §10).
//! - A write that finds nothing to change writes nothing: no commit, no flush to wait
//!   for, no move of the store's generation (which would throw away every cached
//!   catalogue view). Refusals are decided before or inside the write, and a body that
//!   finds, under the lock, that nothing changes (an activation already there) says so
//!   (`Store::write_unless_unchanged`).
//! - Uploads never pass whole through memory: bodies stream into `<data>/blobs/` (temp
//!   file, hash, fsync, rename, directory fsync), and only then is the record committed.
//! - No secret is stored or logged: tokens and license keys exist as `blake3` hashes only
//!   (static license keys as keyed hashes plus values sealed with a key from `server.key`);
//!   the secret appears once, in the response (or CLI output) that creates it. Operator
//!   token values can be derived again, but only with `server.key`, which is never in the
//!   store nor in a backup. Events and the audit log carry names and ids, never secrets.
//! - A malformed token is refused before any store access; unknown, malformed, expired and
//!   inactive tokens get the same `401`; only failed authentications are throttled.
//! - The pipeline never fails: every `Err` becomes a response in `http::service`.
//! - Panics are bugs. Policy: a panic ends only the task it happens in (the connection, in
//!   practice); the hook in [`telemetry`] logs it through `tracing`. The store stays
//!   consistent because nothing is half-applied outside a transaction.

pub mod admin;
pub mod api;
pub mod app;
mod base64url;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod datadir;
pub mod defaults;
pub mod doctor;
pub mod error;
pub mod http;
pub mod man;
pub mod metrics;
pub mod model;
pub mod package;
pub mod secrets;
pub mod server;
pub mod service;
pub mod store;
mod swar;
pub mod systemd;
pub mod telemetry;
pub mod throttle;
pub mod token;
pub mod update;

pub use app::{App, Settings};
pub use error::Error;
pub use store::Store;
