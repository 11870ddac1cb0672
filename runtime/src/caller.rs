//! Which instrumented function called this one: the Autometrics
//! `caller_function` / `caller_module` labels, with the `caller-labels`
//! cargo feature.
//!
//! With the feature, each thread keeps the instrumented function it is
//! running now: a synchronous call makes itself current for its duration
//! and an asynchronous one for each of its polls, so the function a call
//! starts under (a synchronous call, or the first poll of a future) is its
//! caller. A future polled by a task of its own (`tokio::spawn`) has none.
//! The current function is kept even while instrumentation is switched off
//! (a thread-local write and its undo per call). Without the feature,
//! [`Caller`] and [`CallerScope`] are empty and compile to nothing.

#![allow(missing_docs)] // hidden API for generated code

use crate::site::SiteInfo;

#[cfg(feature = "caller-labels")]
mod tracked {
    use std::cell::Cell;

    use crate::site::SiteInfo;

    /// Stands for "no instrumented function" in [`CURRENT`] and [`Caller`].
    pub(super) static NO_CALLER: SiteInfo = SiteInfo::new("", "", "", 0);

    thread_local! {
        /// The instrumented function running on this thread (`NO_CALLER`:
        /// none). Constant-initialised without a destructor: always there.
        pub(super) static CURRENT: Cell<&'static SiteInfo> = const { Cell::new(&NO_CALLER) };
    }
}

/// Who is calling, as a call starts: the instrumented function running on
/// this thread, if any (always none without the `caller-labels` feature).
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    #[cfg(feature = "caller-labels")]
    site: &'static SiteInfo,
}

impl PartialEq for Caller {
    /// The same function: the same call site (compared by address).
    fn eq(&self, other: &Caller) -> bool {
        self.caller().map(|s| s as *const SiteInfo) == other.caller().map(|s| s as *const SiteInfo)
    }
}

impl Caller {
    /// Whether calls are counted by caller (the `caller-labels` feature).
    pub const TRACKED: bool = cfg!(feature = "caller-labels");

    /// The caller of a call starting now on this thread.
    #[inline(always)]
    pub fn now() -> Caller {
        Caller {
            #[cfg(feature = "caller-labels")]
            site: tracked::CURRENT.with(std::cell::Cell::get),
        }
    }

    /// The calling function, if any.
    #[inline(always)]
    pub fn caller(self) -> Option<&'static SiteInfo> {
        #[cfg(feature = "caller-labels")]
        if !std::ptr::eq(self.site, &tracked::NO_CALLER) {
            return Some(self.site);
        }
        None
    }
}

/// Makes a function current on this thread until dropped, then restores
/// the one before (nothing without the `caller-labels` feature).
pub struct CallerScope {
    #[cfg(feature = "caller-labels")]
    previous: &'static SiteInfo,
}

impl CallerScope {
    /// `site`'s function runs on this thread until the scope is dropped.
    #[inline(always)]
    pub fn enter(site: &'static SiteInfo) -> CallerScope {
        Self::enter_called(site).1
    }

    /// `site`'s function starts running on this thread: who called it, and
    /// the scope that keeps it current until dropped.
    #[inline(always)]
    pub fn enter_called(site: &'static SiteInfo) -> (Caller, CallerScope) {
        #[cfg(feature = "caller-labels")]
        {
            let previous = tracked::CURRENT.with(|current| current.replace(site));
            (Caller { site: previous }, CallerScope { previous })
        }
        #[cfg(not(feature = "caller-labels"))]
        {
            let _ = site;
            (Caller {}, CallerScope {})
        }
    }
}

#[cfg(feature = "caller-labels")]
impl Drop for CallerScope {
    #[inline(always)]
    fn drop(&mut self) {
        tracked::CURRENT.with(|current| current.set(self.previous));
    }
}

#[cfg(all(test, feature = "caller-labels"))]
mod tests {
    use super::*;

    static OUTER: SiteInfo = SiteInfo::new("outer", "m", "m.rs", 1);
    static INNER: SiteInfo = SiteInfo::new("inner", "m", "m.rs", 2);

    #[test]
    fn scopes_nest_and_restore_the_caller() {
        assert!(Caller::now().caller().is_none());
        {
            let _outer = CallerScope::enter(&OUTER);
            assert!(std::ptr::eq(Caller::now().caller().unwrap(), &OUTER));
            {
                let (caller, _inner) = CallerScope::enter_called(&INNER);
                assert!(std::ptr::eq(caller.caller().unwrap(), &OUTER));
                assert!(std::ptr::eq(Caller::now().caller().unwrap(), &INNER));
            }
            assert!(std::ptr::eq(Caller::now().caller().unwrap(), &OUTER));
        }
        assert!(Caller::now().caller().is_none());
    }
}
