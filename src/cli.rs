//! The command line (clap derive). The doc comments here are the `--help` text. Every
//! option also reads an `UPKEEP_*` environment variable; each default is stated once,
//! here.

use crate::config::ByteSize;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `0.1.0 (git 1a2b3c4d5e6f)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("UPKEEP_GIT_REVISION"),
    ")"
);

/// upkeep: a self-hosted update, license and API-token server for software vendors.
///
/// One binary, no external database. `upkeep serve` runs the server; the other commands
/// administer the store in the data directory: directly when no server runs, or through
/// the running server's admin socket (`<data>/admin.sock`) when one does.
#[derive(Debug, Parser)]
#[command(
    name = "upkeep",
    version = VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Data directory: the store (`db/`), the server key and, while serving, the admin
    /// socket. Created with mode 0700 if missing.
    #[arg(
        long,
        global = true,
        env = "UPKEEP_DATA",
        default_value = "./upkeep-data"
    )]
    pub data: PathBuf,

    /// Print machine-readable JSON instead of text (admin commands).
    #[arg(long, global = true, env = "UPKEEP_JSON")]
    pub json: bool,

    /// `activationLimit` of accounts with no plan license.
    #[arg(
        long,
        global = true,
        env = "UPKEEP_DEFAULT_ACTIVATION_LIMIT",
        default_value_t = 1
    )]
    pub default_activation_limit: u32,

    /// Most tokens one account may hold; creating more is refused (409 token_quota over
    /// HTTP, an error from `token create`). At least 1.
    #[arg(
        long,
        global = true,
        env = "UPKEEP_MAX_TOKENS_PER_ACCOUNT",
        default_value_t = crate::store::DEFAULT_MAX_TOKENS_PER_ACCOUNT
    )]
    pub max_tokens_per_account: usize,

    /// Refuse writes (503 / an error) while the data directory's filesystem has less free
    /// space than this, so the store never meets a full disk mid-write. 0 turns it off.
    #[arg(long, global = true, env = "UPKEEP_MIN_FREE_SPACE", default_value_t = ByteSize(crate::store::DEFAULT_RESERVE))]
    pub min_free_space: ByteSize,

    /// Log format on stderr. The level comes from RUST_LOG (default: info for `serve`,
    /// warn otherwise).
    #[arg(long, global = true, env = "UPKEEP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for journald / log shippers).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Manage accounts (vendors).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage account API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage operator tokens (server-wide admin tokens for the `/_/` API).
    #[command(subcommand, name = "operator-token")]
    OperatorToken(OperatorTokenCommand),
    /// Manage plan licenses (keys an account applies to itself to raise its activation
    /// limit).
    #[command(subcommand)]
    License(LicenseCommand),
    /// Write a consistent snapshot of the store to FILE (works while the server runs;
    /// writes continue meanwhile). The server key is not included: keep
    /// `<data>/server.key` safe separately.
    Backup {
        /// Where to write the backup (JSON Lines; replaced atomically).
        file: PathBuf,
    },
    /// Check a data directory (permissions, server key, schema version, size, free
    /// space) and say what to fix. Changes nothing; exits 1 if something fails.
    Doctor,
    /// Print the man page (roff) to stdout: `upkeep man > upkeep.1`.
    Man,
    /// Print shell completions to stdout, e.g. `upkeep completions bash`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Rebuild a data directory from a backup. The data directory must not hold a store
    /// yet (and no server may be running on it).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The `server.key` of the server the backup came from, so operator-token values
        /// can still be read back. Without it a new key is made (tokens keep working).
        #[arg(long, env = "UPKEEP_SERVER_KEY")]
        server_key: Option<PathBuf>,
    },
}

/// Where `upkeep serve` listens unless told otherwise (shown by `--help`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on. Put a TLS-terminating proxy in front to expose it.
    #[arg(long, env = "UPKEEP_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, env = "UPKEEP_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Most connections served at once; more wait in the listen backlog.
    #[arg(long, env = "UPKEEP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Most connections one client address may hold at once (under --trust-proxy every
    /// peer is a trusted proxy and exempt). An address at its cap has its idle keep-alive
    /// connections closed to make room; with none idle, its new connection is refused.
    #[arg(
        long,
        env = "UPKEEP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,

    /// Time a client gets to send request headers, and how long an idle keep-alive
    /// connection stays open (e.g. `10s`).
    #[arg(long, env = "UPKEEP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// Time a client gets to send a whole request body.
    #[arg(long, env = "UPKEEP_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// On SIGTERM/SIGINT, time in-flight requests get to finish.
    #[arg(long, env = "UPKEEP_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// How often token `last_used_at` times are written to disk (they are also written at
    /// shutdown).
    #[arg(long, env = "UPKEEP_PERSIST_USES_EVERY", default_value = "60s", value_parser = humantime::parse_duration)]
    pub persist_uses_every: Duration,

    /// Failed authentications allowed per client address per minute; past it the address
    /// gets 429 (with Retry-After) on every route that needs a token. 0 disables.
    #[arg(long, env = "UPKEEP_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    pub auth_failures_per_minute: u32,

    /// Behind a reverse proxy: take the client address from the last X-Forwarded-For
    /// entry (the one the proxy appended; a port is stripped), and exempt the proxy from
    /// --max-connections-per-address. Only set it when every request comes through that
    /// proxy, or clients can choose their own address.
    #[arg(long, env = "UPKEEP_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Refuse `GET /_/token/value`: operator-token values are then shown only once, when
    /// created.
    #[arg(long, env = "UPKEEP_NO_TOKEN_VALUES")]
    pub no_token_values: bool,
}

#[derive(Debug, Clone, Subcommand, Serialize, Deserialize)]
pub enum AccountCommand {
    /// Create an account and print its prefix and first API token (shown once).
    Create {
        /// Display name of the vendor.
        #[arg(long, env = "UPKEEP_ACCOUNT_NAME")]
        name: String,
        /// Contact email.
        #[arg(long, env = "UPKEEP_ACCOUNT_EMAIL")]
        email: String,
        /// Public account key, 3–32 chars of [a-z0-9]; random 8 chars when omitted.
        #[arg(long, env = "UPKEEP_ACCOUNT_PREFIX")]
        prefix: Option<String>,
    },
    /// List accounts.
    List,
    /// Delete an account, all its tokens, and free its plan license.
    Delete {
        /// The account's prefix.
        prefix: String,
    },
}

#[derive(Debug, Clone, Subcommand, Serialize, Deserialize)]
pub enum TokenCommand {
    /// Create an account token and print it (shown once).
    Create {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// Token name: 1–64 chars of a-z, 0-9, '-' and '.' (not `.` or `..`); unique in the
        /// account.
        #[arg(long, env = "UPKEEP_TOKEN_NAME")]
        name: String,
        /// Comma-separated scopes: api, read_user, read_releases, manage_releases,
        /// read_licenses, manage_licenses, reports.
        #[arg(
            long,
            env = "UPKEEP_TOKEN_SCOPES",
            value_delimiter = ',',
            default_value = "api"
        )]
        scopes: Vec<String>,
        /// Lifetime (at least 1m), e.g. `90d`, `12h`; never expires when omitted.
        #[arg(long, env = "UPKEEP_TOKEN_EXPIRES", value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
    },
    /// List an account's tokens (never their secrets).
    List {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
    },
    /// Revoke (delete) an account token; it stops working at once.
    Revoke {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The token's name.
        #[arg(long, env = "UPKEEP_TOKEN_NAME")]
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand, Serialize, Deserialize)]
pub enum OperatorTokenCommand {
    /// Create an operator token and print it. Its value can be read back later with
    /// `GET /_/token/value` unless the server runs with `--no-token-values`.
    Create {
        /// 1–64 printable ASCII characters (no leading or trailing space), unique among
        /// operator tokens.
        #[arg(long, env = "UPKEEP_TOKEN_NAME")]
        name: String,
        /// Read-only: may list, but not change anything.
        #[arg(long, env = "UPKEEP_TOKEN_READ_ONLY")]
        read_only: bool,
        /// Lifetime (at least 1m), e.g. `30d`; never expires when omitted.
        #[arg(long, env = "UPKEEP_TOKEN_EXPIRES", value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
    },
    /// List operator tokens (never their values).
    List,
    /// Revoke (delete) an operator token; it stops working at once.
    Revoke {
        /// The token's name.
        #[arg(long, env = "UPKEEP_TOKEN_NAME")]
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand, Serialize, Deserialize)]
pub enum LicenseCommand {
    /// Issue a plan license and print its key (shown once).
    Issue {
        /// Activation limit it grants the account that applies it.
        #[arg(long, env = "UPKEEP_LICENSE_LIMIT")]
        limit: u32,
        /// Lifetime, e.g. `365d`; never expires when omitted.
        #[arg(long, env = "UPKEEP_LICENSE_EXPIRES", value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
    },
    /// List plan licenses (never their keys).
    List,
    /// Revoke a plan license by id; the account using it falls back to the default limit.
    Revoke {
        /// The license id, as `license list` shows it.
        id: u64,
    },
}
