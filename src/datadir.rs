//! Which data directory a command uses, and what is checked before a command touches it.
//!
//! Only `serve` and `init` (and `restore`, which rebuilds one) create a data directory;
//! every other command needs an existing one and, when it is missing, unreadable or not
//! a directory, says which path it looked at and how to point at the right one.
//!
//! The default is `./upkeep-data`; when that does not exist but `/var/lib/upkeep` does
//! (the Debian package's state directory), `/var/lib/upkeep`. So on a packaged install a
//! plain `sudo -u upkeep upkeep account list` finds the service's store, while a checkout
//! keeps its own `./upkeep-data`.

use std::fmt;
use std::path::{Path, PathBuf};

/// The default data directory, relative to the working directory.
pub const LOCAL_DEFAULT: &str = "./upkeep-data";
/// The packaged install's data directory (the unit's `StateDirectory=`).
pub const PACKAGED: &str = "/var/lib/upkeep";

/// How the data directory was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--data` or `UPKEEP_DATA`.
    Given,
    /// `./upkeep-data`, the default.
    Default,
    /// `/var/lib/upkeep`, because `./upkeep-data` does not exist and it does.
    Packaged,
}

/// The data directory a command uses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    pub path: PathBuf,
    pub source: Source,
}

impl DataDir {
    /// `--data`/`UPKEEP_DATA` when given, else the default rule (module docs).
    pub fn resolve(given: Option<&Path>) -> DataDir {
        Self::resolve_with(given, Path::new(LOCAL_DEFAULT), Path::new(PACKAGED))
    }

    /// [`DataDir::resolve`] with the two defaults given (tests).
    pub fn resolve_with(given: Option<&Path>, local: &Path, packaged: &Path) -> DataDir {
        if let Some(path) = given {
            return DataDir {
                path: path.to_owned(),
                source: Source::Given,
            };
        }
        if !local.exists() && packaged.is_dir() {
            return DataDir {
                path: packaged.to_owned(),
                source: Source::Packaged,
            };
        }
        DataDir {
            path: local.to_owned(),
            source: Source::Default,
        }
    }

    /// `/var/lib/upkeep (the packaged install's; ./upkeep-data does not exist)`.
    pub fn describe(&self) -> String {
        let why = match self.source {
            Source::Given => "from --data / UPKEEP_DATA".to_owned(),
            Source::Default => "the default".to_owned(),
            Source::Packaged => {
                format!("the packaged install's, since {LOCAL_DEFAULT} does not exist")
            }
        };
        format!("{} ({why})", self.path.display())
    }
}

/// Why a command cannot use the data directory.
#[derive(Debug)]
pub enum DataDirError {
    /// Nothing at the path.
    Missing(DataDir),
    /// Something that is not a directory (or a path through a file).
    NotADirectory(PathBuf),
    /// The process may not read or change it.
    PermissionDenied { path: PathBuf, owner: Owner },
    /// Root, on a directory another user owns, with no server to talk to: opening the
    /// store would leave files the owner (the server) cannot open.
    RootOnForeign { path: PathBuf, owner: Owner },
    /// Another error while looking.
    Io(PathBuf, std::io::Error),
}

/// Who owns a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    /// The user name, when `/etc/passwd` knows it.
    pub name: Option<String>,
}

impl Owner {
    fn of(path: &Path) -> Option<Owner> {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata(path).ok()?.uid();
        Some(Owner {
            uid,
            name: user_name(uid),
        })
    }

    /// `sudo -u upkeep upkeep …` (or `sudo -u '#1001' …` with no name).
    fn sudo(&self) -> String {
        match &self.name {
            Some(name) => format!("sudo -u {name} upkeep …"),
            None => format!("sudo -u '#{}' upkeep …", self.uid),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} (uid {})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

impl DataDirError {
    /// A stable code for `--json` errors.
    pub fn code(&self) -> &'static str {
        match self {
            DataDirError::Missing(_) => "no_data_directory",
            DataDirError::NotADirectory(_) => "not_a_directory",
            DataDirError::PermissionDenied { .. } | DataDirError::RootOnForeign { .. } => {
                "permission_denied"
            }
            DataDirError::Io(..) => "data_directory_unreadable",
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        match self {
            DataDirError::Missing(_) => format!(
                "point at your data directory with --data DIR or UPKEEP_DATA=DIR (the packaged \
                 install uses {PACKAGED}); `upkeep init` or `upkeep serve` creates a new one"
            ),
            DataDirError::NotADirectory(_) => {
                "--data / UPKEEP_DATA must name a directory, not a file".to_owned()
            }
            DataDirError::PermissionDenied { owner, .. }
            | DataDirError::RootOnForeign { owner, .. } => {
                format!("run as the directory's owner, e.g. `{}`", owner.sudo())
            }
            DataDirError::Io(..) => "check the path and its parent directories".to_owned(),
        }
    }
}

impl fmt::Display for DataDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataDirError::Missing(dir) => {
                write!(f, "no data directory at {}", dir.describe())?;
            }
            DataDirError::NotADirectory(path) => {
                write!(f, "{} is not a directory", path.display())?;
            }
            DataDirError::PermissionDenied { path, owner } => write!(
                f,
                "permission denied: {} belongs to {owner} and this process (uid {}) may not use it",
                path.display(),
                euid()
            )?,
            DataDirError::RootOnForeign { path, owner } => write!(
                f,
                "permission denied: {} belongs to {owner}, no server is running on it, and \
                 opening its store as root would leave files the server cannot open",
                path.display()
            )?,
            DataDirError::Io(path, err) => write!(f, "cannot read {}: {err}", path.display())?,
        }
        write!(f, "; {}", self.fix())
    }
}

impl std::error::Error for DataDirError {}

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The name `/etc/passwd` gives `uid`.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let found: u32 = fields.nth(1)?.parse().ok()?;
        (found == uid).then(|| name.to_owned())
    })
}

/// How the directory may be used by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Ours (or root's own): open the store directly or through the socket.
    Owner,
    /// We are root and another user owns it: only through the running server's socket.
    RootOnly(Owner),
}

/// Checks that `dir` exists, is a directory and is this process's to use. Creates and
/// changes nothing.
///
/// # Errors
/// Missing, not a directory, or another user's (see [`DataDirError`]).
pub fn check_existing(dir: &DataDir) -> Result<Access, DataDirError> {
    let path = &dir.path;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) => return Err(classify(dir, err)),
    };
    if !meta.is_dir() {
        return Err(DataDirError::NotADirectory(path.clone()));
    }
    let owner = Owner::of(path).unwrap_or(Owner {
        uid: u32::MAX,
        name: None,
    });
    let me = euid();
    if me == 0 && owner.uid != 0 {
        return Ok(Access::RootOnly(owner));
    }
    if me != 0 && owner.uid != me {
        return Err(DataDirError::PermissionDenied {
            path: path.clone(),
            owner,
        });
    }
    match std::fs::read_dir(path) {
        Ok(_) => Ok(Access::Owner),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(DataDirError::PermissionDenied {
                path: path.clone(),
                owner,
            })
        }
        Err(err) => Err(DataDirError::Io(path.clone(), err)),
    }
}

/// Checks a directory `serve`/`init` may create: fine when missing (and its parent
/// chain is usable), otherwise as [`check_existing`]. Creates nothing.
///
/// # Errors
/// As [`check_existing`], except `Missing`.
pub fn check_creatable(dir: &DataDir) -> Result<Option<Access>, DataDirError> {
    match check_existing(dir) {
        Err(DataDirError::Missing(_)) => Ok(None),
        other => other.map(Some),
    }
}

fn classify(dir: &DataDir, err: std::io::Error) -> DataDirError {
    let path = dir.path.clone();
    match err.kind() {
        std::io::ErrorKind::NotFound => DataDirError::Missing(dir.clone()),
        std::io::ErrorKind::NotADirectory => DataDirError::NotADirectory(path),
        std::io::ErrorKind::PermissionDenied => {
            // The first ancestor we can see tells whose it is.
            let owner = path
                .ancestors()
                .skip(1)
                .find_map(Owner::of)
                .unwrap_or(Owner {
                    uid: u32::MAX,
                    name: None,
                });
            DataDirError::PermissionDenied { path, owner }
        }
        _ => DataDirError::Io(path, err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_directory_is_used_only_without_a_local_one() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("upkeep-data");
        let packaged = tmp.path().join("var-lib-upkeep");
        let given = tmp.path().join("given");
        let resolve = |g: Option<&Path>| DataDir::resolve_with(g, &local, &packaged);
        assert_eq!(resolve(None).source, Source::Default);
        std::fs::create_dir(&packaged).unwrap();
        assert_eq!(resolve(None).path, packaged);
        assert_eq!(resolve(None).source, Source::Packaged);
        assert!(resolve(None).describe().contains("packaged"));
        std::fs::create_dir(&local).unwrap();
        assert_eq!(resolve(None).path, local);
        assert_eq!(resolve(Some(&given)).path, given);
        assert_eq!(resolve(Some(&given)).source, Source::Given);
    }

    #[test]
    fn missing_and_file_paths_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = DataDir::resolve(Some(&tmp.path().join("nope")));
        let err = check_existing(&missing).unwrap_err();
        assert_eq!(err.code(), "no_data_directory");
        assert!(err.to_string().contains("--data"), "{err}");
        assert!(matches!(check_creatable(&missing), Ok(None)));
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = check_existing(&DataDir::resolve(Some(&file))).unwrap_err();
        assert_eq!(err.code(), "not_a_directory", "{err}");
        let below = DataDir::resolve(Some(&file.join("data")));
        assert_eq!(
            check_creatable(&below).unwrap_err().code(),
            "not_a_directory"
        );
    }
}
