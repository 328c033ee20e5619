//! Fills a data directory with download keys and activations (SPEC §9) for the licensing
//! benchmarks, fast: every write goes through the service layer as the admin API's would
//! (`service::licensing::generate_key`, `service::licensing::activate`), is applied at
//! once and not waited on; one durable write at the end flushes them all.
//!
//! `cargo run --release --example prefill-licensing -- DATA_DIR KEYS [--accounts A] [--customers C]`
//!
//! Makes `A` accounts (4 by default; prefixes `lic00000`, …), each with one plugin
//! (`bench-plugin`, licensed by download keys, `require_activation`) and `C` customers (1,000 by default), and `KEYS`
//! download keys spread round-robin over the accounts and their customers: random uuid4
//! values (the default generator), for the account's product, activation limit 5, no
//! expiry; then activates each key once for its own site (`site-<n>.com`, production, so
//! it counts). So the store holds `KEYS` keys and `KEYS` activations.
//!
//! Writes `DATA_DIR.keys` (next to the directory, not in it): one line per key,
//! `account<TAB>product id<TAB>key<TAB>site`, for the bench and the load client to use
//! real keys. Progress and the time taken go to stderr.
//!
//! The bench (`benches/licensing.rs`) includes this file as a module and calls
//! [`cached`], which keeps the filled directory under `target/bench-licensing/` so that
//! reruns start at once.

#![allow(dead_code)] // as a module of the bench, `main` is unused

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};
use upkeep::Store;
use upkeep::model::{
    AccountPrefix, LicenseModel, NewAccount, ProductId, ProductKind, ProductScope, Timestamp,
};
use upkeep::service::catalog::{self, ProductChanges};
use upkeep::service::licensing::{self as lic, ActivationRules, CustomerChanges, NewKey, Target};
use upkeep::service::{Actor, Ctx, Events};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: prefill-licensing DATA_DIR KEYS [--accounts A] [--customers C]";

/// One key of the fill, as written to `DATA_DIR.keys`.
#[derive(Debug, Clone)]
pub struct KeyLine {
    pub account: AccountPrefix,
    pub product: ProductId,
    pub key: String,
    pub site: String,
}

/// The keys file of a data directory: `DATA_DIR.keys`.
pub fn keys_file(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".keys");
    PathBuf::from(name)
}

/// Reads `DATA_DIR.keys`.
///
/// # Errors
/// The file is missing or malformed.
pub fn read_keys(dir: &Path) -> Result<Vec<KeyLine>, BoxError> {
    let text = std::fs::read_to_string(keys_file(dir))?;
    text.lines()
        .map(|line| {
            let mut f = line.split('\t');
            let (Some(account), Some(product), Some(key), Some(site)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(format!("bad keys line {line:?}").into());
            };
            Ok(KeyLine {
                account: AccountPrefix::parse(account)?,
                product: ProductId(product.parse()?),
                key: key.to_owned(),
                site: site.to_owned(),
            })
        })
        .collect()
}

/// The filled directory for `keys` keys under `target/bench-licensing/`, made (4
/// accounts, 1,000 customers each) when not there yet. A directory is complete when its
/// keys file exists (written last).
///
/// # Errors
/// The fill failed.
pub fn cached(keys: usize) -> Result<PathBuf, BoxError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-licensing");
    let dir = root.join(keys.to_string());
    if keys_file(&dir).exists() {
        eprintln!("prefill-licensing: using the cached {}", dir.display());
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?; // an interrupted fill
    }
    std::fs::create_dir_all(&root)?;
    prefill(&dir, keys, 4, 1_000)?;
    Ok(dir)
}

/// Fills `dir` (see the module doc) and writes `dir.keys`.
///
/// # Errors
/// A write failed.
pub fn prefill(dir: &Path, keys: usize, accounts: usize, customers: usize) -> Result<(), BoxError> {
    if keys == 0 || accounts == 0 || customers == 0 {
        return Err("KEYS, A and C must be at least 1".into());
    }
    let started = Instant::now();
    let store = Store::open(dir)?;
    let events = Events::default();
    let now = Timestamp::from_system(SystemTime::now());
    let ctx = Ctx {
        store: &store,
        events: &events,
        actor: Actor::Cli,
        now,
    };
    let rules = ActivationRules::default();

    // Accounts, their product and customers.
    let mut tenants = Vec::with_capacity(accounts);
    for a in 0..accounts {
        let prefix = format!("lic{a:05}");
        let new = NewAccount::parse(
            &format!("Licensing Vendor {a}"),
            &format!("lic{a}@example.com"),
            Some(&prefix),
        )
        .map_err(|(field, why)| format!("{field}: {why}"))?;
        drop(store.create_account(new, now)?);
        let account = AccountPrefix::parse(&prefix)?;
        let product = catalog::create_product(
            &ctx,
            &account,
            "bench-plugin".to_owned(),
            ProductKind::Plugin,
            ProductChanges {
                license: Some(LicenseModel::DownloadKeys),
                require_activation: Some(true),
                published: Some(true),
                ..ProductChanges::default()
            },
        )?
        .durable_blocking()?; // once per account: its id is needed
        let mut ids = Vec::with_capacity(customers);
        for c in 0..customers {
            let changes = CustomerChanges {
                name: Some(format!("Customer {c}")),
                email: Some(format!("customer{c}@example.com")),
                ..CustomerChanges::default()
            };
            // Not waited on; its id (drawn by the store) is read back by its email.
            drop(lic::create_customer(&ctx, &account, changes)?);
            let customer = store
                .customer_by_email(&account, &format!("customer{c}@example.com"))?
                .ok_or("the customer just created is missing")?;
            ids.push(customer.id);
        }
        tenants.push((account, product.id, ids));
    }
    eprintln!(
        "prefill-licensing: {accounts} accounts, {} customers ({:.1?})",
        accounts * customers,
        started.elapsed()
    );

    let keys_path = keys_file(dir);
    let partial = keys_path.with_extension("keys.partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    let generator = upkeep::model::KeyGenerator::default();
    let phase = Instant::now();
    for n in 0..keys {
        let (account, product, customers) = &tenants[n % accounts];
        let customer = customers[(n / accounts) % customers.len()];
        let value = upkeep::model::license_key::generate(&generator)?;
        let new = NewKey {
            customer_id: customer,
            products: ProductScope::Only(vec![*product]),
            activation_limit: Some(5),
            expires_at: None,
            key: Some(value.clone()),
            notes: None,
        };
        // Not waited on: applied now, made durable by the last write's flush.
        drop(lic::generate_key(&ctx, account, new)?);
        let site = format!("site-{n}.com");
        let target = Target::Site(upkeep::model::normalize_site(&site)?);
        drop(lic::activate(
            &ctx,
            &rules,
            account,
            Some(*product),
            Some(&value),
            target,
            None,
            None,
        )?);
        writeln!(out, "{account}\t{}\t{value}\t{site}", product.0)?;
        if (n + 1) % 100_000 == 0 {
            eprintln!(
                "prefill-licensing: {} keys + activations ({:.1?})",
                n + 1,
                started.elapsed()
            );
        }
    }
    let writes = phase.elapsed();
    // The one flush: waits until every write committed so far is durable.
    store.already(()).durable_blocking()?;
    let usage: u64 = tenants
        .iter()
        .map(|(a, _, _)| store.activation_usage(a))
        .sum::<Result<u64, _>>()?;
    if usage != keys as u64 {
        return Err(format!("{usage} counted activations, expected {keys}").into());
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&partial, &keys_path)?;
    let size = store.size_on_disk()?;
    drop(store);
    eprintln!(
        "prefill-licensing: {keys} keys and {keys} activations in {accounts} accounts, durable, \
         in {:.1?} (keys + activations {:.1?}, {:.0} per second; {} MiB on disk)",
        started.elapsed(),
        writes,
        keys as f64 / writes.as_secs_f64(),
        size >> 20
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut accounts: usize = 4;
    let mut customers: usize = 1_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--accounts" => accounts = args.next().ok_or(USAGE)?.parse()?,
            "--customers" => customers = args.next().ok_or(USAGE)?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => positional.push(arg),
        }
    }
    let [dir, keys] = <[String; 2]>::try_from(positional).map_err(|_| USAGE)?;
    prefill(Path::new(&dir), keys.parse()?, accounts, customers)
}
