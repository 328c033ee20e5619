//! The single integration-test binary (ripgrep style): every module below drives the real
//! server (`server::run` on `127.0.0.1:0` over a temporary sled store) or the real
//! `upkeep` binary.

#[path = "integration/support.rs"]
mod support;

#[path = "integration/authz.rs"]
mod authz;
#[path = "integration/backup.rs"]
mod backup;
#[path = "integration/cli/mod.rs"]
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
#[path = "integration/persistence.rs"]
mod persistence;
#[path = "integration/protocol.rs"]
mod protocol;
#[path = "integration/query/mod.rs"]
mod query;
#[path = "integration/secrets.rs"]
mod secrets;
#[path = "integration/security/mod.rs"]
mod security;
#[path = "integration/snapshot.rs"]
mod snapshot;
#[path = "integration/updatercloud/mod.rs"]
mod updatercloud;
#[path = "integration/wunderupdates/mod.rs"]
mod wunderupdates;
