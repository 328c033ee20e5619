//! `serve` flags → a validated [`Config`]. Validation only: loading config never writes.

use crate::app::Settings;
use crate::cli::ServeArgs;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub settings: Settings,
}

/// One sentence saying which option is wrong and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn positive(name: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        Err(ConfigError(format!("--{name} must be longer than 0s")))
    } else {
        Ok(value)
    }
}

impl Config {
    /// # Errors
    /// An option is out of range or the listen address does not parse.
    pub fn from_args(
        data_dir: &Path,
        default_activation_limit: u32,
        args: &ServeArgs,
    ) -> Result<Config, ConfigError> {
        let listen: SocketAddr = args.listen.parse().map_err(|_| {
            ConfigError(format!(
                "--listen `{}` is not an address like 127.0.0.1:8787 or [::1]:8787",
                args.listen
            ))
        })?;
        if args.max_body_bytes == 0 {
            return Err(ConfigError(
                "--max-body-bytes must be at least 1".to_owned(),
            ));
        }
        if args.max_connections == 0 {
            return Err(ConfigError(
                "--max-connections must be at least 1".to_owned(),
            ));
        }
        let settings = Settings {
            default_activation_limit,
            max_body_bytes: args.max_body_bytes,
            max_connections: args.max_connections,
            header_timeout: positive("header-timeout", args.header_timeout)?,
            body_timeout: positive("body-timeout", args.body_timeout)?,
            drain_timeout: args.drain_timeout,
            persist_uses_every: positive("persist-uses-every", args.persist_uses_every)?,
            token_values: !args.no_token_values,
        };
        Ok(Config {
            data_dir: data_dir.to_owned(),
            listen,
            settings,
        })
    }
}
