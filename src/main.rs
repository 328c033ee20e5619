//! The `upkeep` binary: parse the command line, set up logging, run the command, and map
//! the result to an exit code (0 ok, 2 error; the error on one line of stderr).

use clap::{CommandFactory, Parser};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use upkeep::admin::{self, AdminCommand};
use upkeep::cli::{Cli, Command};
use upkeep::clock::Clock;
use upkeep::config::Config;
use upkeep::store::{OpenError, backup};
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    // Held to the end of `main`: dropping it flushes the log.
    let _log = telemetry::init(cli.log_format, default_level);
    telemetry::install_panic_hook();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<DoctorFailed>() => ExitCode::from(1),
        Err(err) => {
            let mut line = format!("upkeep: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                line.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{line}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), BoxError> {
    let command = match cli.command {
        Command::Serve(args) => {
            let config = Config::from_args(
                &cli.data,
                cli.default_activation_limit,
                cli.min_free_space,
                cli.max_tokens_per_account,
                &args,
            )?;
            return serve(config);
        }
        Command::Doctor => {
            let report = upkeep::doctor::run(&cli.data, cli.min_free_space.0);
            if cli.json {
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
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            return print_bytes(&page);
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "upkeep", &mut script);
            return print_bytes(&script);
        }
        Command::Backup { file } => {
            return backup(&cli.data, cli.min_free_space.0, &file, cli.json);
        }
        Command::Restore { file, server_key } => {
            return restore(&cli.data, &file, server_key.as_deref(), cli.json);
        }
        Command::Account(command) => AdminCommand::Account(command),
        Command::Token(command) => AdminCommand::Token(command),
        Command::OperatorToken(command) => AdminCommand::OperatorToken(command),
        Command::License(command) => AdminCommand::License(command),
    };
    // The store directly when no server runs; otherwise the server's admin socket.
    let output = match Store::open(&cli.data) {
        Ok(store) => {
            store.set_reserve(cli.min_free_space.0);
            store.set_max_tokens_per_account(cli.max_tokens_per_account);
            let output = admin::execute(
                &store,
                cli.default_activation_limit,
                Clock::System.now(),
                &command,
            );
            save_index_snapshot(&store);
            output?
        }
        Err(OpenError::Locked(_)) => control::send(&cli.data, &command)?,
        Err(err) => return Err(err.into()),
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&output.json)?);
    } else {
        print!("{}", output.text);
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
fn backup(data: &Path, reserve: u64, file: &Path, json: bool) -> Result<(), BoxError> {
    use std::io::{Seek, Write};
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
        match Store::open(data) {
            Ok(store) => {
                store.set_reserve(reserve);
                store.backup(&mut out, &Clock::System.now().to_rfc3339())?;
            }
            Err(OpenError::Locked(_)) => control::backup(data, &mut out)?,
            Err(err) => return Err(err.into()),
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
    data: &Path,
    file: &Path,
    server_key: Option<&Path>,
    json: bool,
) -> Result<(), BoxError> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file)
            .map_err(|err| format!("cannot read {}: {err}", file.display()))?,
    );
    let checked = backup::check(reader)?;
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
    let summary = backup::restore(&checked, data)?;
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
            serde_json::json!({"data": data, "records": summary.records, "schema_version": summary.schema_version, "tokens": tokens})
        );
    } else {
        println!(
            "restored {} records (schema version {}) into {}; {tokens} tokens authenticate",
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

fn serve(config: Config) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = Store::open(&config.data_dir)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|err| format!("cannot listen on {}: {err}", config.listen))?;
        let n_tokens = store.index().len();
        let app = Arc::new(App::new(store, Clock::System, config.settings));
        // Its own target, so `RUST_LOG=warn,upkeep::listening=info` still shows it.
        tracing::info!(
            target: "upkeep::listening",
            listen = %listener.local_addr()?,
            data = %config.data_dir.display(),
            tokens = n_tokens,
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
        upkeep::systemd::notify(&format!(
            "READY=1\nSTATUS=serving on {}",
            listener.local_addr()?
        ));
        let shutdown = async {
            shutdown_signal().await;
            upkeep::systemd::notify("STOPPING=1");
        };
        upkeep::server::run(listener, app.clone(), shutdown).await?;
        if let Some(control) = control {
            control.close().await;
        }
        // Save the token index for a fast next start. An admin command still running on
        // the closed socket may write after it: that only makes the snapshot unused.
        tokio::task::spawn_blocking(move || save_index_snapshot(&app.store)).await?;
        Ok(())
    })
}

/// Saves the token index next to the store; a failure costs only a slower next start.
fn save_index_snapshot(store: &Store) {
    if let Err(err) = store.save_index_snapshot() {
        tracing::warn!(error = %err, "token index not saved; the next start rebuilds it from the store");
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd stop).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
