//! The `upkeep` binary: parse the command line, set up logging, run the command, and map
//! the result to an exit code (0 ok, 2 error; the error on one line of stderr).

use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use upkeep::admin::{self, AdminCommand};
use upkeep::cli::{Cli, Command};
use upkeep::clock::Clock;
use upkeep::config::Config;
use upkeep::store::OpenError;
use upkeep::{App, Store, control, telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    telemetry::init(cli.log_format, default_level);
    telemetry::install_panic_hook();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
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
            let config = Config::from_args(&cli.data, cli.default_activation_limit, &args)?;
            return serve(config);
        }
        Command::Account(command) => AdminCommand::Account(command),
        Command::Token(command) => AdminCommand::Token(command),
        Command::OperatorToken(command) => AdminCommand::OperatorToken(command),
        Command::License(command) => AdminCommand::License(command),
    };
    // The store directly when no server runs; otherwise the server's admin socket.
    let output = match Store::open(&cli.data) {
        Ok(store) => admin::execute(
            &store,
            cli.default_activation_limit,
            Clock::System.now(),
            &command,
        )?,
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
        upkeep::server::run(listener, app, shutdown_signal()).await?;
        if let Some(control) = control {
            control.close().await;
        }
        Ok(())
    })
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
