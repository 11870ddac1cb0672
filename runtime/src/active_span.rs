//! The sampled span current on this thread, as metrics see it (a shared
//! leaf: imports nothing from the rest of the crate).
//!
//! `trace` sets it while a sampled `#[traced]` span runs (for a future,
//! during each poll); `metrics` reads it when a call is counted or timed, to
//! keep the call as an exemplar. An unsampled call reads one thread-local
//! word and stops there.

use std::cell::Cell;

/// The ids of a sampled span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanIds {
    pub trace_id: u128,
    /// Never 0 for a span (0 marks "none" in the thread-local).
    pub span_id: u64,
}

thread_local! {
    static ACTIVE: Cell<SpanIds> = const {
        Cell::new(SpanIds {
            trace_id: 0,
            span_id: 0,
        })
    };
}

/// The sampled span current on this thread, if any.
#[inline(always)]
pub(crate) fn active() -> Option<SpanIds> {
    ACTIVE
        .try_with(Cell::get)
        .ok()
        .filter(|ids| ids.span_id != 0)
}

/// Makes `ids` the active span until the scope is dropped, which restores
/// the one active before.
#[inline]
pub(crate) fn enter(ids: SpanIds) -> ActiveScope {
    let previous = ACTIVE.try_with(|active| active.replace(ids)).ok();
    ActiveScope { previous }
}

/// Restores the span active before [`enter`] when dropped.
#[must_use]
pub struct ActiveScope {
    previous: Option<SpanIds>,
}

impl Drop for ActiveScope {
    #[inline]
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            let _ = ACTIVE.try_with(|active| active.set(previous));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore_the_outer_span() {
        assert_eq!(active(), None);
        let outer = SpanIds {
            trace_id: 7,
            span_id: 1,
        };
        let inner = SpanIds {
            trace_id: 7,
            span_id: 2,
        };
        let outer_scope = enter(outer);
        {
            let _inner_scope = enter(inner);
            assert_eq!(active(), Some(inner));
        }
        assert_eq!(active(), Some(outer));
        drop(outer_scope);
        assert_eq!(active(), None);
    }
}
