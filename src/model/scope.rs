use serde::{Deserialize, Serialize};
use std::fmt;

/// One permission an account token can hold (the UpdaterCloud scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Scope {
    /// Everything, including managing tokens.
    Api = 1 << 0,
    /// The account profile (`/me`, `/v1/account`).
    ReadUser = 1 << 1,
    ReadReleases = 1 << 2,
    ManageReleases = 1 << 3,
    ReadLicenses = 1 << 4,
    ManageLicenses = 1 << 5,
    Reports = 1 << 6,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::Api,
        Scope::ReadUser,
        Scope::ReadReleases,
        Scope::ManageReleases,
        Scope::ReadLicenses,
        Scope::ManageLicenses,
        Scope::Reports,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::ReadUser => "read_user",
            Scope::ReadReleases => "read_releases",
            Scope::ManageReleases => "manage_releases",
            Scope::ReadLicenses => "read_licenses",
            Scope::ManageLicenses => "manage_licenses",
            Scope::Reports => "reports",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }

    /// The scopes this one grants besides itself.
    const fn implied(self) -> u8 {
        match self {
            Scope::Api => Scopes::EVERY,
            Scope::ManageReleases => Scope::ReadReleases as u8,
            Scope::ManageLicenses => Scope::ReadLicenses as u8,
            Scope::ReadUser | Scope::ReadReleases | Scope::ReadLicenses | Scope::Reports => 0,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A set of scopes as granted (a bit set; stored as one byte).
///
/// What a set *grants* is wider than what it holds: `api` grants every scope and
/// `manage_X` grants `read_X`. [`Scopes::grants`] answers with that closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct Scopes(u8);

impl Scopes {
    const EVERY: u8 = 0x7f;

    pub const fn empty() -> Self {
        Scopes(0)
    }

    pub const fn only(scope: Scope) -> Self {
        Scopes(scope as u8)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bit set as stored (one bit per [`Scope`]).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set of `bits`, unless a bit names no scope.
    pub const fn from_bits(bits: u8) -> Option<Scopes> {
        if bits & !Self::EVERY == 0 {
            Some(Scopes(bits))
        } else {
            None
        }
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope as u8;
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope as u8 != 0
    }

    /// Every scope this set grants, implied ones included.
    pub fn effective(self) -> Scopes {
        let mut bits = self.0;
        for scope in Scope::ALL {
            if self.contains(scope) {
                bits |= scope.implied();
            }
        }
        Scopes(bits)
    }

    /// Whether a token holding `self` may do what needs `scope`.
    pub fn grants(self, scope: Scope) -> bool {
        self.effective().contains(scope)
    }

    /// Whether a token holding `self` may create a token holding `other`.
    pub fn covers(self, other: Scopes) -> bool {
        let mine = self.effective().0;
        other.effective().0 & !mine == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    /// Parses scope names, each exactly as written (`api`, not ` api`).
    ///
    /// # Errors
    /// The first unknown name, or an empty list.
    pub fn parse_all<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        let mut scopes = Scopes::empty();
        for name in names {
            match Scope::parse(name) {
                Some(scope) => scopes.insert(scope),
                None if name.is_empty() => {
                    return Err("an empty scope name".to_owned());
                }
                None => {
                    return Err(format!(
                        "unknown scope `{name}` (known: {})",
                        Scope::ALL.map(Scope::as_str).join(", ")
                    ));
                }
            }
        }
        if scopes.is_empty() {
            return Err("at least one scope is required".to_owned());
        }
        Ok(scopes)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.pad(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_grants_every_scope() {
        let api = Scopes::only(Scope::Api);
        for scope in Scope::ALL {
            assert!(api.grants(scope), "{scope}");
        }
    }

    #[test]
    fn manage_implies_read_but_not_the_reverse() {
        let manage = Scopes::only(Scope::ManageLicenses);
        assert!(manage.grants(Scope::ReadLicenses));
        assert!(!manage.grants(Scope::ReadReleases));
        assert!(!manage.grants(Scope::Api));
        assert!(!Scopes::only(Scope::ReadLicenses).grants(Scope::ManageLicenses));
    }

    #[test]
    fn a_set_covers_only_what_it_grants() {
        let manage = Scopes::only(Scope::ManageLicenses);
        assert!(manage.covers(Scopes::only(Scope::ReadLicenses)));
        assert!(!manage.covers(Scopes::only(Scope::Api)));
        assert!(!manage.covers(Scopes::only(Scope::ReadUser)));
        assert!(
            Scopes::only(Scope::Api).covers(Scopes::parse_all(["reports", "read_user"]).unwrap())
        );
    }

    #[test]
    fn parse_rejects_unknown_and_empty() {
        assert!(
            Scopes::parse_all(["api", "admin"])
                .unwrap_err()
                .contains("`admin`")
        );
        assert!(Scopes::parse_all([]).is_err());
        assert!(Scopes::parse_all([" api "]).is_err());
        assert!(
            Scopes::parse_all(["api", ""])
                .unwrap_err()
                .contains("empty scope name")
        );
    }
}
