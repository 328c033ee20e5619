//! Prometheus metrics, kept in fixed arrays of atomics: recording a request is a few
//! relaxed atomic adds (no lock, no allocation); rendering walks the arrays.
//!
//! - `upkeep_http_requests_total{route,status}` — counter.
//! - `upkeep_http_request_duration_seconds{route}` — histogram.
//! - `upkeep_auth_failures_total{reason}` — counter (missing, malformed, unknown or
//!   expired, throttled, forbidden).
//! - `upkeep_connections_refused_total`, `upkeep_connections_evicted_total` — counters
//!   (connection slots, see `server`).
//! - `upkeep_tokens`, `upkeep_accounts`, `upkeep_store_size_bytes`,
//!   `upkeep_store_flushes_total`, `upkeep_build_info{version}`.
//! - `upkeep_log_lines_dropped_total` — appended by `crate::telemetry::render_metrics`.
//! - `upkeep_update_checks_total`, `upkeep_downloads_total`, `upkeep_blobs` — appended by
//!   `api::ops`; `upkeep_license_validations_total{code}`, `upkeep_activations_total{code}`,
//!   `upkeep_report_flushes_total{result}` — by `update::counts::Counts::render_licensing`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The statuses the server answers with; anything else counts as `other`.
const STATUSES: [u16; 16] = [
    200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 500, 503, 0,
];
/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Why an authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing = 0,
    Malformed = 1,
    Unknown = 2,
    Throttled = 3,
    Forbidden = 4,
}

const AUTH_REASONS: [&str; 5] = [
    "missing",
    "malformed",
    "unknown_or_expired",
    "throttled",
    "forbidden",
];

fn counters(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

pub struct Metrics {
    /// `[route][status]`; the route index `routes()` is "unmatched".
    requests: Box<[AtomicU64]>,
    /// `[route][bucket]` (cumulative at render time), plus `+Inf` as the last bucket.
    buckets: Box<[AtomicU64]>,
    /// `[route]`, microseconds.
    sum_micros: Box<[AtomicU64]>,
    auth_failures: Box<[AtomicU64]>,
    connections_refused: AtomicU64,
    connections_evicted: AtomicU64,
    /// Uploads stored (release zips and files) and their bytes.
    uploads: AtomicU64,
    upload_bytes: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let routes = routes() + 1;
        Metrics {
            requests: counters(routes * STATUSES.len()),
            buckets: counters(routes * (BUCKETS.len() + 1)),
            sum_micros: counters(routes),
            auth_failures: counters(AUTH_REASONS.len()),
            connections_refused: AtomicU64::new(0),
            connections_evicted: AtomicU64::new(0),
            uploads: AtomicU64::new(0),
            upload_bytes: AtomicU64::new(0),
        }
    }
}

/// Numbers that live elsewhere, gathered when rendering.
pub struct Gauges {
    pub tokens: u64,
    pub accounts: u64,
    pub store_size_bytes: u64,
    pub flushes: u64,
}

/// Routes counted: every row of the table, then "unmatched".
fn routes() -> usize {
    crate::api::table().rows.len()
}

fn route_name(index: usize) -> &'static str {
    crate::api::table()
        .row(index)
        .map_or("unmatched", |row| row.name)
}

impl Metrics {
    /// Records an upload received whole (`bytes` long).
    pub fn upload(&self, bytes: u64) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `upkeep_uploads_total` and `upkeep_upload_bytes_total`, Prometheus text.
    pub fn render_uploads(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP upkeep_uploads_total Uploads received whole (release zips and files)."
        );
        let _ = writeln!(out, "# TYPE upkeep_uploads_total counter");
        let _ = writeln!(
            out,
            "upkeep_uploads_total {}",
            self.uploads.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP upkeep_upload_bytes_total Bytes of the uploads received whole."
        );
        let _ = writeln!(out, "# TYPE upkeep_upload_bytes_total counter");
        let _ = writeln!(
            out,
            "upkeep_upload_bytes_total {}",
            self.upload_bytes.load(Ordering::Relaxed)
        );
    }

    /// Records one answered request.
    /// `route`: the row's index in the route table (`None`: unmatched).
    pub fn request(&self, route: Option<usize>, status: u16, latency: Duration) {
        let route = route.unwrap_or_else(routes);
        let status_index = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len() - 1);
        self.requests[route * STATUSES.len() + status_index].fetch_add(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS.len());
        self.buckets[route * (BUCKETS.len() + 1) + bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros[route].fetch_add(micros, Ordering::Relaxed);
    }

    pub fn auth_failure(&self, reason: AuthFailure) {
        self.auth_failures[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A new connection refused: its address was at its cap with nothing idle.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// An idle connection closed to make room for a new one.
    pub fn connection_evicted(&self) {
        self.connections_evicted.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        out.push_str(
            "# HELP upkeep_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE upkeep_http_requests_total counter\n");
        for route in 0..=routes() {
            for (i, status) in STATUSES.iter().enumerate() {
                let n = get(&self.requests[route * STATUSES.len() + i]);
                if n > 0 {
                    let status = if *status == 0 {
                        "other".to_owned()
                    } else {
                        status.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "upkeep_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                        route_name(route)
                    );
                }
            }
        }
        out.push_str(
            "# HELP upkeep_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE upkeep_http_request_duration_seconds histogram\n");
        for route in 0..=routes() {
            let base = route * (BUCKETS.len() + 1);
            let total: u64 = (0..=BUCKETS.len())
                .map(|b| get(&self.buckets[base + b]))
                .sum();
            if total == 0 {
                continue;
            }
            let name = route_name(route);
            let mut cumulative = 0;
            for (b, le) in BUCKETS.iter().enumerate() {
                cumulative += get(&self.buckets[base + b]);
                let _ = writeln!(
                    out,
                    "upkeep_http_request_duration_seconds_bucket{{route=\"{name}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "upkeep_http_request_duration_seconds_bucket{{route=\"{name}\",le=\"+Inf\"}} {total}"
            );
            let sum = get(&self.sum_micros[route]) as f64 / 1e6;
            let _ = writeln!(
                out,
                "upkeep_http_request_duration_seconds_sum{{route=\"{name}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "upkeep_http_request_duration_seconds_count{{route=\"{name}\"}} {total}"
            );
        }
        out.push_str("# HELP upkeep_auth_failures_total Refused authentications, by reason.\n");
        out.push_str("# TYPE upkeep_auth_failures_total counter\n");
        for (i, reason) in AUTH_REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "upkeep_auth_failures_total{{reason=\"{reason}\"}} {}",
                get(&self.auth_failures[i])
            );
        }
        let gauge = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        gauge(
            &mut out,
            "upkeep_connections_refused_total",
            "counter",
            "New connections refused: the client address held its maximum, none idle.",
            get(&self.connections_refused),
        );
        gauge(
            &mut out,
            "upkeep_connections_evicted_total",
            "counter",
            "Idle keep-alive connections closed to make room for new ones.",
            get(&self.connections_evicted),
        );
        gauge(
            &mut out,
            "upkeep_tokens",
            "gauge",
            "Tokens that can authenticate (incl. grace aliases).",
            gauges.tokens,
        );
        gauge(
            &mut out,
            "upkeep_accounts",
            "gauge",
            "Accounts.",
            gauges.accounts,
        );
        gauge(
            &mut out,
            "upkeep_store_size_bytes",
            "gauge",
            "Size of the store on disk.",
            gauges.store_size_bytes,
        );
        gauge(
            &mut out,
            "upkeep_store_flushes_total",
            "counter",
            "Group-commit flushes.",
            gauges.flushes,
        );
        let _ = write!(
            out,
            "# HELP upkeep_build_info Build information.\n# TYPE upkeep_build_info gauge\nupkeep_build_info{{version=\"{}\"}} 1\n",
            crate::cli::VERSION
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histograms_and_gauges() {
        let metrics = Metrics::default();
        let get_account = crate::api::rows()
            .iter()
            .position(|row| row.name == "get_account");
        metrics.request(get_account, 200, Duration::from_micros(300));
        metrics.request(get_account, 200, Duration::from_millis(3));
        metrics.request(None, 404, Duration::from_micros(50));
        metrics.request(get_account, 418, Duration::from_secs(5));
        metrics.auth_failure(AuthFailure::Malformed);
        let text = metrics.render(&Gauges {
            tokens: 7,
            accounts: 2,
            store_size_bytes: 1024,
            flushes: 3,
        });
        assert!(
            text.contains("upkeep_http_requests_total{route=\"get_account\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("upkeep_http_requests_total{route=\"get_account\",status=\"other\"} 1\n")
        );
        assert!(
            text.contains("upkeep_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n")
        );
        assert!(text.contains(
            "upkeep_http_request_duration_seconds_bucket{route=\"get_account\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "upkeep_http_request_duration_seconds_bucket{route=\"get_account\",le=\"0.005\"} 2\n"
        ));
        assert!(text.contains(
            "upkeep_http_request_duration_seconds_bucket{route=\"get_account\",le=\"+Inf\"} 3\n"
        ));
        assert!(
            text.contains("upkeep_http_request_duration_seconds_count{route=\"get_account\"} 3\n")
        );
        assert!(text.contains("upkeep_auth_failures_total{reason=\"malformed\"} 1\n"));
        assert!(text.contains("upkeep_tokens 7\n") && text.contains("upkeep_accounts 2\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
