//! The command line (clap derive). The doc comments here are the `--help` text. Every
//! option also reads an `UPKEEP_*` environment variable; each default is stated once,
//! here.

use crate::admin::AdminCommand;
use crate::defaults;
use crate::model::ByteSize;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

mod licensing;

pub use licensing::{
    ActivationArgs, ActivationCommand, CustomerArgs, CustomerCommand, KeyArgs, KeyCommand,
};

/// `0.1.0 (git 1a2b3c4d5e6f)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("UPKEEP_GIT_REVISION"),
    ")"
);

/// A self-hosted update, license and API-token server for software vendors.
///
/// One binary, no external database. `upkeep serve` runs the server; the other commands
/// administer the store in the data directory: directly when no server runs, or through
/// the running server's admin socket (`<data>/admin.sock`) when one does. Only `serve`
/// and `init` create a data directory; every other command needs an existing one.
#[derive(Debug, Parser)]
#[command(
    name = "upkeep",
    version = VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Data directory (also accepted after the command). Default: `./upkeep-data`, or
    /// `/var/lib/upkeep` when `./upkeep-data` does not exist and `/var/lib/upkeep` does
    /// (the packaged install).
    #[arg(long, env = "UPKEEP_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Print machine-readable JSON instead of text, errors included (also accepted after
    /// the command).
    #[arg(long, env = "UPKEEP_JSON")]
    pub json: bool,

    /// Log format on stderr. The level comes from RUST_LOG (default: info for `serve`,
    /// warn otherwise; dependencies stay at warn unless RUST_LOG names them).
    #[arg(long, env = "UPKEEP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
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

/// Options of every command that works on a data directory's store (not `serve`).
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// Data directory. Default: `./upkeep-data`, or `/var/lib/upkeep` when
    /// `./upkeep-data` does not exist and `/var/lib/upkeep` does (the packaged install).
    /// Only `upkeep init` and `upkeep serve` create it.
    #[arg(long, global = true, env = "UPKEEP_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Print machine-readable JSON instead of text, errors included.
    #[arg(long, global = true, env = "UPKEEP_JSON")]
    pub json: bool,

    /// Refuse writes while the data directory's filesystem has less free space than this
    /// (default 32MiB; 0 turns it off). Applies when no server runs: a running server
    /// keeps its own `serve --min-free-space`.
    #[arg(
        long,
        global = true,
        env = "UPKEEP_MIN_FREE_SPACE",
        value_name = "SIZE"
    )]
    pub min_free_space: Option<ByteSize>,

    /// Most tokens one account may hold (default 1000); `token create` beyond it is
    /// refused. Applies when no server runs: a running server keeps its own
    /// `serve --max-tokens-per-account`.
    #[arg(
        long,
        global = true,
        env = "UPKEEP_MAX_TOKENS_PER_ACCOUNT",
        value_name = "N"
    )]
    pub max_tokens_per_account: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (creates the data directory on first start).
    Serve(ServeArgs),
    /// Create a data directory with an empty store and a server key, then exit. Leaves a
    /// directory that already holds a store as it is.
    Init {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage accounts (vendors).
    Account(AccountArgs),
    /// Manage account API tokens.
    Token(TokenArgs),
    /// Manage operator tokens (server-wide admin tokens for the `/_/` API).
    #[command(name = "operator-token")]
    OperatorToken(OperatorTokenArgs),
    /// Manage plan licenses (keys an account applies to itself to raise its activation
    /// limit).
    License(LicenseArgs),
    /// Manage an account's products (plugins, themes, apps).
    Product(ProductArgs),
    /// Ship and manage releases: `upkeep release push plugin.zip`.
    Release(ReleaseArgs),
    /// Manage an account's customers (SPEC §9).
    Customer(CustomerArgs),
    /// Manage customers' download keys.
    Key(KeyArgs),
    /// Manage download keys' activations.
    Activation(ActivationArgs),
    /// Write a consistent snapshot of the store to FILE (works while the server runs;
    /// writes continue meanwhile). The server key is not included: keep
    /// `<data>/server.key` safe separately.
    Backup {
        /// Where to write the backup (JSON Lines; replaced atomically).
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a data directory (which one, permissions, server key, schema version, size,
    /// free space) and say what to fix. Changes nothing; exits 1 if something fails.
    Doctor {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the man page (roff) to stdout: `upkeep man > upkeep.1`.
    Man,
    /// Print shell completions to stdout, e.g. `upkeep completions bash`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Rebuild a data directory from a backup (creating the directory if needed). The
    /// data directory must not hold a store yet (and no server may be running on it).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The `server.key` of the server the backup came from, so operator-token values
        /// can still be read back. Without it a new key is made (tokens keep working).
        #[arg(long, env = "UPKEEP_SERVER_KEY")]
        server_key: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

impl Command {
    /// The store options of a command that has them.
    pub fn store_args(&self) -> Option<&StoreArgs> {
        match self {
            Command::Init { store }
            | Command::Backup { store, .. }
            | Command::Doctor { store }
            | Command::Restore { store, .. } => Some(store),
            Command::Account(args) => Some(&args.store),
            Command::Token(args) => Some(&args.store),
            Command::OperatorToken(args) => Some(&args.store),
            Command::License(args) => Some(&args.store),
            Command::Product(args) => Some(&args.store),
            Command::Release(args) => Some(&args.store),
            Command::Customer(args) => Some(&args.store),
            Command::Key(args) => Some(&args.store),
            Command::Activation(args) => Some(&args.store),
            Command::Serve(_) | Command::Man | Command::Completions { .. } => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: AccountCommand,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Args)]
pub struct OperatorTokenArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: OperatorTokenCommand,
}

#[derive(Debug, Args)]
pub struct LicenseArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: LicenseCommand,
}

#[derive(Debug, Args)]
pub struct ProductArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: ProductCommand,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: ReleaseCommand,
}

/// `revoke NAME`, or the older `revoke --name NAME`.
fn either_name(name: Option<String>, flag: Option<String>) -> Result<String, crate::Error> {
    name.or(flag)
        .ok_or_else(|| crate::Error::invalid("name", "give the token's name: `revoke NAME`"))
}

impl AccountCommand {
    /// The admin command this runs (the admin socket's own shape).
    pub fn into_admin(self) -> AdminCommand {
        match self {
            AccountCommand::Create {
                name,
                email,
                prefix,
            } => AdminCommand::AccountCreate {
                name,
                email,
                prefix,
            },
            AccountCommand::List => AdminCommand::AccountList,
            AccountCommand::Delete { prefix } => AdminCommand::AccountDelete { prefix },
            AccountCommand::SetDefault { prefix } => AdminCommand::AccountSetDefault { prefix },
        }
    }
}

impl TokenCommand {
    /// The admin command this runs.
    ///
    /// # Errors
    /// `revoke` without a name.
    pub fn into_admin(self) -> Result<AdminCommand, crate::Error> {
        Ok(match self {
            TokenCommand::Create {
                account,
                name,
                scopes,
                expires,
            } => AdminCommand::TokenCreate {
                account,
                name,
                scopes,
                expires,
            },
            TokenCommand::List { account } => AdminCommand::TokenList { account },
            TokenCommand::Revoke {
                account,
                name,
                name_flag,
            } => AdminCommand::TokenRevoke {
                account,
                name: either_name(name, name_flag)?,
            },
        })
    }
}

impl OperatorTokenCommand {
    /// The admin command this runs.
    ///
    /// # Errors
    /// `revoke` without a name.
    pub fn into_admin(self) -> Result<AdminCommand, crate::Error> {
        Ok(match self {
            OperatorTokenCommand::Create {
                name,
                read_only,
                expires,
            } => AdminCommand::OperatorTokenCreate {
                name,
                read_only,
                expires,
            },
            OperatorTokenCommand::List => AdminCommand::OperatorTokenList,
            OperatorTokenCommand::Revoke { name, name_flag } => AdminCommand::OperatorTokenRevoke {
                name: either_name(name, name_flag)?,
            },
        })
    }
}

impl LicenseCommand {
    /// The admin command this runs.
    pub fn into_admin(self) -> AdminCommand {
        match self {
            LicenseCommand::Issue { limit, expires } => {
                AdminCommand::LicenseIssue { limit, expires }
            }
            LicenseCommand::List => AdminCommand::LicenseList,
            LicenseCommand::Revoke { id } => AdminCommand::LicenseRevoke { id },
        }
    }
}

impl ProductCommand {
    /// The admin command this runs.
    pub fn into_admin(self) -> AdminCommand {
        match self {
            ProductCommand::Create {
                account,
                slug,
                kind,
                name,
                license,
            } => AdminCommand::ProductCreate {
                account,
                slug,
                kind,
                name,
                license,
            },
            ProductCommand::List { account } => AdminCommand::ProductList { account },
            ProductCommand::Delete { account, slug } => {
                AdminCommand::ProductDelete { account, slug }
            }
        }
    }
}

/// What a `release` command runs.
#[derive(Debug)]
pub enum ReleaseAction {
    /// An admin command, like the others.
    Admin(AdminCommand),
    /// `release push`: not an admin command, since it carries a file (see
    /// [`crate::admin::PushRequest`]).
    Push(Box<PushArgs>),
}

impl ReleaseCommand {
    /// What this runs.
    pub fn into_action(self) -> ReleaseAction {
        ReleaseAction::Admin(match self {
            ReleaseCommand::Push(args) => return ReleaseAction::Push(Box::new(args)),
            ReleaseCommand::List { account, product } => {
                AdminCommand::ReleaseList { account, product }
            }
            ReleaseCommand::Publish(which) => AdminCommand::ReleasePublish {
                account: which.account,
                product: which.product,
                version: which.version,
                published: true,
            },
            ReleaseCommand::Unpublish(which) => AdminCommand::ReleasePublish {
                account: which.account,
                product: which.product,
                version: which.version,
                published: false,
            },
            ReleaseCommand::Delete(which) => AdminCommand::ReleaseDelete {
                account: which.account,
                product: which.product,
                version: which.version,
            },
        })
    }
}

/// `upkeep serve`'s flags: every server setting lives here, and only here (other
/// commands neither show nor accept them). New serve flags go in this struct.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Data directory, created (mode 0700) on first start. Default: `./upkeep-data`, or
    /// `/var/lib/upkeep` when `./upkeep-data` does not exist and `/var/lib/upkeep` does.
    #[arg(long, env = "UPKEEP_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Log format on stderr (overrides the one given before `serve`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Validate the settings, print them, and exit without creating, opening or
    /// listening on anything.
    #[arg(long)]
    pub check_config: bool,

    /// Address and port to listen on. Put a TLS-terminating proxy in front to expose it.
    #[arg(long, env = "UPKEEP_LISTEN", default_value = defaults::LISTEN)]
    pub listen: String,

    /// `activationLimit` of accounts with no plan license: how many counted customer
    /// activations an account may have in all. 0 = unlimited (a self-hosting vendor is never
    /// blocked; an operator hosting several vendors sets a limit or sells plan licenses).
    #[arg(long, env = "UPKEEP_DEFAULT_ACTIVATION_LIMIT", default_value_t = defaults::ACTIVATION_LIMIT)]
    pub default_activation_limit: u32,

    /// Refuse writes (503) while the data directory's filesystem has less free space than
    /// this, so the store never meets a full disk mid-write. 0 turns it off.
    #[arg(long, env = "UPKEEP_MIN_FREE_SPACE", default_value_t = ByteSize(defaults::MIN_FREE_SPACE))]
    pub min_free_space: ByteSize,

    /// Most tokens one account may hold; creating more is refused (409 token_quota). At
    /// least 1.
    #[arg(
        long,
        env = "UPKEEP_MAX_TOKENS_PER_ACCOUNT",
        default_value_t = defaults::MAX_TOKENS_PER_ACCOUNT
    )]
    pub max_tokens_per_account: usize,

    /// New activations one download key may make in 24 hours; more are refused
    /// (`rate_limited`). 0 turns the limit off.
    #[arg(
        long,
        env = "UPKEEP_MAX_ACTIVATIONS_PER_DAY",
        default_value_t = defaults::MAX_ACTIVATIONS_PER_DAY
    )]
    pub max_activations_per_day: u32,

    /// Deactivations a key holder may make per download key in 30 days on the public
    /// licensing routes (counted in the store; more answer `rate_limited`). 0 turns it off.
    #[arg(
        long,
        env = "UPKEEP_MAX_DEACTIVATIONS_PER_MONTH",
        default_value_t = defaults::MAX_DEACTIVATIONS_PER_MONTH
    )]
    pub max_deactivations_per_month: u32,

    /// Development sites, activated without using a key's limit (at most 10 per key):
    /// comma-separated host globs (`*.local,staging.*`); local and private IP literals
    /// always count as development sites. Default: the built-in list.
    #[arg(long, env = "UPKEEP_DEV_SITE_PATTERNS")]
    pub dev_site_patterns: Option<String>,

    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, env = "UPKEEP_MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Largest upload (a release zip or file), e.g. `256MiB` or `1GiB`; larger ones get
    /// 413 before a byte is stored. Uploads stream to disk, never whole into memory.
    #[arg(long, env = "UPKEEP_MAX_UPLOAD", default_value_t = ByteSize(defaults::MAX_UPLOAD))]
    pub max_upload: ByteSize,

    /// The public base URL of this server (e.g. `https://updates.example.com`): download
    /// links, changelog pages and the URLs `release push` prints are built from it. When
    /// unset, links are built from each request's Host header (fine on loopback and in
    /// development; set it in production).
    #[arg(long, env = "UPKEEP_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// How long a signed download link handed out by an update check works (e.g. `24h`).
    #[arg(long, env = "UPKEEP_DOWNLOAD_URL_TTL", default_value = defaults::DOWNLOAD_URL_TTL, value_parser = humantime::parse_duration)]
    pub download_url_ttl: Duration,

    /// Most connections served at once; more wait in the listen backlog.
    #[arg(long, env = "UPKEEP_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Most connections one client address may hold at once (under --trust-proxy every
    /// peer is a trusted proxy and exempt). An address at its cap has its idle keep-alive
    /// connections closed to make room; with none idle, its new connection is refused.
    #[arg(
        long,
        env = "UPKEEP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = defaults::MAX_CONNECTIONS_PER_ADDRESS
    )]
    pub max_connections_per_address: usize,

    /// Time a client gets to send request headers, and how long an idle keep-alive
    /// connection stays open (e.g. `10s`).
    #[arg(long, env = "UPKEEP_HEADER_TIMEOUT", default_value = defaults::HEADER_TIMEOUT, value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// Time a client gets to send a whole request body.
    #[arg(long, env = "UPKEEP_BODY_TIMEOUT", default_value = defaults::BODY_TIMEOUT, value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// On SIGTERM/SIGINT, time in-flight requests get to finish; a write still under way
    /// after it gets as long again to end before the last flush.
    #[arg(long, env = "UPKEEP_DRAIN_TIMEOUT", default_value = defaults::DRAIN_TIMEOUT, value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// How often token `last_used_at` times are written to disk (they are also written at
    /// shutdown).
    #[arg(long, env = "UPKEEP_PERSIST_USES_EVERY", default_value = defaults::PERSIST_USES_EVERY, value_parser = humantime::parse_duration)]
    pub persist_uses_every: Duration,

    /// Failed authentications allowed per client address per minute; past it the address
    /// gets 429 (with Retry-After) on every route that needs a token. 0 disables.
    #[arg(long, env = "UPKEEP_AUTH_FAILURES_PER_MINUTE", default_value_t = defaults::AUTH_FAILURES_PER_MINUTE)]
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

#[derive(Debug, Clone, Subcommand)]
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
    /// Make an account the default: the one the bare host's public routes serve (`/` for
    /// EDD and wp-update-server requests). The first account created is the default until
    /// this changes it.
    SetDefault {
        /// The account's prefix.
        prefix: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
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
        #[arg(long, env = "UPKEEP_TOKEN_EXPIRES", value_parser = parse_lifetime)]
        expires: Option<Duration>,
    },
    /// List an account's tokens (never their secrets).
    List {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
    },
    /// Revoke (delete) an account token; it stops working at once:
    /// `upkeep token revoke --account P NAME`.
    Revoke {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The token's name.
        #[arg(required_unless_present = "name_flag")]
        name: Option<String>,
        /// The older spelling of NAME (`--name NAME`), still accepted.
        #[arg(
            long = "name",
            id = "name_flag",
            value_name = "NAME",
            hide = true,
            conflicts_with = "name"
        )]
        name_flag: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
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
        #[arg(long, env = "UPKEEP_TOKEN_EXPIRES", value_parser = parse_lifetime)]
        expires: Option<Duration>,
    },
    /// List operator tokens (never their values).
    List,
    /// Revoke (delete) an operator token; it stops working at once:
    /// `upkeep operator-token revoke NAME`.
    Revoke {
        /// The token's name.
        #[arg(required_unless_present = "name_flag")]
        name: Option<String>,
        /// The older spelling of NAME (`--name NAME`), still accepted.
        #[arg(
            long = "name",
            id = "name_flag",
            value_name = "NAME",
            hide = true,
            conflicts_with = "name"
        )]
        name_flag: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum LicenseCommand {
    /// Issue a plan license and print its key (shown once).
    Issue {
        /// Activation limit it grants the account that applies it: 1 or more.
        #[arg(long, env = "UPKEEP_LICENSE_LIMIT", allow_hyphen_values = true, value_parser = parse_license_limit)]
        limit: u32,
        /// Lifetime, e.g. `365d`; never expires when omitted.
        #[arg(long, env = "UPKEEP_LICENSE_EXPIRES", value_parser = parse_lifetime)]
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

#[derive(Debug, Clone, Subcommand)]
pub enum ProductCommand {
    /// Create a product: `upkeep product create --slug my-plugin --kind plugin`.
    /// (`release push` creates plugins and themes from their package by itself.)
    Create {
        /// The account's prefix; may be omitted when the store holds exactly one account.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: Option<String>,
        /// The slug (the WordPress folder name): `^[a-z0-9][a-z0-9._-]{0,63}$`, unique in
        /// the account, never changed.
        #[arg(long)]
        slug: String,
        /// plugin, theme or app.
        #[arg(long, value_parser = ["plugin", "theme", "app"])]
        kind: String,
        /// Display name, 1–200 chars, unique in the account; the slug when omitted.
        #[arg(long)]
        name: Option<String>,
        /// Who may download: free (anyone), static_keys (a list of keys on the product) or
        /// download_keys (customer keys with activations). Default: free.
        #[arg(long, value_parser = ["free", "static_keys", "download_keys"])]
        license: Option<String>,
    },
    /// List an account's products.
    List {
        /// The account's prefix; may be omitted when the store holds exactly one account.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: Option<String>,
    },
    /// Delete a product with all its versions, files and static keys (permanent):
    /// `upkeep product delete --account P SLUG`.
    Delete {
        /// The account's prefix; may be omitted when the store holds exactly one account.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: Option<String>,
        /// The product's slug.
        slug: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ReleaseCommand {
    /// Ship a release in one step: read the package (a WordPress plugin or theme zip),
    /// create the product if missing (from the package's headers), store the file as the
    /// version's primary file, publish it (unless --draft), and print the product's
    /// update URLs. Pushing the same file again changes nothing. On a terminal the
    /// upload's progress goes to stderr. With a server running, the file is streamed to it
    /// over the admin socket (it need not be readable by the server's user).
    #[command(disable_version_flag = true)]
    Push(PushArgs),
    /// List versions, newest first, of one product or of every product of the account.
    List {
        /// The account's prefix; may be omitted when the store holds exactly one account.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: Option<String>,
        /// Only this product (slug).
        #[arg(long)]
        product: Option<String>,
    },
    /// Publish a version (sites are offered it at their next check).
    #[command(disable_version_flag = true)]
    Publish(VersionArgs),
    /// Unpublish ("pull") a version: sites stop being offered it at their next check.
    #[command(disable_version_flag = true)]
    Unpublish(VersionArgs),
    /// Delete a version and its files (permanent).
    #[command(disable_version_flag = true)]
    Delete(VersionArgs),
}

/// `release publish|unpublish|delete --product SLUG VERSION`.
#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// The account's prefix; may be omitted when the store holds exactly one account.
    #[arg(long, env = "UPKEEP_ACCOUNT")]
    pub account: Option<String>,
    /// The product's slug.
    #[arg(long)]
    pub product: String,
    /// The version (`1.2` finds `1.2.0`).
    pub version: String,
}

/// `release push`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The package: a zip with one top-level folder, the slug (plugins, themes), or any
    /// file for an app (then --product and --version are needed).
    pub file: PathBuf,
    /// The account's prefix; may be omitted when the store holds exactly one account.
    #[arg(long, env = "UPKEEP_ACCOUNT")]
    pub account: Option<String>,
    /// The product (slug). Omitted: the package's folder names it, and a missing product
    /// is created from the package's headers. Given: the product must exist.
    #[arg(long)]
    pub product: Option<String>,
    /// The version; for a plugin or theme it must match the package's `Version:` header.
    #[arg(long)]
    pub version: Option<String>,
    /// dev, alpha, beta, rc or stable; default: from the version's pre-release tag.
    #[arg(long, value_parser = ["dev", "alpha", "beta", "rc", "stable"])]
    pub maturity: Option<String>,
    /// A file holding the release notes (Markdown, UTF-8, at most 64 KiB).
    #[arg(long, value_name = "FILE")]
    pub notes: Option<PathBuf>,
    /// Staged rollout: the % of sites offered this version (1–100, default 100).
    #[arg(long, value_name = "N")]
    pub rollout: Option<u8>,
    /// Leave the version unpublished (`upkeep release publish` publishes it later).
    #[arg(long)]
    pub draft: bool,
    /// License model of a product this push creates: free (default), static_keys or
    /// download_keys. Ignored when the product exists.
    #[arg(long, value_parser = ["free", "static_keys", "download_keys"])]
    pub license: Option<String>,
    /// Base of the printed update URLs, as sites reach the server (e.g.
    /// `https://updates.example.com`).
    #[arg(long, env = "UPKEEP_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// The server's listen address: the printed URLs are `http://ADDR/…` when
    /// --public-url is not set (fine on the server's own machine).
    #[arg(long, env = "UPKEEP_LISTEN", default_value = defaults::LISTEN, value_name = "ADDR")]
    pub listen: String,
}

/// A lifetime for `--expires`: `90d`, `12h`, `2w`, `1y` (humantime). A bare number is
/// refused with a hint, since humantime would suggest milliseconds for a token lifetime.
///
/// # Errors
/// No unit, an unknown unit, or not a duration at all.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{trimmed}` has no unit: did you mean {trimmed}d ({trimmed} days)? \
             Use d (days), w (weeks), h (hours) or y (years), e.g. 90d"
        ));
    }
    let lifetime = humantime::parse_duration(trimmed)
        .map_err(|err| format!("`{trimmed}` is not a lifetime like 90d, 12h or 1y ({err})"))?;
    if lifetime.is_zero() {
        return Err("a lifetime must be longer than 0; omit --expires for never".to_owned());
    }
    Ok(lifetime)
}

/// `license issue --limit`: a whole number of activations, 1 or more.
///
/// # Errors
/// Zero, negative (`-1` is not "unlimited" here) or not a number.
pub fn parse_license_limit(text: &str) -> Result<u32, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 => {
            u32::try_from(n).map_err(|_| format!("{n} is too large (at most {})", u32::MAX))
        }
        Ok(n) => Err(format!(
            "{n} is not a limit: a plan license grants 1 or more activations \
             (there is no unlimited plan license; -1 and 0 are refused)"
        )),
        Err(_) => Err(format!("`{text}` is not a whole number of activations")),
    }
}
