//! Routes as rows, and the one matcher.
//!
//! Each API family (`crate::api::*`) owns a static table of [`Row`]s: method, path pattern
//! (literal segments and `{param}`s, any number), [`Need`], [`BodyPolicy`], handler.
//! `crate::api::table` gathers every family's rows once into a [`Table`], whose
//! [`Table::lookup`] walks them:
//!
//! - no row's path matches → `404`;
//! - a path matches but no row of it takes the method → `405` with `Allow` built from
//!   those rows (`HEAD` wherever `GET`);
//! - where two patterns match one path, the more specific wins: at the first segment where
//!   they differ, a literal beats a parameter (`…/{slug}/changelog` over
//!   `…/{slug}/{channel}`).
//!
//! No wildcard arm chooses a route: a method a path does not list is a 405, never another
//! row's handler. Paths are matched as sent: an empty segment (`//`) matches nothing; one
//! trailing `/` is ignored. Parameters are percent-decoded on access ([`Call::param`]); a
//! bad escape is a 404 here. Metrics, the OpenAPI document (`api::openapi`) and the tests
//! read the same rows.

use crate::app::App;
use crate::error::Error;
use crate::http::Body;
use crate::http::auth::{Caller, Need};
use crate::http::body::BodyStream;
use crate::http::request::Input;
use crate::model::Timestamp;
use http::{Method, Response};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

/// How a route reads its request body; the limit is `Settings::max_body_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPolicy {
    /// Never read: a body sent anyway is dropped unread (hyper closes the connection
    /// rather than drain more than it already holds).
    None,
    /// Read whole, up to the JSON limit, after the caller is authenticated.
    Json,
    /// Handed to the handler as a [`BodyStream`] (in [`Call::stream`]) to read chunk by
    /// chunk, up to `Settings::max_upload` (`413` by `Content-Length` before a byte is
    /// read). The handler calls [`Call::reauthorize`] after the last chunk, before it
    /// changes anything: the upload may have taken minutes.
    Stream,
}

/// The API family a row belongs to (documentation tags, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/v1/…` (WunderUpdates): JSON bodies, Unix seconds.
    WunderUpdates,
    /// `/api/v1/…` (UpdaterCloud): JSON or form-encoded bodies, RFC 3339.
    UpdaterCloud,
    /// `/_/…` (Query): JSON bodies, Unix milliseconds.
    Query,
    /// `/healthz`, `/metrics`, `/openapi.json`.
    Operations,
    /// The public update checks, downloads and licensing (SPEC §8, §9.2): no token.
    Public,
}

impl Family {
    /// A row of this family ([`Row::new`]).
    pub const fn row(
        self,
        method: Method,
        name: &'static str,
        path: &'static str,
        need: Need,
        handler: Handler,
    ) -> Row {
        Row::new(self, method, name, path, need, handler)
    }
}

/// A write handler's future; boxed so that the request future stays small for reads.
pub type Reply<'a> = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send + 'a>>;

/// What runs a row. Reads answer at once; writes (which wait for a durable flush) return
/// a boxed future owning the request; a row that is usually a read and sometimes a write
/// (EDD's URL answers update checks and license actions alike) tries the read first,
/// which answers `None` to hand the request to the write.
#[derive(Clone, Copy)]
pub enum Handler {
    Read(fn(&App, &Call) -> Result<Response<Body>, Error>),
    Write(for<'a> fn(&'a App, Call) -> Reply<'a>),
    ReadFirst(ReadOrPass, for<'a> fn(&'a App, Call) -> Reply<'a>),
}

/// A `ReadFirst` row's read: its answer, or `None` to pass the request to the write.
pub type ReadOrPass = fn(&App, &Call) -> Option<Result<Response<Body>, Error>>;

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handler::Read(_) => "Read",
            Handler::Write(_) => "Write",
            Handler::ReadFirst(..) => "ReadFirst",
        })
    }
}

/// One route.
#[derive(Debug)]
pub struct Row {
    /// Stable name for logs, metrics and the OpenAPI `operationId`.
    pub name: &'static str,
    pub method: Method,
    /// The path, with `{name}` for a parameter.
    pub path: &'static str,
    pub family: Family,
    pub need: Need,
    pub body: BodyPolicy,
    pub handler: Handler,
    /// How the row's dialect answers a request it cannot take ([`Error::is_bad_request`]:
    /// a body too large, too slow or unreadable, input that does not parse, whether the
    /// layers in front of the handler or the handler found it), or `None` for the common
    /// error shape. The public dialects answer those in their own clients' shapes (SPEC
    /// §3); every other error (a 404 or 409 of the common kind, the server's own failures)
    /// keeps the common shape. When every row of a path has one, a method none of them
    /// takes is a `405` in that shape too ([`Table::refusal_at`]), with `Allow`.
    pub refusal: Option<Refusal>,
}

/// A dialect's answer to a request it cannot take ([`Row::refusal`]).
pub type Refusal = fn(&Error) -> Response<Body>;

impl Row {
    /// A row; `GET` routes take no body, every other method a JSON one unless the row says
    /// [`Row::without_body`].
    pub const fn new(
        family: Family,
        method: Method,
        name: &'static str,
        path: &'static str,
        need: Need,
        handler: Handler,
    ) -> Row {
        Row {
            name,
            body: if matches!(method, Method::GET) {
                BodyPolicy::None
            } else {
                BodyPolicy::Json
            },
            method,
            path,
            family,
            need,
            handler,
            refusal: None,
        }
    }

    /// The same row, answering bad requests in its dialect's shape ([`Row::refusal`]).
    pub const fn refusing(mut self, refusal: Refusal) -> Self {
        self.refusal = Some(refusal);
        self
    }

    /// The same row, streaming its body ([`BodyPolicy::Stream`]: uploads).
    pub const fn streamed(mut self) -> Self {
        self.body = BodyPolicy::Stream;
        self
    }

    /// The same row, taking no body (for writes whose every input is in the path).
    pub const fn without_body(mut self) -> Self {
        self.body = BodyPolicy::None;
        self
    }
}

impl PartialEq for Row {
    /// Rows are static: one row is one address.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// Most path parameters a row may have.
const MAX_PARAMS: usize = 4;
/// Most segments a path may have; longer paths are 404 without a look at the rows.
const MAX_SEGMENTS: usize = 12;

/// A matched row's parameters, as byte ranges of the request path (decoded on access: no
/// allocation on the hot path).
#[derive(Debug, Clone, Default)]
pub struct Params {
    names: [&'static str; MAX_PARAMS],
    ranges: [(u16, u16); MAX_PARAMS],
    len: u8,
    /// The path has a `%`: the parameters need decoding (else they are borrowed as is).
    escaped: bool,
}

/// A request ready for its handler: who, what, the body read, and when.
#[derive(Debug)]
pub struct Call {
    pub row: &'static Row,
    /// `None` only on public routes.
    pub caller: Option<Caller>,
    /// The head, and the body when the row reads it whole ([`BodyPolicy::Json`]).
    pub input: Input,
    /// The body, when the row streams it ([`BodyPolicy::Stream`]).
    pub stream: Option<BodyStream>,
    pub params: Params,
    pub now: Timestamp,
    /// The connection's peer address (the client's, unless behind a proxy: see
    /// `throttle::client_addr`).
    pub peer: std::net::IpAddr,
}

impl Call {
    /// Checks the credential again against the store's state now (and moves `now`): a
    /// streamed handler calls it after reading its body, before changing anything.
    ///
    /// # Errors
    /// As authentication: the token was revoked, expired or lost the scope meanwhile.
    pub fn reauthorize(&mut self, app: &App) -> Result<(), Error> {
        self.now = app.clock.now();
        if self.caller.is_some() {
            self.caller = Some(app.recheck(&self.input.parts.headers, self.row.need, self.now)?);
        }
        Ok(())
    }

    /// The authenticated caller.
    ///
    /// # Errors
    /// `Unauthenticated` on a route whose row is public (a table mistake, never a client's).
    pub fn caller(&self) -> Result<&Caller, Error> {
        self.caller.as_ref().ok_or(Error::Unauthenticated)
    }

    /// The path parameter `name`, percent-decoded (matching guaranteed it decodes).
    ///
    /// # Panics
    /// When the row has no such parameter: a mistake in the handler, caught by tests.
    pub fn param(&self, name: &str) -> Cow<'_, str> {
        let params = &self.params;
        let at = params.names[..usize::from(params.len)]
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("route has no parameter {name}"));
        let (start, end) = params.ranges[at];
        let raw = &self.input.parts.uri.path()[usize::from(start)..usize::from(end)];
        if !params.escaped {
            return Cow::Borrowed(raw);
        }
        percent_decode(raw).unwrap_or(Cow::Borrowed(raw))
    }

    /// The query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.input.parts.uri.query()
    }
}

/// A set of methods, for `Allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Methods(u8);

const METHOD_ORDER: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

impl Methods {
    fn bit(method: &Method) -> u8 {
        METHOD_ORDER
            .iter()
            .position(|m| m == method)
            .map_or(0, |i| 1 << i)
    }

    fn with(self, method: &Method) -> Self {
        let mut bits = self.0 | Self::bit(method);
        if *method == Method::GET {
            bits |= Self::bit(&Method::HEAD);
        }
        Methods(bits)
    }

    pub fn contains(self, method: &Method) -> bool {
        self.0 & Self::bit(method) != 0
    }

    /// In a fixed order: GET, HEAD, POST, PUT, PATCH, DELETE.
    pub fn iter(self) -> impl Iterator<Item = &'static Method> {
        METHOD_ORDER
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, m)| m)
    }

    /// `GET, HEAD, POST`.
    pub fn header_value(self) -> String {
        self.iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One segment of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg {
    Literal(&'static str),
    Param(&'static str),
}

/// The rows that share one path pattern.
struct Group {
    segs: Vec<Seg>,
    /// The literal segments after the first (which the bucket matched), by position:
    /// what a path of the right length must also match.
    literals: Vec<(usize, &'static str)>,
    /// Indexes into [`Table::rows`].
    rows: Vec<usize>,
    allow: Methods,
    /// The refusal every row of the group has ([`Row::refusal`]), for a `405`: `None`
    /// when one of them answers in the common shape.
    refusal: Option<Refusal>,
}

/// Every row of every family, and the patterns grouped for matching.
pub struct Table {
    pub rows: Vec<&'static Row>,
    groups: Vec<Group>,
    /// The groups by their number of segments (the first thing a path must match), then
    /// by their first segment, so a lookup tries only those.
    by_len: Vec<Vec<Bucket>>,
}

/// The groups of one length that share a first segment (`first`: a literal, or `None` for
/// a parameter), most specific first: ordered by their segments' kinds, a literal before a
/// parameter at the first place they differ. Two patterns that match one path have equal
/// literals wherever both have literals, so the first that fits is the most specific.
struct Bucket {
    first: Option<&'static str>,
    groups: Vec<usize>,
}

fn parse_pattern(path: &'static str) -> Vec<Seg> {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Seg::Param(name),
                None => Seg::Literal(seg),
            },
        )
        .collect()
}

impl Table {
    /// Builds the table from every family's rows, in order; panics on a malformed table
    /// (two rows of one method and path, too many segments or parameters), which every
    /// test run catches.
    pub fn new(rows: Vec<&'static Row>) -> Table {
        let mut groups: Vec<Group> = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            let segs = parse_pattern(row.path);
            assert!(
                segs.len() <= MAX_SEGMENTS,
                "{}: too many segments",
                row.path
            );
            let params = segs.iter().filter(|s| matches!(s, Seg::Param(_))).count();
            assert!(params <= MAX_PARAMS, "{}: too many parameters", row.path);
            match groups.iter_mut().find(|group| group.segs == segs) {
                Some(group) => {
                    assert!(
                        !group.allow.contains(&row.method),
                        "{} {} appears twice",
                        row.method,
                        row.path
                    );
                    group.rows.push(index);
                    group.allow = group.allow.with(&row.method);
                    group.refusal = group.refusal.and(row.refusal);
                }
                None => groups.push(Group {
                    allow: Methods::default().with(&row.method),
                    refusal: row.refusal,
                    literals: segs
                        .iter()
                        .enumerate()
                        .skip(1)
                        .filter_map(|(i, seg)| match seg {
                            Seg::Literal(literal) => Some((i, *literal)),
                            Seg::Param(_) => None,
                        })
                        .collect(),
                    segs,
                    rows: vec![index],
                }),
            }
        }
        let mut by_len: Vec<Vec<Bucket>> = (0..=MAX_SEGMENTS).map(|_| Vec::new()).collect();
        for (index, group) in groups.iter().enumerate() {
            let first = match group.segs.first() {
                Some(Seg::Literal(literal)) => Some(*literal),
                _ => None,
            };
            let buckets = &mut by_len[group.segs.len()];
            match buckets.iter_mut().find(|b| b.first == first) {
                Some(bucket) => bucket.groups.push(index),
                None => buckets.push(Bucket {
                    first,
                    groups: vec![index],
                }),
            }
        }
        let kinds = |group: &Group| -> Vec<bool> {
            group
                .segs
                .iter()
                .map(|seg| matches!(seg, Seg::Param(_)))
                .collect()
        };
        for buckets in &mut by_len {
            // The parameter-first bucket last: any literal-first match is more specific.
            buckets.sort_by_key(|b| b.first.is_none());
            for bucket in buckets.iter_mut() {
                bucket.groups.sort_by_key(|&i| kinds(&groups[i]));
            }
        }
        Table {
            rows,
            groups,
            by_len,
        }
    }

    /// The row of `index` (as [`Matched::index`] and the metrics count them).
    pub fn row(&self, index: usize) -> Option<&'static Row> {
        self.rows.get(index).copied()
    }
}

/// The found row, its index in the table (`crate::api::table`) and the path's parameters.
#[derive(Debug)]
pub struct Matched {
    pub index: usize,
    pub row: &'static Row,
    pub params: Params,
}

fn not_found() -> Error {
    Error::NotFound("no such route".to_owned())
}

impl Table {
    /// The group of patterns `path` fits, with `segments` filled with where each of the
    /// path's segments starts and ends.
    ///
    /// # Errors
    /// `NotFound` for an unknown path.
    #[inline]
    fn group_of(
        &self,
        path: &str,
        segments: &mut [(u16, u16); MAX_SEGMENTS],
    ) -> Result<&Group, Error> {
        let rest = path.strip_prefix('/').ok_or_else(not_found)?;
        // One trailing `/` is ignored, but `//` is an empty segment, not the root.
        let rest = match rest.strip_suffix('/') {
            Some("") => return Err(not_found()),
            Some(trimmed) => trimmed,
            None => rest,
        };
        let mut n = 0;
        if path.len() > usize::from(u16::MAX) {
            return Err(not_found());
        }
        if !rest.is_empty() {
            // `rest` starts at byte 1 of `path`; a segment ends at a `/` or the end.
            let mut start = 1usize;
            let end = 1 + rest.len();
            while start <= end {
                let stop = path.as_bytes()[start..end]
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(end, |at| start + at);
                if n == MAX_SEGMENTS || stop == start {
                    return Err(not_found());
                }
                segments[n] = (start as u16, stop as u16);
                n += 1;
                start = stop + 1;
            }
        }
        let segment = |i: usize| &path[usize::from(segments[i].0)..usize::from(segments[i].1)];
        let table = self;
        let fits = |group: &Group| group.literals.iter().all(|&(i, l)| segment(i) == l);
        let mut found = None;
        'buckets: for bucket in &table.by_len[n] {
            if bucket.first.is_some_and(|first| segment(0) != first) {
                continue;
            }
            for &i in &bucket.groups {
                if fits(&table.groups[i]) {
                    found = Some(&table.groups[i]);
                    break 'buckets;
                }
            }
        }
        found.ok_or_else(not_found)
    }

    /// For a known `path` asked with a method none of its rows takes: the dialect shape
    /// its rows answer a request they cannot take in ([`Row::refusal`]), when they all
    /// have one. `None` for the common shape, or when `path` is unknown.
    pub fn refusal_at(&self, path: &str) -> Option<Refusal> {
        let mut segments = [(0u16, 0u16); MAX_SEGMENTS];
        self.group_of(path, &mut segments).ok()?.refusal
    }

    /// Finds the row for `method` and `path` (without its query string). `HEAD` is
    /// accepted wherever `GET` is.
    ///
    /// # Errors
    /// `NotFound` for an unknown path (or a parameter with a bad escape),
    /// `MethodNotAllowed` (with the allowed methods) for a known path and another method.
    pub fn lookup(&self, method: &Method, path: &str) -> Result<Matched, Error> {
        // (start, end) of each segment in `path`.
        let mut segments = [(0u16, 0u16); MAX_SEGMENTS];
        let group = self.group_of(path, &mut segments)?;
        let segment = |i: usize| &path[usize::from(segments[i].0)..usize::from(segments[i].1)];
        let table = self;
        let wanted = if *method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let index = *group
            .rows
            .iter()
            .find(|&&index| table.rows[index].method == *wanted)
            .ok_or(Error::MethodNotAllowed(group.allow))?;
        // One search for `%` in the whole path, instead of one per parameter (twice).
        let mut params = Params {
            escaped: path.as_bytes().contains(&b'%'),
            ..Params::default()
        };
        for (i, seg) in group.segs.iter().enumerate() {
            if let Seg::Param(name) = seg {
                if params.escaped {
                    percent_decode(segment(i)).ok_or_else(not_found)?;
                }
                let at = usize::from(params.len);
                params.names[at] = name;
                params.ranges[at] = segments[i];
                params.len += 1;
            }
        }
        Ok(Matched {
            index,
            row: table.rows[index],
            params,
        })
    }
}

/// Decodes `%XX` escapes; `None` for a bad escape or a non-UTF-8 result.
fn percent_decode(segment: &str) -> Option<Cow<'_, str>> {
    if !segment.contains('%') {
        return Some(Cow::Borrowed(segment));
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// A concrete path for a row: every `{param}` filled with `value`.
pub fn example_path(row: &Row, value: &str) -> String {
    let segs = parse_pattern(row.path);
    if segs.is_empty() {
        return "/".to_owned();
    }
    segs.iter().fold(String::new(), |mut out, seg| {
        out.push('/');
        out.push_str(match seg {
            Seg::Literal(literal) => literal,
            Seg::Param(_) => value,
        });
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{find, table};

    #[track_caller]
    fn check(method: Method, path: &str, expected: Result<&str, u16>) {
        let got = find(&method, path)
            .map(|m| m.row.name)
            .map_err(|err| err.status().as_u16());
        assert_eq!(got, expected, "{method} {path}");
    }

    #[test]
    fn every_row_of_the_table_routes_to_itself() {
        let mut names = std::collections::HashSet::new();
        for (index, row) in table().rows.iter().enumerate() {
            assert!(names.insert(row.name), "duplicate route name {}", row.name);
            let path = example_path(row, "sample-name");
            let found =
                find(&row.method, &path).unwrap_or_else(|e| panic!("{} {path}: {e}", row.method));
            assert_eq!(found.row, *row, "{} {path}", row.method);
            assert_eq!(found.index, index);
        }
    }

    #[test]
    fn parameters_are_decoded_on_access() {
        let found = find(&Method::DELETE, "/v1/account/tokens/a%2Dtoken").unwrap();
        assert_eq!(found.row.name, "delete_account_token");
        let parts = http::Request::builder()
            .uri("/v1/account/tokens/a%2Dtoken")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let call = Call {
            row: found.row,
            stream: None,
            caller: None,
            input: Input {
                parts,
                body: bytes::Bytes::new(),
            },
            params: found.params,
            now: Timestamp::from_secs(0),
            peer: std::net::IpAddr::from([127, 0, 0, 1]),
        };
        assert_eq!(call.param("name"), "a-token");
        check(Method::DELETE, "/api/v1/tokens/self", Ok("delete_token"));
        check(Method::HEAD, "/healthz", Ok("health"));
        check(Method::GET, "/v1/account/", Ok("get_account"));
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in [
            "",
            "//",
            "/v1",
            "/v2/account",
            "//v1/account",
            "/v1//account",
            "/v1/account/x",
            "/v1/account/tokens/a/b",
            "/a/b/c/d/e/f/g",
            "/a/b/c/d/e/f/g/h/i/j/k/l/m/n",
            "v1/account",
            "/_/tokens",
            "/api/v1/tokens/self/rotate/x",
        ] {
            check(Method::GET, path, Err(404));
        }
        // A parameter with a bad escape names nothing.
        check(Method::DELETE, "/v1/account/tokens/%zz", Err(404));
        check(Method::DELETE, "/v1/account/tokens/%ff", Err(404));
        check(Method::POST, "/v1/account", Err(405));
        check(Method::DELETE, "/v1/account/tokens", Err(405));
        check(Method::GET, "/v1/account/tokens/x", Err(405));
        check(Method::PUT, "/healthz", Err(405));
        check(Method::GET, "/api/v1/tokens/self/rotate", Err(405));
        // No wildcard arm: a method the path does not list never reaches another row.
        check(Method::PATCH, "/_/token", Err(405));
        check(Method::PUT, "/_/account", Err(405));
        check(Method::PATCH, "/_/account", Err(405));
        check(Method::OPTIONS, "/_/license", Err(405));
    }

    #[test]
    fn method_not_allowed_lists_the_allowed_methods() {
        match find(&Method::PATCH, "/v1/account/tokens") {
            Err(Error::MethodNotAllowed(allowed)) => {
                assert_eq!(allowed.header_value(), "GET, HEAD, POST");
            }
            other => panic!("{other:?}"),
        }
        match find(&Method::PATCH, "/_/token") {
            Err(Error::MethodNotAllowed(allowed)) => {
                assert_eq!(allowed.header_value(), "GET, HEAD, POST, PUT, DELETE");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_first_fit_is_the_most_specific_of_every_pattern_that_matches() {
        // Every row's pattern filled with each literal of the table (and a plain value),
        // looked up, against a brute force over every group.
        let table = table();
        let literals: Vec<&str> = table
            .groups
            .iter()
            .flat_map(|g| g.segs.iter())
            .filter_map(|seg| match seg {
                Seg::Literal(l) => Some(*l),
                Seg::Param(_) => None,
            })
            .chain(["x"])
            .collect();
        let mut checked = 0;
        for row in &table.rows {
            for value in &literals {
                let path = example_path(row, value);
                let segments: Vec<&str> = match path.as_str() {
                    "/" => Vec::new(),
                    _ => path[1..].split('/').collect(),
                };
                let matches = |g: &&Group| g.segs.len() == segments.len();
                let fits = |g: &&Group| {
                    g.segs.iter().zip(&segments).all(|(seg, s)| match seg {
                        Seg::Literal(l) => l == s,
                        Seg::Param(_) => true,
                    })
                };
                let mut best: Option<&Group> = None;
                for g in table.groups.iter().filter(matches).filter(fits) {
                    if best.is_none_or(|b| more_specific(&g.segs, &b.segs)) {
                        best = Some(g);
                    }
                }
                let want = best.map(|g| g.rows[0]);
                let got = table
                    .lookup(&table.rows[want.unwrap_or(0)].method, &path)
                    .ok()
                    .map(|m| m.index);
                assert_eq!(got, want, "{path}");
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    /// Whether pattern `a` is more specific than `b` (both matched the same path): at the
    /// first segment where they differ, a literal beats a parameter.
    fn more_specific(a: &[Seg], b: &[Seg]) -> bool {
        for (x, y) in a.iter().zip(b) {
            match (x, y) {
                (Seg::Literal(_), Seg::Param(_)) => return true,
                (Seg::Param(_), Seg::Literal(_)) => return false,
                _ => {}
            }
        }
        false
    }

    #[test]
    fn a_literal_segment_beats_a_parameter_and_long_paths_match() {
        static LITERAL: Row = Row::new(
            Family::Operations,
            Method::GET,
            "changelog",
            "/updates/{prefix}/{slug}/changelog",
            Need::Public,
            Handler::Read(|_, _| Err(Error::Unauthenticated)),
        );
        static PARAM: Row = Row::new(
            Family::Operations,
            Method::GET,
            "channel",
            "/updates/{prefix}/{slug}/{channel}",
            Need::Public,
            Handler::Read(|_, _| Err(Error::Unauthenticated)),
        );
        static LONG: Row = Row::new(
            Family::Operations,
            Method::GET,
            "long",
            "/v1/public/{prefix}/plugins/{slug}/{channel}",
            Need::Public,
            Handler::Read(|_, _| Err(Error::Unauthenticated)),
        );
        // Either order of declaration: the literal wins.
        for rows in [[&PARAM, &LITERAL, &LONG], [&LITERAL, &PARAM, &LONG]] {
            let table = Table::new(rows.to_vec());
            let pick = |path: &str| -> Option<&'static str> {
                table.lookup(&Method::GET, path).ok().map(|m| m.row.name)
            };
            assert_eq!(pick("/updates/acme/seo/changelog"), Some("changelog"));
            assert_eq!(pick("/updates/acme/seo/beta"), Some("channel"));
            assert_eq!(pick("/v1/public/acme/plugins/seo/beta"), Some("long"));
        }
    }
}
