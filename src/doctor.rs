//! `upkeep doctor`: checks a data directory and says what to fix. It only looks: no
//! migration, no chmod, no key created.

use crate::datadir::{self, DataDir, DataDirError};
use crate::store::{self, KEY_FILE, OpenError, schema::SCHEMA_VERSION};
use std::fmt::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub level: Level,
    pub what: String,
    /// What to do about it (empty when fine).
    pub fix: String,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, level: Level, what: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check {
            level,
            what: what.into(),
            fix: fix.into(),
        });
    }

    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|check| check.level == Level::Fail)
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            let tag = match check.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(out, "{tag}  {}", check.what);
            if !check.fix.is_empty() {
                let _ = writeln!(out, "      fix: {}", check.fix);
            }
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let checks: Vec<serde_json::Value> = self
            .checks
            .iter()
            .map(|check| {
                let level = match check.level {
                    Level::Ok => "ok",
                    Level::Warn => "warn",
                    Level::Fail => "fail",
                };
                serde_json::json!({"level": level, "what": check.what, "fix": check.fix})
            })
            .collect();
        serde_json::json!({"ok": !self.failed(), "checks": checks})
    }
}

#[cfg(unix)]
fn mode_and_owner(path: &Path) -> std::io::Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok((meta.mode() & 0o777, meta.uid()))
}

/// `512.0 KiB`, `70.2 GiB`: one decimal, binary units.
fn bytes(n: u64) -> String {
    let mut value = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
        if value < 1024.0 || unit == "TiB" {
            return if unit == "B" {
                format!("{n} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    unreachable!("the loop returns at TiB")
}

/// Checks the data directory `dir`; `reserve` is the free space writes need.
pub fn run(dir: &Path, reserve: u64) -> Report {
    run_dir(&DataDir::resolve(Some(dir)), reserve)
}

/// [`run`], saying first which directory it checks and why that one.
pub fn run_dir(data: &DataDir, reserve: u64) -> Report {
    let mut report = Report::default();
    let dir = data.path.as_path();
    let shown = dir.display();
    report.add(
        Level::Ok,
        format!("data directory: {}", data.describe()),
        "",
    );
    match datadir::check_existing(data) {
        Ok(_) => {}
        Err(err) => {
            let what = match &err {
                DataDirError::Missing(_) => format!("no data directory at {shown}"),
                other => {
                    // The message without its fix (given separately).
                    let text = other.to_string();
                    let fix = format!("; {}", other.fix());
                    text.strip_suffix(&fix).unwrap_or(&text).to_owned()
                }
            };
            report.add(Level::Fail, what, err.fix());
            return report;
        }
    }
    match mode_and_owner(dir) {
        Ok((0o700, _)) => report.add(Level::Ok, format!("{shown} is private (0700)"), ""),
        Ok((mode, _)) => report.add(
            Level::Warn,
            format!("{shown} has mode {mode:o}; it holds the store and the server key"),
            format!("chmod 700 {shown} (upkeep also does this when it opens the store)"),
        ),
        Err(err) => report.add(
            Level::Fail,
            format!("cannot read {shown}: {err}"),
            "run doctor as the service user or root",
        ),
    }

    let key = dir.join(KEY_FILE);
    match (std::fs::metadata(&key).map(|m| m.len()), mode_and_owner(&key)) {
        (Ok(32), Ok((0o600, _))) => report.add(Level::Ok, "server.key present, 32 bytes, mode 0600", ""),
        (Ok(32), Ok((mode, _))) => report.add(
            Level::Fail,
            format!("server.key has mode {mode:o}: others can read the key operator-token values derive from"),
            format!("chmod 600 {}", key.display()),
        ),
        (Ok(len), _) => report.add(
            Level::Fail,
            format!("server.key holds {len} bytes, not 32"),
            "restore it from your key backup (without it, operator-token values cannot be read back)",
        ),
        (Err(_), _) => report.add(
            Level::Warn,
            "no server.key yet",
            "created on the next start; if this directory was restored, install the old key with `upkeep restore --server-key`",
        ),
    }

    match store::inspect(dir) {
        Ok(found) => {
            match found.schema_version {
                Some(SCHEMA_VERSION) => report.add(Level::Ok, format!("store schema version {SCHEMA_VERSION} (current)"), ""),
                Some(old) if old < SCHEMA_VERSION => report.add(
                    Level::Warn,
                    format!("store schema version {old}; this upkeep migrates it to {SCHEMA_VERSION} at its next start"),
                    "take a backup first: upkeep backup FILE",
                ),
                Some(new) => report.add(
                    Level::Fail,
                    format!("store schema version {new} is newer than this upkeep ({SCHEMA_VERSION})"),
                    "run the newer upkeep that wrote it",
                ),
                None => report.add(Level::Ok, "store is empty (never used)", ""),
            }
            report.add(
                Level::Ok,
                format!(
                    "store holds {} accounts and {} tokens in {} on disk; with {} grace secrets \
                     (earlier secrets of rotated tokens), {} credentials authenticate",
                    found.accounts,
                    found.tokens,
                    bytes(found.size_on_disk),
                    found.grace_secrets,
                    found.tokens + found.grace_secrets
                ),
                "",
            );
            match found.missing_blobs.as_slice() {
                [] => report.add(Level::Ok, "every file the catalogue references is in blobs/", ""),
                missing => report.add(
                    Level::Fail,
                    format!(
                        "{} file(s) the catalogue references are missing from blobs/ (first: {})",
                        missing.len(),
                        missing[0]
                    ),
                    "restore the data directory from a backup (`upkeep restore` checks every blob), \
                     or delete the affected versions and upload them again",
                ),
            }
            match found.snapshot {
                store::SnapshotState::Current => report.add(
                    Level::Ok,
                    "index.snapshot matches the store: the next start loads it instead of scanning",
                    "",
                ),
                store::SnapshotState::Absent => report.add(
                    Level::Ok,
                    "no index.snapshot: the next start builds the token, key and activation indexes by scanning the store (a clean stop writes one)",
                    "",
                ),
                store::SnapshotState::Stale(why) => report.add(
                    Level::Ok,
                    format!("index.snapshot is not used ({why}): the next start scans the store and a clean stop writes a current one"),
                    "",
                ),
                store::SnapshotState::Damaged(why) => report.add(
                    Level::Warn,
                    format!("index.snapshot is damaged ({why}): the next start ignores it and scans the store"),
                    format!("nothing is at risk; delete {} to silence this", dir.join("index.snapshot").display()),
                ),
            }
            if dir.join(crate::control::SOCKET_FILE).exists() {
                report.add(
                    Level::Ok,
                    "a stale admin.sock from an earlier run (removed at the next start)",
                    "",
                );
            }
        }
        Err(OpenError::Locked(_)) => {
            let socket = dir.join(crate::control::SOCKET_FILE);
            if socket.exists() {
                report.add(
                    Level::Ok,
                    "a server is running on this directory (store locked, admin socket present)",
                    "",
                );
            } else {
                report.add(
                    Level::Warn,
                    "the store is locked but no admin socket exists",
                    "another process holds the store (a second server or a CLI command); stop it",
                );
            }
        }
        Err(OpenError::Io(_, err)) if err.kind() == std::io::ErrorKind::NotFound => {
            report.add(
                Level::Warn,
                "no store yet (the directory exists but holds no db/)",
                "`upkeep init` or `upkeep serve` creates it",
            );
        }
        Err(err) => report.add(
            Level::Fail,
            format!("the store does not open: {err}"),
            "restore the last backup into a new directory: upkeep --data NEW restore FILE",
        ),
    }

    match fs2::available_space(dir) {
        Ok(free) if free >= reserve.saturating_mul(2) => {
            report.add(
                Level::Ok,
                format!("{} free on the data filesystem", bytes(free)),
                "",
            );
        }
        Ok(free) if free >= reserve => report.add(
            Level::Warn,
            format!(
                "only {} free; writes stop below {}",
                bytes(free),
                bytes(reserve)
            ),
            "free disk space or grow the volume",
        ),
        Ok(free) => report.add(
            Level::Fail,
            format!(
                "{} free, below the {} writes need: writes are refused",
                bytes(free),
                bytes(reserve)
            ),
            "free disk space (or lower --min-free-space)",
        ),
        Err(err) => report.add(Level::Warn, format!("free space unknown: {err}"), ""),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_store_is_healthy_and_a_loose_key_fails() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        drop(crate::Store::open(&data).unwrap());
        let report = run(&data, 0);
        assert!(!report.failed(), "{}", report.text());
        assert!(
            report.text().contains("schema version"),
            "{}",
            report.text()
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let report = run(&data, 0);
        assert!(report.failed());
        let text = report.text();
        assert!(
            text.contains("chmod 600") && text.contains("chmod 700"),
            "{text}"
        );
        // It only looked.
        let (mode, _) = mode_and_owner(&data).unwrap();
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn sizes_read_like_df() {
        assert_eq!(bytes(524_287), "512.0 KiB");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes(75_398_000 * 1024), "71.9 GiB");
    }

    #[test]
    fn a_missing_directory_and_too_little_space_fail() {
        assert!(run(Path::new("/nonexistent/upkeep"), 0).failed());
        let dir = tempfile::tempdir().unwrap();
        drop(crate::Store::open(dir.path()).unwrap());
        let report = run(dir.path(), u64::MAX / 4);
        assert!(report.failed());
        assert!(
            report.text().contains("writes are refused"),
            "{}",
            report.text()
        );
    }
}
