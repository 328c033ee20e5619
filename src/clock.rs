//! The time source. Domain code takes `now` as a parameter; `App` asks the clock once per
//! request. Tests drive expiry with a manual clock instead of sleeping.

use crate::model::Timestamp;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock that moves only when told (tests).
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: Timestamp) -> Clock {
        Clock::Manual(Arc::new(AtomicU64::new(start.as_millis())))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::from_system(SystemTime::now()),
            Clock::Manual(ms) => Timestamp::from_millis(ms.load(Ordering::Relaxed)),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(ms) = self {
            let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
            ms.fetch_add(by, Ordering::Relaxed);
        }
    }
}
