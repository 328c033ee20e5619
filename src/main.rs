//! The `upkeep` binary: parse the command line, set up logging, run the command, and map
//! the result to an exit code (0 ok, 2 error; the error on one line of stderr).

use clap::{CommandFactory, FromArgMatches};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use upkeep::admin;
use upkeep::cli::{Cli, Command, ReleaseAction, StoreArgs};
use upkeep::clock::Clock;
use upkeep::config::Config;
use upkeep::datadir::{self, Access, DataDir, DataDirError};
use upkeep::store::{OpenError, backup};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use upkeep::{App, Store, control, telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `upkeep doctor` found a failure (the report says which); exit code 1.
#[derive(Debug)]
struct DoctorFailed;

impl std::fmt::Display for DoctorFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("doctor found problems (see above)")
    }
}

impl std::error::Error for DoctorFailed {}

/// Whether errors should be JSON: `--json` anywhere on the command line, or `UPKEEP_JSON`
/// (read before parsing, so that a usage error is JSON too).
fn json_requested() -> bool {
    std::env::args_os().skip(1).any(|arg| arg == "--json")
        || std::env::var("UPKEEP_JSON")
            .is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "no" | "off"))
}

/// The command line, with `--help` naming the data directory the commands would use.
fn command() -> clap::Command {
    let env_data = std::env::var_os("UPKEEP_DATA").map(std::path::PathBuf::from);
    let note = format!(
        "Data directory right now: {}",
        DataDir::resolve(env_data.as_deref()).describe()
    );
    let mut command = Cli::command().after_help(note.clone());
    for name in [
        "serve",
        "init",
        "account",
        "token",
        "operator-token",
        "license",
        "product",
        "release",
        "backup",
        "doctor",
        "restore",
    ] {
        command = command.mut_subcommand(name, |sub| sub.after_help(note.clone()));
    }
    command
}

fn main() -> ExitCode {
    let json = json_requested();
    let cli = match command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if json
                && !matches!(
                    err.kind(),
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
                )
            {
                let message = err.kind().as_str().map_or_else(
                    || err.to_string().trim().to_owned(),
                    |kind| {
                        let text = err.to_string();
                        let first = text.lines().next().unwrap_or(kind);
                        first.trim_start_matches("error: ").to_owned()
                    },
                );
                eprintln!(
                    "{}",
                    serde_json::json!({"error": "usage", "message": message, "status": null})
                );
                return ExitCode::from(2);
            }
            err.exit()
        }
    };
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let log_format = match &cli.command {
        Command::Serve(args) => args.log_format.unwrap_or(cli.log_format),
        _ => cli.log_format,
    };
    let json = json || cli.json || cli.command.store_args().is_some_and(|args| args.json);
    // Held to the end of `main`: dropping it flushes the log.
    let _log = telemetry::init(log_format, default_level);
    telemetry::install_panic_hook();
    match run(cli, json) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<DoctorFailed>() => ExitCode::from(1),
        Err(err) => {
            if json {
                eprintln!("{}", error_json(err.as_ref()));
            } else {
                let mut line = format!("upkeep: {err}");
                let mut source = err.source();
                while let Some(cause) = source {
                    line.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                eprintln!("{line}");
            }
            ExitCode::from(2)
        }
    }
}

/// An error as `{"status","error","message"}`: the API's envelope, with the API's
/// status and code when the error came from an admin command.
fn error_json(err: &(dyn std::error::Error + 'static)) -> serde_json::Value {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    // `status`: the HTTP status the API gives the same refusal, when there is one.
    let (status, code): (Option<u16>, &str) = if let Some(err) = err.downcast_ref::<upkeep::Error>()
    {
        (Some(err.status().as_u16()), err.code())
    } else if let Some(control::ControlError::Refused { status, code, .. }) =
        err.downcast_ref::<control::ControlError>()
    {
        (Some(*status), code.as_str())
    } else if let Some(err) = err.downcast_ref::<DataDirError>() {
        (None, err.code())
    } else if err.is::<upkeep::config::ConfigError>() {
        (None, "invalid_config")
    } else if let Some(OpenError::Locked(_)) = err.downcast_ref::<OpenError>() {
        (None, "locked")
    } else {
        (None, "error")
    };
    serde_json::json!({"error": code, "message": message, "status": status})
}

fn run(cli: Cli, json: bool) -> Result<(), BoxError> {
    let top_data = cli.data;
    let data_of =
        |store: &StoreArgs| DataDir::resolve(store.data.as_deref().or(top_data.as_deref()));
    let command = match cli.command {
        Command::Serve(args) => {
            let dir = DataDir::resolve(args.data.as_deref().or(top_data.as_deref()));
            let config = Config::from_args(&dir.path, &args)?;
            if args.check_config {
                return check_config(&config, &dir, json);
            }
            // Refuse a file, another user's directory, …, before binding anything.
            if let Some(Access::RootOnly(owner)) = datadir::check_creatable(&dir)? {
                return Err(DataDirError::RootOnForeign {
                    path: dir.path,
                    owner,
                }
                .into());
            }
            return serve(config, dir);
        }
        Command::Init { store } => return init(&data_of(&store), json),
        Command::Doctor { store } => {
            let reserve = store
                .min_free_space
                .map_or(upkeep::store::DEFAULT_RESERVE, |s| s.0);
            let report = upkeep::doctor::run_dir(&data_of(&store), reserve);
            if json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            if report.failed() {
                return Err(Box::new(DoctorFailed));
            }
            return Ok(());
        }
        Command::Man => {
            let mut page = Vec::new();
            upkeep::man::render(&mut page)?;
            return print_bytes(&page);
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "upkeep", &mut script);
            return print_bytes(&script);
        }
        Command::Backup { file, store } => {
            return backup(&data_of(&store), &store, &file, json);
        }
        Command::Restore {
            file,
            server_key,
            store,
        } => {
            return restore(&data_of(&store), &file, server_key.as_deref(), json);
        }
        Command::Account(args) => (data_of(&args.store), args.store, args.command.into_admin()),
        Command::Token(args) => (data_of(&args.store), args.store, args.command.into_admin()?),
        Command::OperatorToken(args) => {
            (data_of(&args.store), args.store, args.command.into_admin()?)
        }
        Command::License(args) => (data_of(&args.store), args.store, args.command.into_admin()),
        Command::Product(args) => (data_of(&args.store), args.store, args.command.into_admin()),
        Command::Release(args) => match args.command.into_action() {
            ReleaseAction::Admin(command) => (data_of(&args.store), args.store, command),
            ReleaseAction::Push(push) => {
                return release_push(&data_of(&args.store), &args.store, *push, json);
            }
        },
        Command::Customer(args) => (data_of(&args.store), args.store, args.command.into_admin()),
        Command::Key(args) => (data_of(&args.store), args.store, args.command.into_admin()),
        Command::Activation(args) => (data_of(&args.store), args.store, args.command.into_admin()),
    };
    let (dir, store_args, command) = command;
    let output = match open_existing(&dir, &store_args)? {
        Opened::Store(store) => {
            let events = upkeep::service::Events::default();
            let ctx = upkeep::service::Ctx {
                store: &store,
                events: &events,
                actor: upkeep::service::Actor::Cli,
                now: Clock::System.now(),
            };
            let output = admin::execute(&ctx, upkeep::defaults::ACTIVATION_LIMIT, &command);
            save_index_snapshot(&store);
            output?
        }
        Opened::Server => control::send(&dir.path, &command)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&output.json)?);
    } else {
        print!("{}", output.text);
    }
    Ok(())
}

/// `upkeep release push FILE`: the request (everything but the bytes) and the file, read
/// here with this user's permissions; stored by this process when no server runs,
/// otherwise streamed to the server's admin socket after the request (see `control`).
/// Progress goes to stderr when it is a terminal (never with `--json`).
fn release_push(
    dir: &DataDir,
    store_args: &StoreArgs,
    args: upkeep::cli::PushArgs,
    json: bool,
) -> Result<(), BoxError> {
    use std::io::IsTerminal;
    let path = &args.file;
    let file = std::fs::File::open(path).map_err(|err| {
        upkeep::Error::invalid("FILE", format!("cannot read {}: {err}", path.display()))
    })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(upkeep::Error::invalid(
            "FILE",
            format!("{} is not a regular file", path.display()),
        )
        .into());
    }
    let filename = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let release_notes = match &args.notes {
        None => None,
        Some(notes) => {
            let bytes = std::fs::read(notes).map_err(|err| {
                upkeep::Error::invalid("--notes", format!("cannot read {}: {err}", notes.display()))
            })?;
            if bytes.len() > upkeep::service::catalog::MAX_TEXT {
                return Err(upkeep::Error::invalid(
                    "--notes",
                    format!(
                        "{} is {} bytes; release notes are at most {} bytes",
                        notes.display(),
                        bytes.len(),
                        upkeep::service::catalog::MAX_TEXT
                    ),
                )
                .into());
            }
            Some(String::from_utf8(bytes).map_err(|_| {
                upkeep::Error::invalid("--notes", format!("{} is not UTF-8 text", notes.display()))
            })?)
        }
    };
    let (base_url, base_from) = admin::url_base(args.public_url.as_deref(), &args.listen)?;
    let request = admin::PushRequest {
        account: args.account,
        product: args.product,
        filename: filename.clone(),
        size: meta.len(),
        version: args.version,
        maturity: args.maturity,
        release_notes,
        rollout: args.rollout,
        draft: args.draft,
        license: args.license,
        base_url,
        base_from,
    };
    let show = !json && std::io::stderr().is_terminal();
    let progress = admin::Progress::new(file, filename, request.size, show);
    let output = match open_existing(dir, store_args)? {
        Opened::Store(store) => {
            let events = upkeep::service::Events::default();
            let ctx = upkeep::service::Ctx {
                store: &store,
                events: &events,
                actor: upkeep::service::Actor::Cli,
                now: Clock::System.now(),
            };
            let output =
                admin::plan_push(&ctx, &request, upkeep::defaults::MAX_UPLOAD).and_then(|plan| {
                    let staged = admin::store_file(&ctx, &request, progress)?;
                    admin::push(&ctx, &request, plan, staged)
                });
            save_index_snapshot(&store);
            output?
        }
        Opened::Server => {
            let mut progress = progress;
            let output = control::push(&dir.path, &request, &mut progress);
            progress.finish();
            output?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&output.json)?);
    } else {
        print!("{}", output.text);
    }
    Ok(())
}

/// Where an admin command runs.
enum Opened {
    /// On the store, opened by this process (no server runs).
    Store(Box<Store>),
    /// Through the running server's admin socket.
    Server,
}

/// Opens the store in an existing data directory, or finds the server running on it.
/// Creates no directory.
fn open_existing(dir: &DataDir, args: &StoreArgs) -> Result<Opened, BoxError> {
    let through_server = || {
        if let Some(size) = args.min_free_space {
            eprintln!(
                "upkeep: note: --min-free-space {size} is not used: a server runs on {} and applies its own",
                dir.path.display()
            );
        }
        Ok(Opened::Server)
    };
    match datadir::check_existing(dir)? {
        Access::RootOnly(owner) => {
            // Root may talk to the owner's server, but not write files into its store.
            if dir.path.join(control::SOCKET_FILE).exists() {
                return through_server();
            }
            Err(DataDirError::RootOnForeign {
                path: dir.path.clone(),
                owner,
            }
            .into())
        }
        Access::Owner => match Store::open(&dir.path) {
            Ok(store) => {
                store.set_reserve(
                    args.min_free_space
                        .map_or(upkeep::store::DEFAULT_RESERVE, |s| s.0),
                );
                let quota = args
                    .max_tokens_per_account
                    .unwrap_or(upkeep::store::DEFAULT_MAX_TOKENS_PER_ACCOUNT);
                if quota == 0 {
                    return Err("--max-tokens-per-account must be at least 1".into());
                }
                store.set_max_tokens_per_account(quota);
                Ok(Opened::Store(Box::new(store)))
            }
            Err(OpenError::Locked(_)) => through_server(),
            Err(err) => Err(err.into()),
        },
    }
}

/// `upkeep init`: creates the data directory, its server key and an empty store.
fn init(dir: &DataDir, json: bool) -> Result<(), BoxError> {
    let existed = match datadir::check_creatable(dir)? {
        None => false,
        Some(Access::Owner) => true,
        Some(Access::RootOnly(owner)) => {
            return Err(DataDirError::RootOnForeign {
                path: dir.path.clone(),
                owner,
            }
            .into());
        }
    };
    let had_store = dir.path.join("db").exists();
    if !had_store {
        let store = Store::open(&dir.path)?;
        save_index_snapshot(&store);
    }
    let what = if had_store {
        "already holds a store; left as it is"
    } else if existed {
        "now holds an empty store and a server key"
    } else {
        "created (mode 0700) with an empty store and a server key"
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"data": dir.path, "created": !existed, "initialized": !had_store})
        );
    } else {
        println!("data directory {}: {what}", dir.describe());
        if !had_store {
            println!(
                "keep a copy of {} somewhere safe: backups do not include it",
                dir.path.join(upkeep::store::KEY_FILE).display()
            );
        }
    }
    Ok(())
}

/// `upkeep serve --check-config`: the effective settings, and whether the data directory
/// is usable; starts nothing and creates nothing.
fn check_config(config: &Config, dir: &DataDir, json: bool) -> Result<(), BoxError> {
    let state = match datadir::check_creatable(dir) {
        Ok(None) => "missing: created at the first start".to_owned(),
        Ok(Some(Access::Owner)) if dir.path.join("db").exists() => "holds a store".to_owned(),
        Ok(Some(Access::Owner)) => "exists, no store yet: made at the first start".to_owned(),
        Ok(Some(Access::RootOnly(owner))) => {
            return Err(DataDirError::RootOnForeign {
                path: dir.path.clone(),
                owner,
            }
            .into());
        }
        Err(err) => return Err(err.into()),
    };
    let settings = config.effective();
    if json {
        let mut map = serde_json::Map::new();
        for (name, value) in &settings {
            map.insert((*name).to_owned(), serde_json::Value::String(value.clone()));
        }
        println!(
            "{}",
            serde_json::json!({"ok": true, "version": upkeep::cli::VERSION, "data_directory": dir.describe(), "data_state": state, "settings": map})
        );
    } else {
        println!("upkeep {}: configuration is valid", upkeep::cli::VERSION);
        println!("data directory: {} — {state}", dir.describe());
        let width = settings
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0);
        for (name, value) in &settings {
            println!("  --{name:<width$}  {value}");
        }
    }
    Ok(())
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print_bytes(bytes: &[u8]) -> Result<(), BoxError> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `upkeep backup FILE`: from the store directly, or streamed from the running server;
/// written to `FILE.partial` (created new, mode 0600, never through a symlink), checked in
/// full, fsynced, then renamed. An existing `FILE.partial` is refused, never reused: in a
/// shared directory it may be another user's trap.
fn backup(dir: &DataDir, args: &StoreArgs, file: &Path, json: bool) -> Result<(), BoxError> {
    use std::io::{Seek, Write};
    let data = dir.path.as_path();
    // Before the output file is made: a wrong directory leaves nothing behind.
    let opened = open_existing(dir, args)?;
    let partial = file.with_extension("partial");
    let created = upkeep::store::create_private_file(&partial).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "cannot write {}: it already exists (another backup running, or one that was \
                 interrupted); it is not overwritten: remove it and try again",
                partial.display()
            )
        } else {
            format!("cannot write {}: {err}", partial.display())
        }
    })?;
    let written = (|| -> Result<backup::Summary, BoxError> {
        let mut out = std::io::BufWriter::new(created);
        match opened {
            Opened::Store(store) => {
                store.backup(&mut out, &Clock::System.now().to_rfc3339())?;
            }
            Opened::Server => control::backup(data, &mut out)?,
        }
        out.flush()?;
        let mut file = out.into_inner().map_err(|err| err.into_error())?;
        file.sync_all()?;
        // Checked through the handle written, not the path (which could be swapped).
        file.rewind()?;
        Ok(backup::check(std::io::BufReader::new(file))?.summary())
    })();
    let summary = match written {
        Ok(summary) => summary,
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    std::fs::rename(&partial, file)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"file": file, "records": summary.records, "schema_version": summary.schema_version})
        );
    } else {
        println!(
            "backup written to {}: {} records (schema version {}); keep {} separately",
            file.display(),
            summary.records,
            summary.schema_version,
            data.join(upkeep::store::KEY_FILE).display()
        );
    }
    Ok(())
}

/// `upkeep restore FILE`: checks the whole backup, rebuilds the store, installs the
/// given server key (or lets a new one be made), then opens the result once (migrating
/// it if the backup is older).
fn restore(
    dir: &DataDir,
    file: &Path,
    server_key: Option<&Path>,
    json: bool,
) -> Result<(), BoxError> {
    let data = dir.path.as_path();
    if let Some(Access::RootOnly(owner)) = datadir::check_creatable(dir)? {
        return Err(DataDirError::RootOnForeign {
            path: dir.path.clone(),
            owner,
        }
        .into());
    }
    let reader = std::io::BufReader::new(
        std::fs::File::open(file)
            .map_err(|err| format!("cannot read {}: {err}", file.display()))?,
    );
    let key_path = data.join(upkeep::store::KEY_FILE);
    if let Some(key) = server_key {
        let bytes =
            std::fs::read(key).map_err(|err| format!("cannot read {}: {err}", key.display()))?;
        if bytes.len() != 32 {
            return Err(format!(
                "{} is not a server key (32 bytes expected, found {})",
                key.display(),
                bytes.len()
            )
            .into());
        }
        if key_path.exists() && std::fs::read(&key_path)? != bytes {
            return Err(format!(
                "{} already holds a different server key",
                key_path.display()
            )
            .into());
        }
    }
    // Checks and restores in one pass (every blob against its hash); a failure leaves
    // nothing in the directory.
    let summary = backup::restore_from(reader, data)?;
    if let Some(key) = server_key {
        if !key_path.exists() {
            let mut created = upkeep::store::create_private_file(&key_path)?;
            std::io::Write::write_all(&mut created, &std::fs::read(key)?)?;
            created.sync_all()?;
        }
    }
    let store = Store::open(data)?;
    let tokens = store.index().len();
    save_index_snapshot(&store);
    drop(store);
    if json {
        println!(
            "{}",
            serde_json::json!({"data": data, "records": summary.records, "schema_version": summary.schema_version, "tokens": tokens, "credentials": tokens})
        );
    } else {
        println!(
            "restored {} records (schema version {}) into {}; {tokens} credentials authenticate (tokens and grace secrets)",
            summary.records,
            summary.schema_version,
            data.display()
        );
        if server_key.is_none() {
            println!(
                "a new server key was made: operator-token values made before cannot be read back (they still work)"
            );
        }
    }
    Ok(())
}

fn serve(config: Config, dir: DataDir) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Bind first: a start that cannot listen (port taken) creates nothing.
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|err| format!("cannot listen on {}: {err}", config.listen))?;
        let created = !dir.path.exists();
        let store = Store::open(&config.data_dir)?;
        if created {
            tracing::info!(
                data = %config.data_dir.display(),
                "created the data directory (mode 0700) with a new store and server key; \
                 keep a copy of server.key somewhere safe: backups do not include it"
            );
        }
        let n_tokens = store.index().len();
        let settings: Vec<String> = config
            .effective()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        tracing::info!(
            version = upkeep::cli::VERSION,
            data = %dir.describe(),
            settings = %settings.join(" "),
            "effective settings"
        );
        if config.settings.public_url.is_none() && !listener.local_addr()?.ip().is_loopback() {
            tracing::warn!(
                listen = %listener.local_addr()?,
                "--public-url is not set: download links and changelog URLs are built from \
                 each request's Host header; set --public-url (e.g. https://updates.example.com) \
                 in production"
            );
        }
        let app = Arc::new(App::new(store, Clock::System, config.settings));
        // The signal handlers are in place before anyone is told we listen: a SIGTERM sent
        // the moment the line below appears is a clean stop, not the default kill.
        let stop_signal = shutdown_signal()?;
        // Its own target, so `RUST_LOG=warn,upkeep::listening=info` still shows it.
        // `credentials`: tokens plus grace secrets (earlier secrets of rotated tokens), as
        // `upkeep doctor` and `upkeep restore` count them.
        tracing::info!(
            target: "upkeep::listening",
            listen = %listener.local_addr()?,
            data = %config.data_dir.display(),
            credentials = n_tokens,
            version = env!("CARGO_PKG_VERSION"),
            "upkeep listening"

        );
        let control = match control::listen(app.clone()) {
            Ok(control) => Some(control),
            Err(err) => {
                tracing::warn!(error = %err, "admin socket unavailable; stop the server to run admin commands");
                None
            }
        };
        // A log line is dropped, not waited for, when the writer falls behind: say so.
        let dropped_log_lines = tokio::spawn(async {
            let mut reported = 0;
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                let dropped = telemetry::dropped_lines();
                if dropped > reported {
                    tracing::warn!(
                        dropped = dropped - reported,
                        total = dropped,
                        "log lines dropped: the log writer fell behind (upkeep_log_lines_dropped_total)"
                    );
                    reported = dropped;
                }
            }
        });
        upkeep::systemd::notify(&format!(
            "READY=1\nSTATUS=serving on {}",
            listener.local_addr()?
        ));
        let shutdown = async {
            stop_signal.await;
            upkeep::systemd::notify("STOPPING=1");
        };
        upkeep::server::run(listener, app.clone(), shutdown).await?;
        dropped_log_lines.abort();
        if let Some(control) = control {
            control.close().await;
        }
        // Save the token, key and activation indexes for a fast next start. An admin command
        // still running on the closed socket may write after it: that only makes the
        // snapshot unused.
        tokio::task::spawn_blocking(move || save_index_snapshot(&app.store)).await?;
        Ok(())
    })
}

/// Saves the token, key and activation indexes next to the store; a failure costs only a
/// slower next start.
fn save_index_snapshot(store: &Store) {
    if let Err(err) = store.save_index_snapshot() {
        tracing::warn!(error = %err, "token, key and activation indexes not saved; the next start rebuilds them from the store");
    }
}

/// Registers the SIGINT (Ctrl-C) and SIGTERM (systemd stop) handlers now, and resolves on
/// the first of them. Registered eagerly: a signal that arrives before the returned future
/// is first polled is still caught (tokio's signal streams buffer it), instead of killing
/// the process with the default action.
///
/// # Errors
/// A handler could not be installed.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}
