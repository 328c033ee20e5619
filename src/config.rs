//! `serve` flags → a validated [`Config`]. Validation only: loading config never writes.

use crate::app::Settings;
use crate::cli::ServeArgs;
use crate::model::ByteSize;
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

/// `--download-url-ttl`: links expire on whole seconds, so under one second every link
/// would be expired as it is made.
fn link_ttl(value: Duration) -> Result<Duration, ConfigError> {
    if value < Duration::from_secs(1) {
        Err(ConfigError(format!(
            "--download-url-ttl must be at least 1s (links expire on whole seconds), got {}",
            humantime::format_duration(value)
        )))
    } else {
        Ok(value)
    }
}

impl Config {
    /// # Errors
    /// An option is out of range or the listen address does not parse.
    pub fn from_args(data_dir: &Path, args: &ServeArgs) -> Result<Config, ConfigError> {
        if args.max_tokens_per_account == 0 {
            return Err(ConfigError(
                "--max-tokens-per-account must be at least 1".to_owned(),
            ));
        }
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
        if args.max_connections_per_address == 0 {
            return Err(ConfigError(
                "--max-connections-per-address must be at least 1".to_owned(),
            ));
        }
        let settings = Settings {
            default_activation_limit: args.default_activation_limit,
            max_body_bytes: args.max_body_bytes,
            max_upload: match args.max_upload.0 {
                0 => return Err(ConfigError("--max-upload must be more than 0".to_owned())),
                n => n,
            },
            max_connections: args.max_connections,
            max_connections_per_address: args.max_connections_per_address,
            header_timeout: positive("header-timeout", args.header_timeout)?,
            body_timeout: positive("body-timeout", args.body_timeout)?,
            drain_timeout: args.drain_timeout,
            persist_uses_every: positive("persist-uses-every", args.persist_uses_every)?,
            report_flush_every: crate::defaults::duration(crate::defaults::REPORT_FLUSH_EVERY),
            token_values: !args.no_token_values,
            min_free_space: args.min_free_space.0,
            auth_failures_per_minute: args.auth_failures_per_minute,
            trust_proxy: args.trust_proxy,
            max_tokens_per_account: args.max_tokens_per_account,
            public_url: args.public_url.as_deref().map(public_url).transpose()?,
            download_url_ttl: link_ttl(args.download_url_ttl)?,
            max_activations_per_day: args.max_activations_per_day,
            max_deactivations_per_month: args.max_deactivations_per_month,
            dev_site_patterns: match &args.dev_site_patterns {
                Some(text) => crate::model::DevSitePatterns::parse(text)
                    .map_err(|why| ConfigError(format!("--dev-site-patterns: {why}")))?,
                None => crate::model::DevSitePatterns::default(),
            },
        };
        Ok(Config {
            data_dir: data_dir.to_owned(),
            listen,
            settings,
        })
    }
}

/// `--public-url`: an absolute `http(s)://host[:port][/path]` URL, kept without its
/// trailing `/`.
fn public_url(text: &str) -> Result<String, ConfigError> {
    let trimmed = text.trim().trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| {
            ConfigError(format!(
                "--public-url `{text}` must start with https:// or http://"
            ))
        })?;
    if rest.is_empty() || rest.starts_with('/') || trimmed.contains(['?', '#', ' ']) {
        return Err(ConfigError(format!(
            "--public-url `{text}` must be a base URL like https://updates.example.com (a host, an optional path, no query)"
        )));
    }
    Ok(trimmed.to_owned())
}

impl Config {
    /// The effective settings as `(name, value)` pairs, named like their `serve` flags:
    /// what the start-up log and `serve --check-config` print.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let s = &self.settings;
        let time = |d: Duration| humantime::format_duration(d).to_string();
        vec![
            ("data", self.data_dir.display().to_string()),
            ("listen", self.listen.to_string()),
            (
                "default-activation-limit",
                s.default_activation_limit.to_string(),
            ),
            ("min-free-space", ByteSize(s.min_free_space).to_string()),
            ("max-body-bytes", s.max_body_bytes.to_string()),
            ("max-upload", ByteSize(s.max_upload).to_string()),
            (
                "public-url",
                s.public_url
                    .clone()
                    .unwrap_or_else(|| "(from each request's Host)".to_owned()),
            ),
            ("download-url-ttl", time(s.download_url_ttl)),
            ("max-connections", s.max_connections.to_string()),
            ("header-timeout", time(s.header_timeout)),
            ("body-timeout", time(s.body_timeout)),
            ("drain-timeout", time(s.drain_timeout)),
            ("persist-uses-every", time(s.persist_uses_every)),
            (
                "auth-failures-per-minute",
                s.auth_failures_per_minute.to_string(),
            ),
            (
                "max-activations-per-day",
                s.max_activations_per_day.to_string(),
            ),
            (
                "max-deactivations-per-month",
                s.max_deactivations_per_month.to_string(),
            ),
            ("dev-site-patterns", s.dev_site_patterns.to_string()),
            ("trust-proxy", s.trust_proxy.to_string()),
            ("no-token-values", (!s.token_values).to_string()),
        ]
    }
}
