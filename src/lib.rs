//! # upkeep
//!
//! A self-hosted, single-binary server for software vendors: accounts, plan licenses and
//! scoped API tokens in an embedded sled store, spoken through three API families: the
//! WunderUpdates account API (`/v1/account…`), UpdaterCloud personal access tokens
//! (`/api/v1/…`) and a Query-style operator API (`/_/…`). The product contract is
//! `SPEC.md`; how to run it is `README.md`; the route table is [`http::router::ROUTES`].
//!
//! # Layout (reading order)
//!
//! - [`cli`] — clap definitions; their doc comments are `--help`. `main.rs` is thin:
//!   parse, init logging, dispatch, map errors to an exit code.
//! - [`config`] — `serve` flags → validated [`config::Config`]. Writes nothing.
//! - [`datadir`] — which data directory a command uses (`--data`, `./upkeep-data`, or
//!   the packaged `/var/lib/upkeep`) and the checks before one is touched: only `serve`
//!   and `init` (and `restore`) create one; a missing, non-directory or foreign one is
//!   explained with what to do.
//! - [`man`] — `upkeep man`: every option of every command, from the clap definitions.
//! - [`server`] — `run(listener, app, shutdown)`: accept loop, connection cap, header
//!   timeout, graceful drain, final flush. Tests, benches and the binary all start here.
//! - [`app`] — [`app::App`] (store, clock, settings) and `App::handle`, which turns every
//!   request into a response: route → authenticate/authorize → read body → dispatch →
//!   render errors once → log one line.
//! - [`http`] — the edge: [`http::router`] (path, then method; typed params; each
//!   route's [`auth::Need`]), [`http::request`] (limited body, JSON naming the bad field),
//!   [`http::response`] (the error envelope), [`http::dto`] (wire shapes).
//! - `handlers` — one module per API family; parse → call the store → render.
//! - [`admin`] — the admin commands' logic, shared by every transport of the CLI.
//! - [`doctor`] — `upkeep doctor`: checks a data directory without changing it.
//! - [`control`] — the admin socket (`<data>/admin.sock`): a running server executes
//!   admin commands for the CLI.
//! - [`auth`] — token format, generation, parsing, the [`auth::Caller`] and its checks
//!   (it re-exports the token index from the store).
//! - [`store`] — the only module that knows sled and bincode; its public surface speaks
//!   domain types only. `store/mod.rs`: the `Store`, its errors, `write` and `Pending`;
//!   one file per aggregate (`accounts.rs`, `tokens.rs` with grace aliases, rotation and
//!   uses, `plan_licenses.rs`), each adding its own `impl Store`; [`store::schema`]: the
//!   one typed table of trees (name, key type, value type, layout: backups, migrations
//!   and the open read it); `key.rs` (the only place key bytes are built), `codec.rs`
//!   (versioned values), `tx.rs` (typed transactions and reads), `page.rs` (opaque
//!   versioned cursors), `index_load.rs` (open, loading the index, `inspect`), `commit.rs`
//!   (group commit), `migrate.rs`, [`store::backup`] (streamed online backups, restore),
//!   `files.rs` (server key, private files), `token_index.rs` ([`store::TokenIndex`]:
//!   token hash → who, and whether it is a grace secret; every account's plan limit and
//!   when it expires; compact so a million tokens fit in about 150 MB) and `snapshot.rs`
//!   (the index saved at a clean stop, `<data>/index.snapshot`, so a start need not scan
//!   sled).
//! - [`model`] — records and rules: accounts, tokens, plan licenses, scopes, time.
//! - [`error`] — the API error: one `status()`, one `code()`.
//! - [`metrics`] — Prometheus counters and histograms in atomics (`GET /metrics`).
//! - [`throttle`] — failed-authentication limits per client address (`429`).
//! - [`systemd`] — `Type=notify` readiness.
//! - [`clock`], [`telemetry`] — time source (manual in tests) and logging: the filter
//!   (dependencies at warn), the writer queue that drops and counts rather than block,
//!   and the request line (escaped values, redacted query) that `App::handle` emits.
//!
//! # Invariants
//!
//! - Layering: `main → cli/config → server → app → http::router → handlers → store →
//!   model`. `model` knows nothing of HTTP, sled or JSON; `store` knows nothing of HTTP;
//!   only `store` names `sled` or `bincode`; records (`model`) never reach the wire
//!   without a hand-written view in `http::dto`. The CLI side (`admin`, `control`,
//!   `doctor`) calls the store the same way the handlers do.
//! - A `2xx` to a write means it is on disk: store writes return a `Pending` value that is
//!   released only by `durable()` (group commit) or `durable_blocking()`.
//! - A failed request changes nothing: validation and domain refusals happen before or
//!   inside one sled transaction (over every tree, under the store's write lock), and the
//!   in-memory indexes change only after its commit. One exception, kept narrow: if the
//!   flush after a commit fails (the disk failed), the change stays applied in memory and
//!   the store refuses all further writes until restarted; the free-space guard exists
//!   so that this does not happen on a full disk.
//! - The index snapshot is used only if its stamp equals the store's, and every change to
//!   the store writes a new stamp in the same transaction: a snapshot older than the
//!   store (a crash after writes, a copied-back file) is never trusted.
//! - No secret is stored or logged: tokens and license keys exist as `blake3` hashes only;
//!   the secret appears once, in the response (or CLI output) that creates it. Operator
//!   token values can be derived again, but only with `server.key`, which is never in the
//!   store nor in a backup.
//! - A malformed token is refused before any store access; unknown, malformed, expired and
//!   inactive tokens get the same `401`.
//! - The service never fails: every `Err` becomes a response in `app`.
//! - Panics are bugs. Policy: a panic ends only the task it happens in (the connection, in
//!   practice); the hook in [`telemetry`] logs it through `tracing`. The store stays
//!   consistent because nothing is half-applied outside a transaction.

pub mod admin;
pub mod api;
pub mod app;
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
pub mod server;
pub mod service;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod throttle;
pub mod token;

pub use app::{App, Settings};
pub use error::Error;
pub use store::Store;
