//! The one value codec: `[format version: u8] ++ bincode(body)`.
//!
//! bincode has no schema: it is positional. Adding, removing, reordering or retyping *any*
//! field of a stored record silently changes what old bytes mean. So every such change is
//! a new format version: freeze the old struct in a `vN` module beside the record, decode
//! it through `Record::decode_version`, and add a golden-bytes fixture under
//! `tests/fixtures/records/` (the `fixtures_still_decode` test reads them all). Never put
//! `#[serde(skip…)]`, `flatten`, `tag` or `untagged` on a stored type (bincode loses data
//! with them). Decoding rejects trailing bytes, so a truncated-field change cannot pass.
//!
//! The configuration below is part of the on-disk format: never change it in place.

use crate::model::catalog::{Home, ProductHome};
use crate::model::{
    Account, Activation, Customer, CustomerId, DayRollup, DownloadKey, DownloadKeyId, GraceAlias,
    Group, HolderDeactivations, LicenseId, LicensingSettings, PlanLicense, Product, ProductId,
    Release, Token, TokenHash,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ 1 << 20 }>,
> = bincode::config::standard().with_limit::<{ 1 << 20 }>();

/// A stored value type with a format version.
pub trait Record: Serialize + DeserializeOwned {
    /// For error messages and logs.
    const NAME: &'static str;
    /// The version written today.
    const VERSION: u8;

    /// Decodes a body written as `version`. Records with frozen older versions override
    /// this to convert them.
    ///
    /// # Errors
    /// Unknown version or undecodable body.
    fn decode_version(version: u8, body: &[u8]) -> Result<Self, DecodeError> {
        if version == Self::VERSION {
            decode_body(body)
        } else {
            Err(DecodeError::UnknownVersion(version))
        }
    }
}

impl Record for Account {
    const NAME: &'static str = "account";
    const VERSION: u8 = 2;

    fn decode_version(version: u8, body: &[u8]) -> Result<Self, DecodeError> {
        match version {
            1 => decode_body::<crate::model::account::v1::Account>(body).map(Into::into),
            2 => decode_body(body),
            other => Err(DecodeError::UnknownVersion(other)),
        }
    }
}

impl Record for Token {
    const NAME: &'static str = "token";
    const VERSION: u8 = 1;
}

impl Record for GraceAlias {
    const NAME: &'static str = "grace alias";
    const VERSION: u8 = 1;
}

impl Record for PlanLicense {
    const NAME: &'static str = "plan license";
    const VERSION: u8 = 1;
}

impl Record for Group {
    const NAME: &'static str = "group";
    const VERSION: u8 = 1;
}

impl Record for Product {
    const NAME: &'static str = "product";
    const VERSION: u8 = 1;
}

impl Record for Release {
    const NAME: &'static str = "version";
    const VERSION: u8 = 1;
}

impl Record for Home {
    const NAME: &'static str = "home";
    const VERSION: u8 = 1;
}

impl Record for ProductHome {
    const NAME: &'static str = "product home";
    const VERSION: u8 = 1;
}

impl Record for Customer {
    const NAME: &'static str = "customer";
    const VERSION: u8 = 1;
}

impl Record for DownloadKey {
    const NAME: &'static str = "download key";
    const VERSION: u8 = 1;
}

impl Record for Activation {
    const NAME: &'static str = "activation";
    const VERSION: u8 = 1;
}

impl Record for LicensingSettings {
    const NAME: &'static str = "licensing settings";
    const VERSION: u8 = 1;
}

impl Record for DayRollup {
    const NAME: &'static str = "day rollup";
    const VERSION: u8 = 1;
}

impl Record for HolderDeactivations {
    const NAME: &'static str = "holder deactivations";
    const VERSION: u8 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    UnknownVersion(u8),
    Body(String),
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty value"),
            DecodeError::UnknownVersion(v) => write!(f, "unknown format version {v}"),
            DecodeError::Body(e) => write!(f, "undecodable body: {e}"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} trailing bytes"),
        }
    }
}

pub fn encode<R: Record>(record: &R) -> Vec<u8> {
    let mut out = vec![R::VERSION];
    // Our records hold only strings, integers, options and fixed arrays, all of which
    // bincode encodes infallibly into a Vec; the limit only guards decoding.
    bincode::serde::encode_into_std_write(record, &mut out, CONFIG)
        .unwrap_or_else(|err| panic!("encoding a {} cannot fail: {err}", R::NAME));
    out
}

/// # Errors
/// The value is empty, of an unknown version, or does not decode exactly.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    R::decode_version(version, body)
}

/// Decodes a body with the current configuration, rejecting trailing bytes.
///
/// # Errors
/// bincode failed, or did not consume every byte.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let (value, used) = bincode::serde::decode_from_slice(body, CONFIG)
        .map_err(|e| DecodeError::Body(e.to_string()))?;
    if used != body.len() {
        return Err(DecodeError::TrailingBytes(body.len() - used));
    }
    Ok(value)
}

/// A value of one tree (see `schema`): its stored bytes, and back. Records go through
/// the versioned codec; index values are raw fixed-width bytes.
pub trait Value: Sized {
    /// For error messages and logs.
    const NAME: &'static str;

    fn encode_value(&self) -> Vec<u8>;

    /// # Errors
    /// The bytes are not a value of this type (a corrupt store).
    fn decode_value(bytes: &[u8]) -> Result<Self, String>;
}

macro_rules! record_values {
    ($($record:ty),+) => {$(
        impl Value for $record {
            const NAME: &'static str = <$record as Record>::NAME;

            fn encode_value(&self) -> Vec<u8> {
                encode(self)
            }

            fn decode_value(bytes: &[u8]) -> Result<Self, String> {
                decode(bytes).map_err(|err| format!("{}: {err}", <Self as Record>::NAME))
            }
        }
    )+};
}

record_values!(
    Account,
    Token,
    GraceAlias,
    PlanLicense,
    Group,
    Product,
    Release,
    Home,
    ProductHome,
    Customer,
    DownloadKey,
    Activation,
    LicensingSettings,
    DayRollup,
    HolderDeactivations
);

macro_rules! id_values {
    ($($ty:ident: $name:literal),+) => {$(
        /// An index value pointing at a record by id: u64 BE.
        impl Value for $ty {
            const NAME: &'static str = $name;

            fn encode_value(&self) -> Vec<u8> {
                self.0.to_be_bytes().to_vec()
            }

            fn decode_value(bytes: &[u8]) -> Result<Self, String> {
                <$ty as super::key::Key>::from_bytes(bytes)
            }
        }
    )+};
}

id_values!(ProductId: "product id", CustomerId: "customer id", DownloadKeyId: "download key id");

/// An index value pointing at a token (or license key) by hash: its 32 bytes.
impl Value for TokenHash {
    const NAME: &'static str = "hash";

    fn encode_value(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        <TokenHash as super::key::Key>::from_bytes(bytes)
    }
}

/// An index value pointing at a plan license: its id, u64 BE.
impl Value for LicenseId {
    const NAME: &'static str = "license id";

    fn encode_value(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }

    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        <LicenseId as super::key::Key>::from_bytes(bytes)
    }
}

/// A reference count (`blob_refs`), u64 BE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u64);

impl Value for Count {
    const NAME: &'static str = "count";

    fn encode_value(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }

    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| format!("count must be 8 bytes, got {}", bytes.len()))?;
        Ok(Count(u64::from_be_bytes(array)))
    }
}

/// The value of a pure index entry (the key says everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Empty;

impl Value for Empty {
    const NAME: &'static str = "empty";

    fn encode_value(&self) -> Vec<u8> {
        Vec::new()
    }

    fn decode_value(_: &[u8]) -> Result<Self, String> {
        Ok(Empty)
    }
}

/// Bytes whose meaning depends on the key (`meta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw(pub Vec<u8>);

impl Value for Raw {
    const NAME: &'static str = "bytes";

    fn encode_value(&self) -> Vec<u8> {
        self.0.clone()
    }

    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        Ok(Raw(bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    //! Round trips, and the golden-bytes fixtures: every format version ever written must
    //! keep decoding. `UPKEEP_BLESS=1 cargo test fixtures` writes missing fixtures for the
    //! current versions; existing fixture files are never rewritten.
    use super::*;
    use crate::model::*;
    use std::path::PathBuf;

    fn prefix() -> AccountPrefix {
        AccountPrefix::parse("abcde123").unwrap()
    }

    fn account() -> Account {
        Account {
            prefix: prefix(),
            name: "Acme Plugins".into(),
            email: "dev@acme.io".into(),
            created_at: Timestamp::from_millis(1_790_000_000_123),
            updated_at: Timestamp::from_millis(1_790_000_099_000),
            license: Some(LicenseId(7)),
        }
    }

    fn token() -> Token {
        Token {
            id: TokenId(42),
            hash: TokenHash::of("upk_at_fixture"),
            principal: Principal::Account(prefix()),
            name: "ci-deploy".into(),
            scopes: Scopes::parse_all(["read_user", "manage_licenses"]).unwrap(),
            expires_at: Some(Timestamp::from_millis(1_800_000_000_000)),
            created_at: Timestamp::from_millis(1_790_000_000_000),
            updated_at: Timestamp::from_millis(1_790_000_000_500),
            last_used_at: None,
        }
    }

    fn operator_token() -> Token {
        Token {
            id: TokenId(43),
            hash: TokenHash::of("upk_ot_fixture"),
            principal: Principal::Operator {
                active: true,
                write: false,
            },
            name: "Grafana (read only)".into(),
            scopes: Scopes::empty(),
            expires_at: None,
            created_at: Timestamp::from_millis(1_790_000_000_000),
            updated_at: Timestamp::from_millis(1_790_000_000_000),
            last_used_at: Some(Timestamp::from_millis(1_790_000_001_000)),
        }
    }

    fn license() -> PlanLicense {
        PlanLicense {
            id: LicenseId(7),
            key_hash: TokenHash::of("upk_pl_fixture"),
            limit: 10,
            expires_at: None,
            created_at: Timestamp::from_millis(1_790_000_000_000),
            account: Some(prefix()),
        }
    }

    fn grace() -> GraceAlias {
        GraceAlias {
            token: TokenHash::of("upk_at_fixture"),
            until: Timestamp::from_millis(1_790_000_360_000),
        }
    }

    fn customer() -> Customer {
        Customer {
            id: CustomerId(4_503_599_627_370_496),
            account: prefix(),
            name: "Ann Example".into(),
            email: "Ann@Example.com".into(),
            entity: Entity::Business,
            business_name: Some("Example GmbH".into()),
            vat_number: Some("DE123456789".into()),
            country: Some("DE".into()),
            state: None,
            city: Some("Berlin".into()),
            address: Some("Unter den Linden 1".into()),
            postcode: Some("10117".into()),
            phone: None,
            notes: Some("imported".into()),
            created_at: Timestamp::from_millis(1_790_000_000_000),
            updated_at: Timestamp::from_millis(1_790_000_000_500),
        }
    }

    fn download_key() -> DownloadKey {
        DownloadKey {
            id: DownloadKeyId(77),
            account: prefix(),
            customer_id: CustomerId(4_503_599_627_370_496),
            lookup: [7; 32],
            sealed: vec![1, 2, 3, 4, 5],
            products: ProductScope::Only(vec![ProductId(11), ProductId(12)]),
            activation_limit: 3,
            status: KeyStatus::Disabled,
            expires_at: Some(Timestamp::from_millis(1_800_000_000_000)),
            notes: None,
            counted: 2,
            recent_activations: vec![Timestamp::from_millis(1_790_000_100_000)],
            created_at: Timestamp::from_millis(1_790_000_000_000),
            updated_at: Timestamp::from_millis(1_790_000_000_000),
            last_checked_at: None,
        }
    }

    fn activation() -> Activation {
        Activation {
            id: ActivationId(99),
            key_id: DownloadKeyId(77),
            identity: Identity::Site(normalize_site("shop.example.com").unwrap()),
            label: Some("Shop".into()),
            counts: true,
            created_at: Timestamp::from_millis(1_790_000_100_000),
            last_seen_at: Some(Timestamp::from_millis(1_790_000_200_000)),
        }
    }

    fn licensing_settings() -> LicensingSettings {
        LicensingSettings {
            generator: KeyGenerator::segmented_default(),
        }
    }

    fn day_rollup() -> DayRollup {
        DayRollup {
            checks: 1_234_567,
            downloads: 89,
            validations: [5, 4, 0, 3, 0, 0, 0, 0, 2, 1],
            activations: [7, 0, 0, 0, 0, 0, 6, 0, 0, 0],
        }
    }

    fn holder_deactivations() -> HolderDeactivations {
        HolderDeactivations {
            at: vec![
                Timestamp::from_millis(1_790_000_100_000),
                Timestamp::from_millis(1_790_000_200_000),
            ],
        }
    }

    #[test]
    fn records_round_trip() {
        assert_eq!(
            decode::<DayRollup>(&encode(&day_rollup())).unwrap(),
            day_rollup()
        );
        assert_eq!(
            decode::<HolderDeactivations>(&encode(&holder_deactivations())).unwrap(),
            holder_deactivations()
        );
        assert_eq!(
            decode::<Customer>(&encode(&customer())).unwrap(),
            customer()
        );
        assert_eq!(
            decode::<DownloadKey>(&encode(&download_key())).unwrap(),
            download_key()
        );
        assert_eq!(
            decode::<Activation>(&encode(&activation())).unwrap(),
            activation()
        );
        // A sealed value is encoded as a sequence of `u8` and read back as one byte
        // string (`model::licensing`): the same bytes, also past a one-byte length.
        for len in [0, 77, 250, 251, 300, 70_000] {
            let long = DownloadKey {
                sealed: (0..len).map(|i| (i % 251) as u8).collect(),
                ..download_key()
            };
            assert_eq!(
                decode::<DownloadKey>(&encode(&long)).unwrap(),
                long,
                "{len}"
            );
        }
        let machine = Activation {
            identity: Identity::Machine("fp-1".into()),
            ..activation()
        };
        assert_eq!(decode::<Activation>(&encode(&machine)).unwrap(), machine);
        assert_eq!(decode::<GraceAlias>(&encode(&grace())).unwrap(), grace());
        assert_eq!(decode::<Account>(&encode(&account())).unwrap(), account());
        assert_eq!(decode::<Token>(&encode(&token())).unwrap(), token());
        assert_eq!(
            decode::<Token>(&encode(&operator_token())).unwrap(),
            operator_token()
        );
        assert_eq!(
            decode::<PlanLicense>(&encode(&license())).unwrap(),
            license()
        );
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let mut bytes = encode(&account());
        assert_eq!(decode::<Account>(&[]), Err(DecodeError::Empty));
        bytes[0] = 99;
        assert_eq!(
            decode::<Account>(&bytes),
            Err(DecodeError::UnknownVersion(99))
        );
        let mut trailing = encode(&account());
        trailing.push(0);
        assert_eq!(
            decode::<Account>(&trailing),
            Err(DecodeError::TrailingBytes(1))
        );
        let truncated = &encode(&token())[..10];
        assert!(matches!(
            decode::<Token>(truncated),
            Err(DecodeError::Body(_))
        ));
    }

    fn fixture_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records")
    }

    /// Checks `record` against the committed fixture `name.vN.bin`.
    fn check_fixture<R: Record + PartialEq + fmt::Debug>(name: &str, record: &R) {
        let path = fixture_dir().join(format!("{name}.v{}.bin", R::VERSION));
        if !path.exists() && std::env::var_os("UPKEEP_BLESS").is_some() {
            std::fs::create_dir_all(fixture_dir()).unwrap();
            std::fs::write(&path, encode(record)).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPKEEP_BLESS=1 to write it once)",
                path.display()
            )
        });
        assert_eq!(&decode::<R>(&bytes).unwrap(), record, "{}", path.display());
        assert_eq!(
            encode(record),
            bytes,
            "encoding of {} changed: that is a new format version",
            path.display()
        );
    }

    /// An older version's fixture decodes to `expected` (it is never written again).
    fn check_old_fixture<R: Record + PartialEq + fmt::Debug>(
        name: &str,
        version: u8,
        expected: &R,
    ) {
        let path = fixture_dir().join(format!("{name}.v{version}.bin"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(bytes[0], version, "{}", path.display());
        assert_eq!(
            &decode::<R>(&bytes).unwrap(),
            expected,
            "{}",
            path.display()
        );
    }

    #[test]
    fn older_versions_still_decode() {
        // account.v1.bin was written from `account()` before `updated_at` existed.
        let mut from_v1 = account();
        from_v1.updated_at = from_v1.created_at;
        check_old_fixture("account", 1, &from_v1);
    }

    #[test]
    fn fixtures_still_decode() {
        check_fixture("account", &account());
        check_fixture("token", &token());
        check_fixture("operator_token", &operator_token());
        check_fixture("plan_license", &license());
        check_fixture("grace_alias", &grace());
        check_fixture("customer", &customer());
        check_fixture("download_key", &download_key());
        check_fixture("activation", &activation());
        check_fixture("licensing_settings", &licensing_settings());
        check_fixture("day_rollup", &day_rollup());
        check_fixture("holder_deactivations", &holder_deactivations());
    }
}
