//! The load client of `benches/backup-under-load.sh`: paced requests on three routes of a
//! running upkeep, first with nothing else going on, then while `upkeep backup` runs
//! against it; prints each route's latency (p50, p99, max) in both phases and how long the
//! backup took.
//!
//! `backup-load --upkeep BIN --data DIR --addr 127.0.0.1:PORT --token ACCOUNT_TOKEN
//!  --out BACKUP_FILE [--idle-secs 3] [--rate 100] [--connections 2]`
//!
//! Each route (`GET /healthz`, `GET /v1/account`, `POST /v1/account/tokens` with a unique
//! name) gets `--connections` keep-alive connections, each sending one request every
//! `1 / --rate` seconds (paced, not as fast as possible: the point is how long a request
//! waits, not how many fit). Latency is from writing the request to the last byte of the
//! response. Phase 1 runs `--idle-secs`; phase 2 starts `BIN --data DIR backup FILE` and
//! lasts until that process exits. Runs on one thread (`current_thread` runtime), so that
//! the script can pin it to a core of its own.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: backup-load --upkeep BIN --data DIR --addr HOST:PORT --token TOKEN \
                     --out FILE [--idle-secs N] [--rate R] [--connections C]";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Healthz,
    Account,
    Create,
}

impl Route {
    const ALL: [Route; 3] = [Route::Healthz, Route::Account, Route::Create];

    fn label(self) -> &'static str {
        match self {
            Route::Healthz => "GET /healthz",
            Route::Account => "GET /v1/account",
            Route::Create => "POST /v1/account/tokens",
        }
    }
}

/// Latencies (µs) of one route in one phase, and how many answers were not 2xx.
#[derive(Default)]
struct Samples {
    micros: Vec<u64>,
    not_2xx: u64,
}

struct Shared {
    /// 0: phase 1 (idle), 1: phase 2 (backup), 2: stop.
    phase: AtomicU64,
    samples: Mutex<[[Samples; 3]; 2]>,
    stop: AtomicBool,
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (mut upkeep, mut data, mut addr, mut token, mut out) = (None, None, None, None, None);
    let (mut idle_secs, mut rate, mut connections) = (3u64, 100u64, 2usize);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(USAGE);
        match arg.as_str() {
            "--upkeep" => upkeep = Some(value()?),
            "--data" => data = Some(value()?),
            "--addr" => addr = Some(value()?),
            "--token" => token = Some(value()?),
            "--out" => out = Some(value()?),
            "--idle-secs" => idle_secs = value()?.parse()?,
            "--rate" => rate = value()?.parse()?,
            "--connections" => connections = value()?.parse()?,
            _ => return Err(USAGE.into()),
        }
    }
    let (Some(upkeep), Some(data), Some(addr), Some(token), Some(out)) =
        (upkeep, data, addr, token, out)
    else {
        return Err(USAGE.into());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(
        upkeep,
        data,
        addr,
        token,
        out,
        Duration::from_secs(idle_secs),
        Duration::from_micros(1_000_000 / rate.max(1)),
        connections,
    ))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    upkeep: String,
    data: String,
    addr: String,
    token: String,
    out: String,
    idle: Duration,
    every: Duration,
    connections: usize,
) -> Result<(), BoxError> {
    let shared = Arc::new(Shared {
        phase: AtomicU64::new(0),
        samples: Mutex::default(),
        stop: AtomicBool::new(false),
    });
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut tasks = Vec::new();
    for route in Route::ALL {
        for c in 0..connections {
            let (shared, addr, token) = (shared.clone(), addr.clone(), token.clone());
            let name_base = format!("bl{run_id}-{c}");
            tasks.push(tokio::spawn(async move {
                drive(route, &addr, &token, &name_base, every, &shared).await
            }));
        }
    }
    tokio::time::sleep(idle).await;

    shared.phase.store(1, Ordering::Relaxed);
    let started = Instant::now();
    // The backup process is waited for on a thread of its own (tokio's `process` feature
    // is not enabled in this crate).
    let (done, finished) = tokio::sync::oneshot::channel();
    {
        let (upkeep, data, out) = (upkeep.clone(), data.clone(), out.clone());
        std::thread::spawn(move || {
            let status = std::process::Command::new(&upkeep)
                .arg("--data")
                .arg(&data)
                .arg("backup")
                .arg(&out)
                .stdout(Stdio::null())
                .status();
            let _ = done.send(status);
        });
    }
    let status = finished.await??;
    let backup_took = started.elapsed();
    shared.phase.store(2, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    if !status.success() {
        return Err(format!("upkeep backup failed: {status}").into());
    }
    let size = std::fs::metadata(&out)?.len();

    let mut samples = shared.samples.lock().await;
    println!(
        "backup: {:.2} s, {:.1} MiB written; {} connections per route, each sending one request every {:?}",
        backup_took.as_secs_f64(),
        size as f64 / (1024.0 * 1024.0),
        connections,
        every
    );
    println!();
    println!("| phase | route | requests | p50 ms | p99 ms | max ms | not 2xx |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (phase, label) in [(0, "idle"), (1, "during backup")] {
        for route in Route::ALL {
            let s = &mut samples[phase][route as usize];
            s.micros.sort_unstable();
            let pct = |p: f64| -> f64 {
                if s.micros.is_empty() {
                    return f64::NAN;
                }
                let i = ((s.micros.len() as f64 * p).ceil() as usize).clamp(1, s.micros.len());
                s.micros[i - 1] as f64 / 1000.0
            };
            println!(
                "| {label} | {} | {} | {:.2} | {:.2} | {:.2} | {} |",
                route.label(),
                s.micros.len(),
                pct(0.50),
                pct(0.99),
                pct(1.0),
                s.not_2xx
            );
        }
    }
    Ok(())
}

/// One keep-alive connection sending `route` every `every` until told to stop.
async fn drive(
    route: Route,
    addr: &str,
    token: &str,
    name_base: &str,
    every: Duration,
    shared: &Shared,
) -> Result<(), BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut next = tokio::time::Instant::now();
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let request = match route {
            Route::Healthz => format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n"),
            Route::Account => {
                format!("GET /v1/account HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {token}\r\n\r\n")
            }
            Route::Create => {
                n += 1;
                let body = format!(r#"{{"name":"{name_base}-{n}","expires":-1}}"#);
                format!(
                    "POST /v1/account/tokens HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {token}\r\n\
                     content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        };
        let phase = shared.phase.load(Ordering::Relaxed);
        let sent = Instant::now();
        stream.write_all(request.as_bytes()).await?;
        let status = read_response(&mut stream, &mut buf).await?;
        let micros = sent.elapsed().as_micros() as u64;
        // A request that started in one phase and ended in another counts in neither.
        if phase < 2 && shared.phase.load(Ordering::Relaxed) == phase {
            let mut samples = shared.samples.lock().await;
            let s = &mut samples[phase as usize][route as usize];
            s.micros.push(micros);
            if !(200..300).contains(&status) {
                s.not_2xx += 1;
            }
        }
        next += every;
        let now = tokio::time::Instant::now();
        if next < now {
            // Late (the previous answer took longer than the period): go at once.
            next = now;
        }
        tokio::time::sleep_until(next).await;
    }
    Ok(())
}

/// Reads one HTTP/1.1 response (Content-Length bodies only, as upkeep sends for these
/// routes); returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16, BoxError> {
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err("the server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..read]);
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let status: u16 = head.get(9..12).ok_or("no status line")?.parse()?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or("no content-length")?;
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err("the server closed the connection mid-body".into());
        }
        buf.extend_from_slice(&chunk[..read]);
    }
    Ok(status)
}
