//! The use cases, each written once: every API family, the admin CLI and the admin socket
//! call these functions, so a rule lives in one place (GUIDE §3.1).
//!
//! - A service function takes a [`Ctx`] (the store, the event bus, *who* acts — the
//!   [`Actor`] — and *when*) and a typed command, checks every rule, and starts the write.
//!   It knows no HTTP, no JSON and no sled.
//! - A write comes back as [`Done`]: the value, its place in the commit order, and the
//!   domain [`Event`]s it causes. The events are published only once the write is durable
//!   ([`Done::durable`] / [`Done::durable_blocking`]): the hook webhooks and reports will
//!   subscribe to ([`Events::subscribe`]).
//! - Over HTTP, a write runs off the async runtime's workers ([`write()`]): the transaction
//!   (and its wait for the store's write lock) happens on a blocking thread, and only the
//!   group-commit wait is async. A slow write never delays `/healthz` on a 1-vCPU VPS.
//!
//! Reads are plain functions too; they do not need the blocking pool (index lookups and
//! short sled reads).

pub mod accounts;
pub mod catalog;
pub mod licensing;
pub mod plan_licenses;
pub mod reports;
pub mod tokens;

use crate::error::Error;
use crate::model::{AccountPrefix, LicenseId, Scopes, Timestamp, TokenId};
use crate::store::{Pending, Store, Ticket};
use std::sync::{Arc, RwLock};

/// Who does something: data for audit logs and webhooks, and the rules that depend on the
/// caller (scopes it may grant, the expiry its tokens are capped at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// An account token.
    Account {
        account: AccountPrefix,
        token: TokenId,
        scopes: Scopes,
        /// The credential's own expiry (for a grace secret, the end of its grace).
        expires_at: Option<Timestamp>,
        /// The credential is a rotated token's previous secret, in its grace.
        grace: bool,
    },
    /// An operator token.
    Operator {
        token: TokenId,
        expires_at: Option<Timestamp>,
        grace: bool,
    },
    /// The admin command line (locally, or through the admin socket): the operator at the
    /// machine, bound by no token.
    Cli,
    /// A caller of the public routes (SPEC §8, §9.2): no token, no authority of its own.
    /// It may make the licensing writes those routes make (activate, deactivate) for the
    /// account their path names, and nothing an operator or an account token may do.
    Public,
}

impl Actor {
    /// The expiry a token this actor creates is capped at (SPEC §2: a token never creates
    /// a token that outlives it).
    fn expires_at(&self) -> Option<Timestamp> {
        match self {
            Actor::Account { expires_at, .. } | Actor::Operator { expires_at, .. } => *expires_at,
            Actor::Cli | Actor::Public => None,
        }
    }

    /// Refuses a secret in its rotation grace window: it may read, but not rotate, create
    /// or delete tokens (SPEC §2). Refuses the public caller too, which holds no token:
    /// every token, account and plan-license write starts here.
    fn require_current_secret(&self) -> Result<(), Error> {
        match self {
            Actor::Account { grace: true, .. } | Actor::Operator { grace: true, .. } => {
                Err(crate::model::DomainError::GraceSecret.into())
            }
            Actor::Public => Err(Error::Forbidden(
                "the public routes cannot manage tokens, accounts or plan licenses".to_owned(),
            )),
            _ => Ok(()),
        }
    }

    /// The operator's authority: an operator token or the command line. Account tokens
    /// and the public caller are refused the operator's writes.
    fn is_operator(&self) -> bool {
        matches!(self, Actor::Operator { .. } | Actor::Cli)
    }

    /// The account an account token acts for; `None` for operators and the CLI.
    pub fn account(&self) -> Option<&AccountPrefix> {
        match self {
            Actor::Account { account, .. } => Some(account),
            _ => None,
        }
    }
}

/// Something that happened, published after it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A token was created (`account: None` for an operator token).
    TokenCreated {
        account: Option<AccountPrefix>,
        name: String,
        expires_at: Option<Timestamp>,
    },
    TokenDeleted {
        account: Option<AccountPrefix>,
        name: String,
    },
    /// A token got a new secret; the old one works until `grace_until`, if given.
    TokenRotated {
        account: Option<AccountPrefix>,
        name: String,
        grace_until: Option<Timestamp>,
    },
    OperatorTokenUpdated {
        name: String,
    },
    AccountCreated {
        account: AccountPrefix,
    },
    AccountDeleted {
        account: AccountPrefix,
    },
    /// The bare host's public routes now serve this account.
    DefaultAccountSet {
        account: AccountPrefix,
    },
    PlanLicenseIssued {
        id: LicenseId,
    },
    PlanLicenseRevoked {
        id: LicenseId,
    },
    PlanLicenseApplied {
        id: LicenseId,
        account: AccountPrefix,
    },
    /// The release catalogue of an account changed: `what`, in words (ids and slugs,
    /// never a key).
    CatalogChanged {
        account: AccountPrefix,
        what: String,
    },
    /// Customers, download keys, activations or the key generator of an account changed:
    /// `what`, in words (ids, never a key).
    LicensingChanged {
        account: AccountPrefix,
        what: String,
    },
}

impl std::fmt::Display for Actor {
    /// `account acme (token #12)`, `operator token #3`, `the command line`; never a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let grace = |grace: bool| if grace { ", a grace secret" } else { "" };
        match self {
            Actor::Account {
                account,
                token,
                grace: g,
                ..
            } => write!(f, "account {account} (token #{}{})", token.0, grace(*g)),
            Actor::Operator {
                token, grace: g, ..
            } => {
                write!(f, "operator token #{}{}", token.0, grace(*g))
            }
            Actor::Cli => f.write_str("the command line"),
            Actor::Public => f.write_str("a key holder on the public routes"),
        }
    }
}

impl std::fmt::Display for Event {
    /// What changed, by name; names follow their naming rules (no control characters),
    /// and no event carries a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let owner = |account: &Option<AccountPrefix>| {
            account.as_ref().map_or_else(
                || "operator token".to_owned(),
                |a| format!("token of account {a}"),
            )
        };
        match self {
            Event::TokenCreated { account, name, .. } => {
                write!(f, "created {} \"{name}\"", owner(account))
            }
            Event::TokenDeleted { account, name } => {
                write!(f, "deleted {} \"{name}\"", owner(account))
            }
            Event::TokenRotated { account, name, .. } => {
                write!(f, "rotated {} \"{name}\"", owner(account))
            }
            Event::OperatorTokenUpdated { name } => write!(f, "changed operator token \"{name}\""),
            Event::AccountCreated { account } => write!(f, "created account {account}"),
            Event::AccountDeleted { account } => write!(f, "deleted account {account}"),
            Event::DefaultAccountSet { account } => {
                write!(f, "made account {account} the default account")
            }
            Event::PlanLicenseIssued { id } => write!(f, "issued plan license {id}"),
            Event::PlanLicenseRevoked { id } => write!(f, "revoked plan license {id}"),
            Event::PlanLicenseApplied { id, account } => {
                write!(f, "applied plan license {id} to account {account}")
            }
            Event::CatalogChanged { account, what } | Event::LicensingChanged { account, what } => {
                write!(f, "account {account}: {what}")
            }
        }
    }
}

/// The audit log: one info line per change, saying who changed what (target
/// `upkeep::audit`), subscribed by every running server.
pub fn log_changes(events: &Events) {
    events.subscribe(|recorded| {
        tracing::info!(
            target: "upkeep::audit",
            actor = %recorded.actor,
            change = %recorded.event,
            "change"
        );
    });
}

/// An event with who caused it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub event: Event,
    pub actor: Actor,
    pub at: Timestamp,
}

type Subscriber = Arc<dyn Fn(&Recorded) + Send + Sync>;

/// The event bus: subscribers are called, in order, for every event after its write is
/// durable. A subscriber must be quick (hand off to a queue); it runs on the writer's task.
#[derive(Default)]
pub struct Events {
    subscribers: RwLock<Vec<Subscriber>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    pub fn subscribe(&self, subscriber: impl Fn(&Recorded) + Send + Sync + 'static) {
        self.subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(subscriber));
    }

    fn publish(&self, events: Vec<Event>, actor: Actor, at: Timestamp) {
        if events.is_empty() {
            return;
        }
        let subscribers = self.subscribers.read().unwrap_or_else(|e| e.into_inner());
        for event in events {
            let recorded = Recorded { event, actor, at };
            for subscriber in subscribers.iter() {
                subscriber(&recorded);
            }
        }
    }
}

/// What a service call works with.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub events: &'a Events,
    pub actor: Actor,
    pub now: Timestamp,
}

/// The events a write causes, worked out from its committed value.
type EventsOf<'a, T> = Box<dyn FnOnce(&T) -> Vec<Event> + Send + 'a>;

/// A write a service started: its value once durable, and the events it causes.
#[must_use = "a write is acknowledged only once durable"]
pub struct Done<'a, T> {
    pending: Pending<'a, T>,
    events: EventsOf<'a, T>,
    bus: &'a Events,
    actor: Actor,
    at: Timestamp,
}

impl<'a, T> Done<'a, T> {
    fn new(
        ctx: &Ctx<'a>,
        pending: Pending<'a, T>,
        events: impl FnOnce(&T) -> Vec<Event> + Send + 'a,
    ) -> Self {
        Done {
            pending,
            events: Box::new(events),
            bus: ctx.events,
            actor: ctx.actor,
            at: ctx.now,
        }
    }

    /// Waits (sharing the group commit) until the write is on disk, then publishes its
    /// events.
    ///
    /// # Errors
    /// The flush failed (`StorageUnavailable`).
    pub async fn durable(self) -> Result<T, Error> {
        let value = self.pending.durable().await?;
        self.bus.publish((self.events)(&value), self.actor, self.at);
        Ok(value)
    }

    /// [`Done::durable`] on this thread, for the one-shot CLI.
    ///
    /// # Errors
    /// The flush failed.
    pub fn durable_blocking(self) -> Result<T, Error> {
        let value = self.pending.durable_blocking()?;
        self.bus.publish((self.events)(&value), self.actor, self.at);
        Ok(value)
    }

    /// The committed value and what is still to happen, for a write made on another thread
    /// (see [`write`]).
    fn detach(self) -> (T, Ticket, Vec<Event>, Actor, Timestamp) {
        let (value, ticket) = self.pending.detach();
        let events = (self.events)(&value);
        (value, ticket, events, self.actor, self.at)
    }
}

/// Runs the write `f` off the async runtime's workers: on a blocking thread, with a
/// [`Ctx`] for `actor` at `now`; then waits, async, for the group commit, and publishes
/// the events. Over HTTP every write goes through here.
///
/// # Errors
/// Whatever `f` refuses, or the store failing.
pub async fn write<T, F>(
    store: &Arc<Store>,
    events: &Arc<Events>,
    actor: Actor,
    credential: Option<crate::model::TokenHash>,
    now: Timestamp,
    f: F,
) -> Result<T, Error>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&Ctx<'c>) -> Result<Done<'c, T>, Error> + Send + 'static,
{
    let (owned_store, owned_events) = (store.clone(), events.clone());
    // Counted until the blocking task ends, even when this future is dropped meanwhile (a
    // connection given up at shutdown): the server waits for it before its last flush.
    let in_flight = store.write_in_flight();
    let (value, ticket, happened, actor, at) = tokio::task::spawn_blocking(move || {
        let _in_flight = in_flight;
        let ctx = Ctx {
            store: &owned_store,
            events: &owned_events,
            actor,
            now,
        };
        // The request's credential is checked again under the store's write lock: a
        // revocation that committed while this write waited for the lock is obeyed.
        // A refused upload's blob is deleted here, before the refusal is answered.
        crate::store::blobs::inline_cleanup(|| match credential {
            Some(hash) => owned_store.as_credential(hash, now, || f(&ctx).map(Done::detach)),
            None => f(&ctx).map(Done::detach),
        })
    })
    .await
    .map_err(|join| Error::Internal(Box::new(join)))??;
    store.wait_durable(ticket).await?;
    events.publish(happened, actor, at);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewAccount;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_checks_its_credential_under_the_store_lock() {
        // A revocation that commits after the request's last check at the edge (while
        // its write waits for the store's lock) is still obeyed: the write re-checks the
        // credential under the lock and changes nothing.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let events = Arc::new(Events::default());
        let now = Timestamp::from_secs(1_800_000_000);
        let new = NewAccount::parse("Acme", "a@example.com", Some("acme")).unwrap();
        let (account, first) = write(&store, &events, Actor::Cli, None, now, move |ctx| {
            accounts::create(ctx, new)
        })
        .await
        .unwrap();
        let actor = Actor::Account {
            account: account.prefix,
            token: first.token.id,
            scopes: first.token.scopes,
            expires_at: None,
            grace: false,
        };
        let command = |name: &str| tokens::NewToken {
            owner: tokens::Owner::Account(account.prefix),
            name: name.to_owned(),
            scopes: Scopes::parse_all(["read_user"]).unwrap(),
            expires_at: None,
            expires_field: "expires",
        };
        let hash = first.token.hash;
        let ok = command("before");
        write(&store, &events, actor, Some(hash), now, move |ctx| {
            tokens::create(ctx, ok)
        })
        .await
        .expect("the credential is valid");
        // Revoked (committed, durable) before the next write takes the lock.
        let prefix = account.prefix;
        write(&store, &events, Actor::Cli, None, now, move |ctx| {
            tokens::delete(ctx, Some(&prefix), "default")
        })
        .await
        .unwrap();
        let late = command("backdoor");
        let refused = write(&store, &events, actor, Some(hash), now, move |ctx| {
            tokens::create(ctx, late)
        })
        .await;
        assert!(
            matches!(refused, Err(Error::Unauthenticated)),
            "{refused:?}"
        );
        assert!(
            store
                .token_named(Some(&prefix), "backdoor")
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_public_caller_makes_none_of_the_operators_or_an_accounts_writes() {
        // Public licensing writes run as `Actor::Public`: it must never pass for the
        // operator (the command line) nor for an account token.
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let events = Arc::new(Events::default());
        let now = Timestamp::from_secs(1_800_000_000);
        let new = NewAccount::parse("Acme", "a@example.com", Some("acme")).unwrap();
        let (account, _) = write(&store, &events, Actor::Cli, None, now, move |ctx| {
            accounts::create(ctx, new)
        })
        .await
        .unwrap();
        let prefix = account.prefix;
        let ctx = Ctx {
            store: &store,
            events: &events,
            actor: Actor::Public,
            now,
        };
        let forbidden = |result: Result<(), Error>, what: &str| {
            assert!(
                matches!(result, Err(Error::Forbidden(_))),
                "{what}: {result:?}"
            );
        };
        let other = NewAccount::parse("Evil", "e@example.com", Some("evil")).unwrap();
        forbidden(accounts::create(&ctx, other).map(drop), "create an account");
        forbidden(
            accounts::delete(&ctx, "acme").map(drop),
            "delete an account",
        );
        forbidden(
            accounts::set_default(&ctx, "acme").map(drop),
            "choose the default",
        );
        let token = |owner| tokens::NewToken {
            owner,
            name: "backdoor".to_owned(),
            scopes: Scopes::parse_all(["read_user"]).unwrap(),
            expires_at: None,
            expires_field: "expires",
        };
        forbidden(
            tokens::create(&ctx, token(tokens::Owner::Account(prefix))).map(drop),
            "create an account token",
        );
        forbidden(
            tokens::create(
                &ctx,
                token(tokens::Owner::Operator {
                    active: true,
                    write: true,
                }),
            )
            .map(drop),
            "create an operator token",
        );
        forbidden(
            tokens::delete(&ctx, Some(&prefix), "default").map(drop),
            "delete a token",
        );
        forbidden(
            tokens::operator_value(&ctx, "any", true).map(drop),
            "read an operator token",
        );
        forbidden(
            plan_licenses::issue(&ctx, 5, None, "expires_at").map(drop),
            "issue a plan license",
        );
        forbidden(
            plan_licenses::apply(&ctx, &prefix, "upk_pl_x").map(drop),
            "apply a plan license",
        );
        // Nothing changed: the account keeps its one token, and it is still the only one.
        assert!(
            store
                .token_named(Some(&prefix), "backdoor")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .token_named(Some(&prefix), "default")
                .unwrap()
                .is_some()
        );
        assert_eq!(
            Actor::Public.to_string(),
            "a key holder on the public routes"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_are_published_after_the_write_is_durable_and_name_the_actor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let events = Arc::new(Events::default());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        events.subscribe(move |recorded| sink.lock().unwrap().push(recorded.clone()));
        let now = Timestamp::from_secs(1_800_000_000);
        let new = NewAccount::parse("Acme", "a@example.com", Some("acme")).unwrap();
        let (account, _) = write(&store, &events, Actor::Cli, None, now, move |ctx| {
            accounts::create(ctx, new)
        })
        .await
        .unwrap();
        assert_eq!(account.prefix.as_str(), "acme");
        let command = tokens::NewToken {
            owner: tokens::Owner::Account(account.prefix),
            name: "ci".to_owned(),
            scopes: Scopes::parse_all(["read_user"]).unwrap(),
            expires_at: None,
            expires_field: "expires",
        };
        write(&store, &events, Actor::Cli, None, now, move |ctx| {
            tokens::create(ctx, command)
        })
        .await
        .unwrap();
        // A refused write publishes nothing.
        let duplicate = tokens::NewToken {
            owner: tokens::Owner::Account(account.prefix),
            name: "ci".to_owned(),
            scopes: Scopes::parse_all(["read_user"]).unwrap(),
            expires_at: None,
            expires_field: "expires",
        };
        assert!(
            write(&store, &events, Actor::Cli, None, now, move |ctx| {
                tokens::create(ctx, duplicate)
            })
            .await
            .is_err()
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen.iter().map(|r| r.event.clone()).collect::<Vec<_>>(),
            vec![
                Event::AccountCreated {
                    account: account.prefix
                },
                Event::TokenCreated {
                    account: Some(account.prefix),
                    name: "ci".to_owned(),
                    expires_at: None,
                },
            ]
        );
        assert!(seen.iter().all(|r| r.actor == Actor::Cli && r.at == now));
        assert!(
            store
                .token_named(Some(&account.prefix), "ci")
                .unwrap()
                .is_some()
        );
    }
}
