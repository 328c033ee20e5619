//! Fills a data directory for the load benchmark (`benches/load.sh`), fast: every write is
//! applied at once and a single durable write at the end flushes them all.
//!
//! `cargo run --release --example prefill -- DATA_DIR TOKENS [--per-account K] [--operators M]`
//!
//! Makes `TOKENS` account tokens (scope `api`, never expiring) in `TOKENS / K` accounts
//! (prefixes `l0000000`, `l0000001`, …; each account's first token, `default`, plus `K - 1`
//! more; K = 10 by default), and `M`
//! operator tokens (active, write; 100 by default, so that `GET /_/token?limit=100`
//! returns a full page). Prints, on stdout, lines a shell can read:
//!
//! ```text
//! ACCOUNT_TOKEN=upk_at_…     the first account's `default` token (scope api)
//! OPERATOR_TOKEN=upk_ot_…    an active operator token with write
//! INDEX_TOKENS=1000100       tokens in the index after the fill
//! ```
//!
//! Progress goes to stderr. The directory must not be in use by a running server.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};
use upkeep::Store;
use upkeep::model::{AccountPrefix, NewAccount, Principal, Scope, Scopes, Timestamp};
use upkeep::store::NewToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: prefill DATA_DIR TOKENS [--per-account K] [--operators M]";

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut per_account: usize = 10;
    let mut operators: usize = 100;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--per-account" => per_account = args.next().ok_or(USAGE)?.parse()?,
            "--operators" => operators = args.next().ok_or(USAGE)?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => positional.push(arg),
        }
    }
    let [dir, tokens] = <[String; 2]>::try_from(positional).map_err(|_| USAGE)?;
    let dir = PathBuf::from(dir);
    let tokens: usize = tokens.parse()?;
    if tokens == 0 || per_account == 0 || operators == 0 {
        return Err("TOKENS, K and M must be at least 1".into());
    }

    let started = Instant::now();
    let store = Store::open(&dir)?;
    let now = Timestamp::from_system(SystemTime::now());
    let mut account_token = None;
    let mut made = 0;
    let mut account_n = 0;
    while made < tokens {
        // Known prefixes (`l0000000`, …): no random draw, and no need for the value.
        let prefix = format!("l{account_n:07}");
        let new = NewAccount::parse(
            &format!("Load Vendor {account_n}"),
            &format!("load{account_n}@example.com"),
            Some(&prefix),
        )
        .map_err(|(field, why)| format!("{field}: {why}"))?;
        account_n += 1;
        let pending = store.create_account(new, now)?;
        if account_token.is_none() {
            // One flush, for the one token whose secret is printed.
            account_token = Some(pending.durable_blocking()?.1.secret);
        } else {
            // Not waited on: applied now, made durable by the last write's flush.
            drop(pending);
        }
        made += 1;
        let prefix = AccountPrefix::parse(&prefix)?;
        for i in 1..per_account.min(tokens - made + 1) {
            let new = NewToken {
                principal: Principal::Account(prefix),
                name: format!("t{i}"),
                scopes: Scopes::only(Scope::Api),
                expires_at: None,
            };
            drop(store.create_token(new, now)?);
            made += 1;
        }
        if made % 100_000 < per_account {
            eprintln!("prefill: {made} account tokens ({:.1?})", started.elapsed());
        }
    }
    let mut operator_token = None;
    for i in 0..operators {
        let new = NewToken {
            principal: Principal::Operator {
                active: true,
                write: true,
            },
            name: format!("load-operator-{i:04}"),
            scopes: Scopes::empty(),
            expires_at: None,
        };
        let pending = store.create_token(new, now)?;
        if i + 1 == operators {
            // The one durable write: its flush covers every write before it.
            operator_token = Some(pending.durable_blocking()?.secret);
        } else {
            drop(pending);
        }
    }
    eprintln!(
        "prefill: {made} account tokens in {account_n} accounts and {operators} operator tokens, durable, in {:.1?}",
        started.elapsed()
    );
    println!("ACCOUNT_TOKEN={}", account_token.ok_or("no account made")?);
    println!(
        "OPERATOR_TOKEN={}",
        operator_token.ok_or("no operator token made")?
    );
    println!("INDEX_TOKENS={}", store.index().len());
    Ok(())
}
