//! The single integration-test binary (ripgrep style): every module below drives the real
//! server (`server::run` on `127.0.0.1:0` over a temporary sled store) or the real
//! `upkeep` binary.
//!
//! Layout (GUIDE §3.2): `tests/integration/<family>/<resource>.rs`, each family's `mod.rs`
//! listing its files and holding the helpers more than one of them uses; the cross-cutting
//! modules as single files beside them; `support.rs` the shared harness (`crate::support`).
//!
//! ```text
//! support.rs                        TestServer, Reply, ServeProcess, the CLI helpers
//! wunderupdates/                    SPEC §4.1 `/v1/account…`: account.rs, tokens.rs, license.rs
//! updatercloud/                     SPEC §4.2 `/api/v1/…`: me.rs, tokens.rs (with rotation)
//! query/                            SPEC §4.3 `/_/…`: tokens.rs, accounts.rs, licenses.rs
//! public/                           SPEC §8 update checks and downloads: checks.rs, downloads.rs, licensing.rs, reports.rs (§10 counts)
//! cli/                              the real binary: commands.rs, operator.rs
//! security/                         the issue-15 regressions, kept as one set: edge.rs, tokens.rs
//! protocol.rs, authz.rs, openapi.rs, limits.rs, malformed.rs       the HTTP surface as a whole
//! crash.rs, crash_uploads.rs, crash_activations.rs, disk.rs, persistence.rs, backup.rs, snapshot.rs, secrets.rs   the store and data at rest
//! audit.rs                          the audit log of changes
//! backup_load.rs                    the server keeps answering while a backup runs
//! package.rs                        the package reader on real WordPress plugins and themes
//! wordpress.rs                      a real WordPress (tests/wordpress/harness.sh) updating from the server
//! ```

#[path = "integration/support.rs"]
mod support;

#[path = "integration/query/mod.rs"]
mod query;
#[path = "integration/updatercloud/mod.rs"]
mod updatercloud;
#[path = "integration/wunderupdates/mod.rs"]
mod wunderupdates;

#[path = "integration/public/mod.rs"]
mod public;

#[path = "integration/cli/mod.rs"]
mod cli;
#[path = "integration/security/mod.rs"]
mod security;

#[path = "integration/audit.rs"]
mod audit;
#[path = "integration/authz.rs"]
mod authz;
#[path = "integration/backup.rs"]
mod backup;
#[path = "integration/backup_load.rs"]
mod backup_load;
#[path = "integration/crash.rs"]
mod crash;
#[path = "integration/crash_activations.rs"]
mod crash_activations;
#[path = "integration/crash_uploads.rs"]
mod crash_uploads;
#[path = "integration/disk.rs"]
mod disk;
#[path = "integration/limits.rs"]
mod limits;
#[path = "integration/malformed.rs"]
mod malformed;
#[path = "integration/openapi.rs"]
mod openapi;
#[path = "integration/package.rs"]
mod package;
#[path = "integration/persistence.rs"]
mod persistence;
#[path = "integration/protocol.rs"]
mod protocol;
#[path = "integration/secrets.rs"]
mod secrets;
#[path = "integration/snapshot.rs"]
mod snapshot;
#[path = "integration/wordpress.rs"]
mod wordpress;
