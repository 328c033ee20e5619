use super::{AccountPrefix, LicenseId, Timestamp};
use serde::{Deserialize, Serialize};

/// A vendor (tenant). Stored in `prefix_account`.
///
/// Format version 2 (added `updated_at`). Changing a field means a new version (see
/// `store::codec`); older versions stay frozen in [`v1`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub prefix: AccountPrefix,
    pub name: String,
    pub email: String,
    pub created_at: Timestamp,
    /// Last change (creation, or its plan license bound or unbound).
    pub updated_at: Timestamp,
    /// The plan license bound to this account, if any.
    pub license: Option<LicenseId>,
}

/// Frozen predecessors of [`Account`]. Never change these: stored bytes depend on them.
pub mod v1 {
    use crate::model::{AccountPrefix, LicenseId, Timestamp};
    use serde::{Deserialize, Serialize};

    /// `Account` format version 1.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Account {
        pub prefix: AccountPrefix,
        pub name: String,
        pub email: String,
        pub created_at: Timestamp,
        pub license: Option<LicenseId>,
    }

    impl From<Account> for super::Account {
        /// Version 1 knew no later change than the creation.
        fn from(old: Account) -> Self {
            super::Account {
                prefix: old.prefix,
                name: old.name,
                email: old.email,
                created_at: old.created_at,
                updated_at: old.created_at,
                license: old.license,
            }
        }
    }
}

/// A validated request to create an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub prefix: Option<AccountPrefix>,
    pub name: String,
    pub email: String,
    /// The expiry of the account's first token: `None` (never) unless the creator's own
    /// credential expires (a token never creates a token that outlives it).
    pub first_token_expires_at: Option<Timestamp>,
}

impl NewAccount {
    pub const MAX_NAME_LEN: usize = 200;
    pub const MAX_EMAIL_LEN: usize = 254;

    /// # Errors
    /// `(field, reason)` for the first field that breaks a rule.
    pub fn parse(
        name: &str,
        email: &str,
        prefix: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        // Lengths are of the value as sent (what the API's schema states), as for every
        // other text field; the rest is checked on the value trimmed.
        let sent_name_len = name.chars().count();
        let name = name.trim();
        if name.is_empty() || sent_name_len > Self::MAX_NAME_LEN {
            return Err((
                "name",
                format!("must be 1–{} characters long", Self::MAX_NAME_LEN),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(("name", "may not contain control characters".to_owned()));
        }
        let sent_email_len = email.chars().count();
        let email = email.trim();
        let valid_email = sent_email_len <= Self::MAX_EMAIL_LEN
            && email.len() <= Self::MAX_EMAIL_LEN
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if !valid_email {
            return Err((
                "email",
                "must be an address like name@example.com".to_owned(),
            ));
        }
        let prefix = prefix
            .map(AccountPrefix::parse)
            .transpose()
            .map_err(|reason| ("prefix", reason))?;
        Ok(NewAccount {
            prefix,
            name: name.to_owned(),
            email: email.to_owned(),
            first_token_expires_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_account_validation_names_the_field() {
        assert!(NewAccount::parse("Acme", "dev@acme.io", None).is_ok());
        assert_eq!(
            NewAccount::parse(" ", "dev@acme.io", None).unwrap_err().0,
            "name"
        );
        for email in [
            "",
            "acme.io",
            "@acme.io",
            "dev@acme",
            "dev@@acme.io",
            "a b@acme.io",
            "dev@acme.io.",
        ] {
            assert_eq!(
                NewAccount::parse("Acme", email, None).unwrap_err().0,
                "email",
                "{email}"
            );
        }
        // The limits hold for the value as sent, surrounding blanks included.
        let long_email = format!("dev@{}.io", "a".repeat(NewAccount::MAX_EMAIL_LEN - 7));
        assert!(NewAccount::parse("Acme", &long_email, None).is_ok());
        assert_eq!(
            NewAccount::parse("Acme", &format!(" {long_email}"), None)
                .unwrap_err()
                .0,
            "email"
        );
        let long_name = "n".repeat(NewAccount::MAX_NAME_LEN);
        assert!(NewAccount::parse(&long_name, "dev@acme.io", None).is_ok());
        assert_eq!(
            NewAccount::parse(&format!("{long_name} "), "dev@acme.io", None)
                .unwrap_err()
                .0,
            "name"
        );
        assert_eq!(
            NewAccount::parse("Acme", "dev@acme.io", Some("X"))
                .unwrap_err()
                .0,
            "prefix"
        );
    }
}
