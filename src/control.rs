//! The admin socket, `<data>/admin.sock`: while `serve` holds the store (sled locks its
//! directory), admin commands from the CLI reach it here and run through the same
//! [`admin::execute`] as they do on a stopped store. One implementation, two transports.
//!
//! Access: the socket is created mode 0600 inside the data directory (created 0700), and
//! each connection's peer uid must be the socket owner's (or root's). Protocol (version
//! [`PROTOCOL_VERSION`]): one JSON request line `{"version":1,"request":…}` (at most
//! 512 KiB; the commands are [`AdminCommand`], the socket's own type, not the CLI's), then
//! one JSON reply (or, for a backup, the backup's own lines), then close.
//!
//! **`release push` streams its file after the request line.** The request
//! (`{"Push":{…,"size":N}}`, an [`admin::PushRequest`]) carries the file's name and
//! size, never its bytes; exactly `size` raw bytes follow the line, and the client then
//! half-closes. The server first checks the request (account, product, flags) and, if it
//! refuses, replies at once without reading the bytes; otherwise it streams them into the
//! blob store (`Blobs::put_reader`, one 64 KiB buffer: a large file never passes whole
//! through memory on either side), on a blocking thread, with [`UPLOAD_IDLE_TIMEOUT`]
//! between reads. Fewer than `size` bytes (the client died, the file shrank) stores
//! nothing and is `incomplete_upload`.
//!
//! Why not send the file's *path* for the server to open? The CLI and the server are on
//! the same machine, but not always the same user nor the same view of the filesystem: the
//! packaged service runs as the `upkeep` user with `ProtectHome=yes` and `PrivateTmp=yes`
//! (packaging/README.md), so a `~/plugin.zip` or `/tmp/plugin.zip` that root pushes is
//! invisible or unreadable to it; and a path would let the server read files on the
//! client's behalf. Streaming works whoever may read the file: the CLI reads it with its
//! own permissions, and it shows progress as the bytes go.

use crate::admin::{self, AdminCommand, Output, PushRequest};
use crate::app::App;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// The socket's file name inside the data directory.
pub const SOCKET_FILE: &str = "admin.sock";
/// The longest request line: a push carries its release notes (at most 64 KiB, which JSON
/// escaping may make up to six times longer).
const MAX_REQUEST: u64 = 512 * 1024;
/// How long the server waits for the next bytes of a pushed file.
pub const UPLOAD_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The admin socket's protocol version. A server answers only its own: during an upgrade
/// the CLI and the running server may come from different releases, and a request of
/// another shape must be refused by name, not misread.
pub const PROTOCOL_VERSION: u32 = 1;

/// One request line: `{"version":1,"request":…}`.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    version: u32,
    request: Request,
}

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    /// Run an admin command; one JSON reply.
    Admin(AdminCommand),
    /// Stream a backup (the backup's own lines, or one `Reply::Err` line).
    Backup,
    /// `release push`: `size` bytes of the file follow the line; one JSON reply.
    Push(PushRequest),
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Ok {
        text: String,
        json: serde_json::Value,
    },
    Err {
        status: u16,
        code: String,
        message: String,
    },
}

/// Why the CLI could not run a command through the socket.
#[derive(Debug)]
pub enum ControlError {
    /// No server answers on the socket.
    Unreachable(PathBuf, std::io::Error),
    /// The server refused the command (`status`/`code` as the HTTP API would give).
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    Protocol(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::Unreachable(path, err) => write!(
                f,
                "the store is locked by another process, but no upkeep server answers on {} ({err}); \
                 is another command running?",
                path.display()
            ),
            ControlError::Refused { message, .. } => f.write_str(message),
            ControlError::Protocol(why) => write!(f, "unexpected reply from the server: {why}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// The admin socket being served; [`Listener::close`] stops it and removes the file.
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
    path: PathBuf,
}

impl Listener {
    /// Stops serving, waits until the serving task (and its handle on the app) is gone,
    /// and removes the socket file.
    pub async fn close(self) {
        self.task.abort();
        let _ = (&mut { self.task }).await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `<data>/admin.sock` (mode 0600) and serves it. Call from within the runtime,
/// before serving HTTP, so the socket exists once this returns.
///
/// # Errors
/// The socket cannot be bound (e.g. a data-directory path longer than a socket path may
/// be) or its mode cannot be set.
pub fn listen(app: Arc<App>) -> std::io::Result<Listener> {
    let path = app.store.dir().join(SOCKET_FILE);
    // A socket left by a crashed server: we hold the store's lock, so no live server
    // owns it.
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    let owner = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&path)?.uid()
    };
    let socket_path = path.clone();
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let app = app.clone();
                    tokio::spawn(async move {
                        if let Err(err) = serve_one(app, stream, owner).await {
                            tracing::warn!(error = %err, "admin socket connection failed");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "admin socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(Listener {
        task,
        path: socket_path,
    })
}

async fn serve_one(app: Arc<App>, stream: UnixStream, owner: u32) -> std::io::Result<()> {
    let peer = stream.peer_cred()?.uid();
    if peer != owner && peer != 0 {
        tracing::warn!(
            peer_uid = peer,
            "admin socket: refused a connection from another user"
        );
        return Ok(());
    }
    let mut line = String::new();
    // Bytes read past the line stay buffered in `reader` (a push's file begins there).
    let mut reader = BufReader::new(stream);
    // A client that never finishes its line does not hold a task for ever.
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        (&mut reader).take(MAX_REQUEST).read_line(&mut line),
    )
    .await
    .map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no complete request line in 10 s",
        )
    })??;
    let version = serde_json::from_str::<serde_json::Value>(&line)
        .ok()
        .and_then(|value| value.get("version").and_then(serde_json::Value::as_u64));
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        let reply = Reply::Err {
            status: 400,
            code: "invalid_request".to_owned(),
            message: format!(
                "this server speaks admin protocol version {PROTOCOL_VERSION}, the command \
                 came as {}: use the upkeep binary of the server's release",
                version.map_or_else(
                    || "an unversioned request".to_owned(),
                    |v| format!("version {v}")
                )
            ),
        };
        return send_reply(reader.get_mut(), &reply).await;
    }
    let command = match serde_json::from_str::<Envelope>(&line).map(|e| e.request) {
        Err(err) => {
            let reply = Reply::Err {
                status: 400,
                code: "invalid_request".to_owned(),
                message: format!("unreadable admin request: {err}"),
            };
            return send_reply(reader.get_mut(), &reply).await;
        }
        Ok(Request::Push(push)) => return serve_push(app, reader, push).await,
        Ok(Request::Backup) => {
            tracing::info!(command = "backup", "admin command via socket");
            // Stream from the store to the socket on a blocking thread. (The store streams
            // its trees while writers go on and catches up on what they changed, for a
            // consistent snapshot; see store::backup.)
            let stream = reader.into_inner().into_std()?;
            stream.set_nonblocking(false)?;
            let result = tokio::task::spawn_blocking(move || {
                let created_at = app.clock.now().to_rfc3339();
                let mut out = std::io::BufWriter::new(stream);
                app.store.backup(&mut out, &created_at)
            })
            .await
            .map_err(std::io::Error::other)?;
            if let Err(err) = result {
                // The client sees a backup without its end line and refuses it.
                tracing::error!(error = %err, "backup over the admin socket failed");
            }
            return Ok(());
        }
        Ok(Request::Admin(command)) => command,
    };
    tracing::info!(command = command.name(), "admin command via socket");
    let result = tokio::task::spawn_blocking(move || {
        let ctx = app.ctx(None, app.clock.now());
        admin::execute(&ctx, app.settings.default_activation_limit, &command)
    })
    .await;
    let reply = match result {
        Ok(outcome) => reply_of(outcome),
        Err(join) => Reply::Err {
            status: 500,
            code: "internal".to_owned(),
            message: format!("the command failed: {join}"),
        },
    };
    send_reply(reader.get_mut(), &reply).await
}

fn reply_of(outcome: Result<Output, crate::Error>) -> Reply {
    match outcome {
        Ok(output) => Reply::Ok {
            text: output.text,
            json: output.json,
        },
        Err(err) => {
            if matches!(
                err,
                crate::Error::Internal(_) | crate::Error::StorageUnavailable(_)
            ) {
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "admin command failed");
            }
            Reply::Err {
                status: err.status().as_u16(),
                code: err.code().to_owned(),
                message: err.public_message("admin"),
            }
        }
    }
}

/// `release push` over the socket: check the request, then stream the bytes that follow
/// it (those already buffered first) into the blob store and ship the release, all on a
/// blocking thread. A refusal before the upload is sent without reading the bytes.
async fn serve_push(
    app: Arc<App>,
    reader: BufReader<UnixStream>,
    push: PushRequest,
) -> std::io::Result<()> {
    tracing::info!(
        command = "release push",
        size = push.size,
        "admin command via socket"
    );
    let buffered = reader.buffer().to_vec();
    let stream = reader.into_inner().into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(UPLOAD_IDLE_TIMEOUT))?;
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let ctx = app.ctx(None, app.clock.now());
        let outcome = admin::plan_push(&ctx, &push, app.settings.max_upload).and_then(|plan| {
            let body = Read::chain(std::io::Cursor::new(buffered), &stream);
            let staged = admin::store_file(&ctx, &push, body)?;
            admin::push(&ctx, &push, plan, staged)
        });
        let mut bytes = serde_json::to_vec(&reply_of(outcome)).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        (&stream).write_all(&bytes)?;
        (&stream).flush()?;
        stream.shutdown(std::net::Shutdown::Write)
    })
    .await
    .map_err(std::io::Error::other)?
}

async fn send_reply(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    stream.write_all(&bytes).await?;
    stream.shutdown().await
}

fn connect(dir: &Path, request: Request) -> Result<std::os::unix::net::UnixStream, ControlError> {
    let stream = open(dir, request)?;
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(|err| ControlError::Unreachable(dir.join(SOCKET_FILE), err))?;
    Ok(stream)
}

/// Connects and sends the request line (the write side stays open).
fn open(dir: &Path, request: Request) -> Result<std::os::unix::net::UnixStream, ControlError> {
    use std::io::Write;
    let path = dir.join(SOCKET_FILE);
    let mut stream = std::os::unix::net::UnixStream::connect(&path)
        .map_err(|err| ControlError::Unreachable(path.clone(), err))?;
    let mut bytes = serde_json::to_vec(&Envelope {
        version: PROTOCOL_VERSION,
        request,
    })
    .map_err(|e| ControlError::Protocol(e.to_string()))?;
    bytes.push(b'\n');
    stream
        .write_all(&bytes)
        .map_err(|err| ControlError::Unreachable(path, err))?;
    Ok(stream)
}

/// `release push` on the server that holds the store in `dir`: sends the request, then
/// streams `file` (exactly `request.size` bytes of it) after it, then reads the reply.
///
/// # Errors
/// No server answers, it refused the push (possibly before taking the bytes), or reading
/// `file` failed.
pub fn push(
    dir: &Path,
    request: &PushRequest,
    file: &mut impl std::io::Read,
) -> Result<Output, ControlError> {
    use std::io::{Read, Write};
    let mut stream = open(dir, Request::Push(request.clone()))?;
    let mut sent: std::io::Result<()> = Ok(());
    let mut buffer = vec![0u8; crate::store::blobs::CHUNK];
    let mut left = request.size;
    while left > 0 {
        let want = usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
        let n = match file.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                return Err(ControlError::Protocol(format!(
                    "cannot read the file: {err}"
                )));
            }
        };
        if let Err(err) = stream.write_all(&buffer[..n]) {
            // The server may have refused the request without reading the bytes: its
            // reply says why.
            sent = Err(err);
            break;
        }
        left -= n as u64;
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    let read = stream.read_to_string(&mut reply);
    match serde_json::from_str(&reply) {
        Ok(Reply::Ok { text, json }) => Ok(Output { text, json }),
        Ok(Reply::Err {
            status,
            code,
            message,
        }) => Err(ControlError::Refused {
            status,
            code,
            message,
        }),
        Err(err) => {
            if let Err(io) = sent.and(read.map(|_| ())) {
                return Err(ControlError::Unreachable(dir.join(SOCKET_FILE), io));
            }
            Err(ControlError::Protocol(format!("{err}: {reply:?}")))
        }
    }
}

/// Streams a backup from the server that holds the store in `dir` into `out`.
///
/// # Errors
/// No server answers, it refused, or writing `out` failed.
pub fn backup(dir: &Path, out: &mut impl std::io::Write) -> Result<(), ControlError> {
    use std::io::BufRead;
    let stream = connect(dir, Request::Backup)?;
    let mut reader = std::io::BufReader::new(stream);
    let mut first = String::new();
    let io = |err: std::io::Error| ControlError::Protocol(err.to_string());
    reader.read_line(&mut first).map_err(io)?;
    if let Ok(Reply::Err {
        status,
        code,
        message,
    }) = serde_json::from_str(&first)
    {
        return Err(ControlError::Refused {
            status,
            code,
            message,
        });
    }
    out.write_all(first.as_bytes()).map_err(io)?;
    std::io::copy(&mut reader, out).map_err(io)?;
    Ok(())
}

/// Runs `command` on the server that holds the store in `dir` (blocking client).
///
/// # Errors
/// No server answers, or it refused the command.
pub fn send(dir: &Path, command: &AdminCommand) -> Result<Output, ControlError> {
    use std::io::Read;
    let mut stream = connect(dir, Request::Admin(command.clone()))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|err| ControlError::Unreachable(dir.join(SOCKET_FILE), err))?;
    match serde_json::from_str(&reply) {
        Ok(Reply::Ok { text, json }) => Ok(Output { text, json }),
        Ok(Reply::Err {
            status,
            code,
            message,
        }) => Err(ControlError::Refused {
            status,
            code,
            message,
        }),
        Err(err) => Err(ControlError::Protocol(format!("{err}: {reply:?}"))),
    }
}
