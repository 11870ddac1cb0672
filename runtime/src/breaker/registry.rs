//! The process's breakers by name: those registered in code and those that
//! `#[circuit_breaker]` functions declare (created on first use).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use super::circuit::CircuitBreaker;
use super::config::BreakerConfig;
use super::error::BreakerRegistryError;
use super::site::breaker_sites;

/// Breakers by name, and the list sorted by name, made again only after a
/// registration (renders read it far more often than breakers come).
#[derive(Default)]
struct Registry {
    by_name: HashMap<Cow<'static, str>, &'static CircuitBreaker>,
    sorted: Option<Arc<[&'static CircuitBreaker]>>,
}

impl Registry {
    fn get(&self, name: &str) -> Option<&'static CircuitBreaker> {
        self.by_name.get(name).copied()
    }

    fn insert(&mut self, name: Cow<'static, str>, breaker: &'static CircuitBreaker) {
        self.by_name.insert(name, breaker);
        self.sorted = None;
    }

    fn sorted(&mut self) -> Arc<[&'static CircuitBreaker]> {
        let by_name = &self.by_name;
        Arc::clone(self.sorted.get_or_insert_with(|| {
            let mut all: Vec<_> = by_name.values().copied().collect();
            all.sort_unstable_by(|a, b| a.name().cmp(b.name()));
            all.into()
        }))
    }
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers the breaker `name` from `config` unless it exists.
pub(crate) fn get_or_register(
    name: &'static str,
    config: impl FnOnce() -> BreakerConfig,
) -> &'static CircuitBreaker {
    let mut registry = registry();
    if let Some(found) = registry.get(name) {
        return found;
    }
    // Generated code only passes configurations that were checked when
    // its `static` was initialised.
    let breaker = CircuitBreaker::new(name, config()).unwrap_or_else(|_| {
        CircuitBreaker::new(name, BreakerConfig::new()).expect("the default configuration is valid")
    });
    let registered: &'static CircuitBreaker = Box::leak(Box::new(breaker));
    registry.insert(Cow::Borrowed(name), registered);
    registered
}

impl CircuitBreaker {
    /// Registers a breaker under its name, so `#[circuit_breaker(name = ...)]`
    /// functions with that name use it (their own options are then not
    /// used) and [`CircuitBreaker::named`] finds it. Fails if the name is
    /// taken: register before the first call.
    ///
    /// ```
    /// use telemark_runtime::breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new("search-index", BreakerConfig::new()).unwrap();
    /// let registered = CircuitBreaker::register(breaker).unwrap();
    /// assert!(std::ptr::eq(registered, CircuitBreaker::named("search-index").unwrap()));
    /// ```
    pub fn register(
        breaker: CircuitBreaker,
    ) -> Result<&'static CircuitBreaker, BreakerRegistryError> {
        let mut registry = registry();
        if registry.by_name.contains_key(breaker.name()) {
            return Err(BreakerRegistryError::NameTaken {
                name: breaker.name().to_owned(),
            });
        }
        let registered: &'static CircuitBreaker = Box::leak(Box::new(breaker));
        registry.insert(Cow::Owned(registered.name().to_owned()), registered);
        Ok(registered)
    }

    /// The registered breaker with this name: one registered in code, or
    /// one that `#[circuit_breaker]` functions of this program declare
    /// (created on first use, before their first call if need be).
    pub fn named(name: &str) -> Option<&'static CircuitBreaker> {
        if let Some(found) = registry().get(name) {
            return Some(found);
        }
        let site = breaker_sites().find(|site| site.breaker_name() == name)?;
        Some(site.breaker())
    }

    /// Every registered breaker, sorted by name (those declared by
    /// `#[circuit_breaker]` functions included).
    pub fn all() -> Vec<&'static CircuitBreaker> {
        for site in breaker_sites() {
            site.breaker();
        }
        registry().sorted().to_vec()
    }
}
