//! The data directory's own files: the server key, private temporary files, the
//! private directory itself.

use crate::token::ServerKey;
use std::path::Path;

/// The server key's file name inside the data directory.
pub const KEY_FILE: &str = "server.key";

/// Creates `path` as a new file, mode 0600, open for reading and writing, without ever
/// following a symlink or reusing what is there (`O_CREAT | O_EXCL | O_NOFOLLOW`): a
/// temporary file another local user planted (a symlink to a file we may write, when
/// running as root) is refused instead of written through.
///
/// # Errors
/// `AlreadyExists` when anything (a file, a symlink, even a dangling one) is at `path`.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Creates a temporary file at `path` in a directory only we write (the data
/// directory): a leftover from a crash is removed first (the link itself, never what
/// it points to), then the file is made as [`create_private_file`] does.
pub(crate) fn create_temporary_file(path: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    create_private_file(path)
}

/// Reads `path` (32 bytes), or creates it with a fresh key, mode 0600, durably
/// (write to a temporary file, fsync, rename, fsync the directory).
pub(super) fn load_or_create_key(path: &Path) -> std::io::Result<ServerKey> {
    use std::io::Write;
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("must hold exactly 32 bytes, found {}", bytes.len()),
                )
            })?;
            return Ok(ServerKey::from_bytes(bytes));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let key = ServerKey::generate().map_err(std::io::Error::other)?;
    let tmp = path.with_extension("key.tmp");
    let mut file = create_temporary_file(&tmp)?;
    file.write_all(key.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(key)
}

/// Creates `dir` (and parents) if needed and makes it private (mode 0700): it holds the
/// server key, the store and the admin socket.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            tracing::info!(dir = %dir.display(), from = format!("{mode:o}"), "made the data directory private (0700)");
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}
