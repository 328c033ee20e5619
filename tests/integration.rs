//! The single integration-test binary (ripgrep style): every module below drives the real
//! server (`server::run` on `127.0.0.1:0` over a temporary sled store) or the real
//! `upkeep` binary.

#[path = "integration/support.rs"]
mod support;

#[path = "integration/account_api.rs"]
mod account_api;
#[path = "integration/authz.rs"]
mod authz;
#[path = "integration/backup.rs"]
mod backup;
#[path = "integration/backup_load.rs"]
mod backup_load;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/crash.rs"]
mod crash;
#[path = "integration/disk.rs"]
mod disk;
#[path = "integration/limits.rs"]
mod limits;
#[path = "integration/malformed.rs"]
mod malformed;
#[path = "integration/openapi.rs"]
mod openapi;
#[path = "integration/operator.rs"]
mod operator;
#[path = "integration/persistence.rs"]
mod persistence;
#[path = "integration/protocol.rs"]
mod protocol;
#[path = "integration/query_api.rs"]
mod query_api;
#[path = "integration/secrets.rs"]
mod secrets;
#[path = "integration/security_edge.rs"]
mod security_edge;
#[path = "integration/security_tokens.rs"]
mod security_tokens;
#[path = "integration/snapshot.rs"]
mod snapshot;
#[path = "integration/updatercloud_api.rs"]
mod updatercloud_api;
