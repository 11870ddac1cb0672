//! The sampled span active on this thread, as metrics see it (a shared
//! leaf: imports nothing from the rest of the crate).
//!
//! `trace` points it at a sampled `#[traced]` span while the span runs (for
//! a future, during each poll): `metrics` reads the span's ids when a call
//! is counted or timed, to keep the call as an exemplar, and `trace` writes
//! what user code adds to the span through it. An unsampled call reads one
//! thread-local pointer and stops there.

use std::cell::Cell;

/// The ids of a sampled span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanIds {
    pub trace_id: u128,
    pub span_id: u64,
}

thread_local! {
    /// The active span, owned by its guard (null: none). It points at the
    /// span's ids, the first field of its record, with the provenance of the
    /// whole record.
    static ACTIVE: Cell<*mut SpanIds> = const { Cell::new(std::ptr::null_mut()) };
}

/// The active span, as `enter` was given it (null: none).
#[inline]
pub(crate) fn active_pointer() -> *mut SpanIds {
    ACTIVE.try_with(Cell::get).unwrap_or(std::ptr::null_mut())
}

/// Whether a sampled span is active on this thread.
#[inline(always)]
pub(crate) fn is_active() -> bool {
    ACTIVE
        .try_with(|active| !active.get().is_null())
        .unwrap_or(false)
}

/// The sampled span active on this thread, if any.
#[inline]
pub(crate) fn active() -> Option<SpanIds> {
    let ids = active_pointer();
    // SAFETY: a non-null pointer was set by `enter`, whose caller keeps the
    // ids in place until the scope that restores the previous pointer drops.
    (!ids.is_null()).then(|| unsafe { *ids })
}

/// Makes the span whose ids are at `ids` the active span until the scope
/// drops, which restores the one active before.
///
/// # Safety
///
/// `ids` must stay valid and in place until the returned scope is dropped
/// (a leaked scope must leave them valid for ever), and nothing else may
/// access what it points to meanwhile, but through the active pointer.
#[inline]
pub(crate) unsafe fn enter(ids: *mut SpanIds) -> ActiveScope {
    let previous = ACTIVE
        .try_with(|active| active.replace(ids))
        .unwrap_or(std::ptr::null_mut());
    ActiveScope { ids, previous }
}

/// Restores the span active before [`enter`] when dropped.
///
/// Scopes are meant to drop in the reverse order of their creation. One that
/// drops while it is not the active span (out of order) clears the active
/// span instead: the span it would restore may be gone, and no span entered
/// before the clearing can become active again, so the pointer never
/// reaches a span whose scope has dropped.
#[must_use]
pub struct ActiveScope {
    ids: *mut SpanIds,
    previous: *mut SpanIds,
}

impl Drop for ActiveScope {
    #[inline]
    fn drop(&mut self) {
        let _ = ACTIVE.try_with(|active| {
            let restored = if active.get() == self.ids {
                self.previous
            } else {
                std::ptr::null_mut()
            };
            active.set(restored);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore_the_outer_span() {
        assert_eq!(active(), None);
        assert!(!is_active());
        let mut outer = SpanIds {
            trace_id: 7,
            span_id: 1,
        };
        let mut inner = SpanIds {
            trace_id: 7,
            span_id: 2,
        };
        // SAFETY: both outlive their scopes, dropped in reverse order.
        let (outer_copy, inner_copy) = (outer, inner);
        let outer_scope = unsafe { enter(&mut outer) };
        {
            let _inner_scope = unsafe { enter(&mut inner) };
            assert_eq!(active(), Some(inner_copy));
        }
        assert_eq!(active(), Some(outer_copy));
        assert!(is_active());
        drop(outer_scope);
        assert_eq!(active(), None);
    }

    /// Dropped out of order, scopes clear the active span rather than
    /// restore one whose scope is gone.
    #[test]
    fn scopes_dropped_out_of_order_leave_no_span_active() {
        let mut first = SpanIds {
            trace_id: 1,
            span_id: 1,
        };
        let mut second = SpanIds {
            trace_id: 1,
            span_id: 2,
        };
        // SAFETY: both outlive their scopes.
        let first_scope = unsafe { enter(&mut first) };
        let second_scope = unsafe { enter(&mut second) };
        drop(first_scope); // out of order
        assert_eq!(active(), None);
        drop(second_scope); // would restore `first`
        assert_eq!(active(), None);
        let mut third = SpanIds {
            trace_id: 3,
            span_id: 3,
        };
        let third_scope = unsafe { enter(&mut third) };
        assert_eq!(active().map(|ids| ids.span_id), Some(3));
        drop(third_scope);
        assert_eq!(active(), None);
    }
}
