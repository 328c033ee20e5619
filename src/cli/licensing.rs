//! The customer-licensing commands (SPEC §13): `customer`, `key`, `activation`. Their doc
//! comments are the `--help` text; each converts into `admin::licensing::LicensingCommand`.

use super::*;

#[derive(Debug, Args)]
pub struct CustomerArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: CustomerCommand,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Args)]
pub struct ActivationArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: ActivationCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CustomerCommand {
    /// Create a customer (emails are unique in the account, in any case).
    Create {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The customer's name.
        #[arg(long)]
        name: String,
        /// The customer's email.
        #[arg(long)]
        email: String,
        /// A business customer: its business name.
        #[arg(long)]
        business: Option<String>,
        /// ISO 3166-1 alpha-2 country code, e.g. DE.
        #[arg(long)]
        country: Option<String>,
    },
    /// List an account's customers (`--query` finds by email or name prefix).
    List {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// An email or name prefix.
        #[arg(long, short = 'q')]
        query: Option<String>,
    },
    /// Delete a customer with its download keys and their activations.
    Delete {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The customer's id.
        id: u64,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Generate a download key for a customer and print it.
    Generate {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The customer's id.
        #[arg(long)]
        customer: u64,
        /// The products it covers (slugs or ids, repeat or comma-separate), or `all`.
        #[arg(long = "product", required = true, value_delimiter = ',')]
        products: Vec<String>,
        /// Activation limit: 0 = unlimited; default 1.
        #[arg(long, allow_hyphen_values = true)]
        limit: Option<i64>,
        /// Lifetime, e.g. `365d`; never expires when omitted.
        #[arg(long, value_parser = parse_lifetime)]
        expires: Option<Duration>,
        /// Import this key instead of generating one (8–128 URL-safe characters).
        #[arg(long)]
        key: Option<String>,
    },
    /// List an account's download keys (with their values).
    List {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// Only this customer's keys.
        #[arg(long)]
        customer: Option<u64>,
        /// Only keys covering this product (slug or id).
        #[arg(long)]
        product: Option<String>,
    },
    /// Show a download key with its activations.
    Show {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The key's id.
        id: u64,
    },
    /// Disable a key: every check and download refuses it until enabled.
    Disable {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The key's id.
        id: u64,
    },
    /// Enable a disabled key.
    Enable {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The key's id.
        id: u64,
    },
    /// Delete a key with its activations.
    Delete {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The key's id.
        id: u64,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ActivationCommand {
    /// List a key's activations.
    List {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The key's id.
        #[arg(long)]
        key: u64,
    },
    /// Delete an activation (frees its slot).
    Delete {
        /// The account's prefix.
        #[arg(long, env = "UPKEEP_ACCOUNT")]
        account: String,
        /// The activation's id.
        id: u64,
    },
}

impl CustomerCommand {
    /// The admin command this runs.
    pub fn into_admin(self) -> AdminCommand {
        use crate::admin::licensing::LicensingCommand as L;
        AdminCommand::Licensing(match self {
            CustomerCommand::Create {
                account,
                name,
                email,
                business,
                country,
            } => L::CustomerCreate {
                account,
                name,
                email,
                business,
                country,
            },
            CustomerCommand::List { account, query } => L::CustomerList { account, query },
            CustomerCommand::Delete { account, id } => L::CustomerDelete { account, id },
        })
    }
}

impl KeyCommand {
    /// The admin command this runs.
    pub fn into_admin(self) -> AdminCommand {
        use crate::admin::licensing::LicensingCommand as L;
        AdminCommand::Licensing(match self {
            KeyCommand::Generate {
                account,
                customer,
                products,
                limit,
                expires,
                key,
            } => L::KeyGenerate {
                account,
                customer,
                products,
                limit,
                expires,
                key,
            },
            KeyCommand::List {
                account,
                customer,
                product,
            } => L::KeyList {
                account,
                customer,
                product,
            },
            KeyCommand::Show { account, id } => L::KeyShow { account, id },
            KeyCommand::Disable { account, id } => L::KeyEnable {
                account,
                id,
                enabled: false,
            },
            KeyCommand::Enable { account, id } => L::KeyEnable {
                account,
                id,
                enabled: true,
            },
            KeyCommand::Delete { account, id } => L::KeyDelete { account, id },
        })
    }
}

impl ActivationCommand {
    /// The admin command this runs.
    pub fn into_admin(self) -> AdminCommand {
        use crate::admin::licensing::LicensingCommand as L;
        AdminCommand::Licensing(match self {
            ActivationCommand::List { account, key } => L::ActivationList { account, key },
            ActivationCommand::Delete { account, id } => L::ActivationDelete { account, id },
        })
    }
}
