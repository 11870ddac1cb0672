//! Propagation headers come from other services: 100,000 random and mutated
//! `traceparent`, `tracestate` and `baggage` headers, some of them huge, must
//! never panic, must allocate a bounded amount whatever their size, and must
//! be accepted exactly when W3C Trace Context says so (else a new root).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use telemark_runtime::http::{HeaderMap, HeaderValue};
use telemark_runtime::opentelemetry::trace::TraceContextExt;
use telemark_runtime::propagation::extract_context;

/// Counts the bytes this thread allocates while `COUNTING` is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|on| {
            if on.get() {
                ALLOCATED.with(|bytes| bytes.set(bytes.get() + layout.size()));
            }
        });
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated by `f` on this thread.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATED.with(|bytes| bytes.set(0));
    COUNTING.with(|on| on.set(true));
    let value = f();
    COUNTING.with(|on| on.set(false));
    (value, ALLOCATED.with(Cell::get))
}

/// xorshift: reproducible cases without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick(&mut self, from: &[u8]) -> u8 {
        from[self.below(from.len())]
    }
}

const HEX: &[u8] = b"0123456789abcdef";
const NOISE: &[u8] = b"0123456789abcdefABCDEF-+_ ,=xyz\t";

/// W3C Trace Context level 1, written independently of the code under test.
fn reference_accepts(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(5, '-').collect();
    if parts.len() < 4 {
        return false;
    }
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let (version, trace, parent, flags) = (parts[0], parts[1], parts[2], parts[3]);
    let ids_ok = lower_hex(trace, 32)
        && lower_hex(parent, 16)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    if !lower_hex(version, 2) || version == "ff" || !ids_ok {
        return false;
    }
    if version == "00" {
        return parts.len() == 4 && lower_hex(flags, 2);
    }
    // A later version: the first 55 characters, then a dash (and anything)
    // or the end.
    lower_hex(flags, 2)
}

fn valid_traceparent(random: &mut Random) -> String {
    let mut value = String::from("00-");
    value.extend((0..32).map(|_| random.pick(HEX) as char));
    value.push('-');
    value.extend((0..16).map(|_| random.pick(HEX) as char));
    value.push('-');
    value.push_str(if random.below(2) == 0 { "01" } else { "00" });
    value
}

fn mutate(random: &mut Random, value: &str) -> String {
    let mut bytes = value.as_bytes().to_vec();
    for _ in 0..=random.below(3) {
        match random.below(4) {
            0 if !bytes.is_empty() => {
                let at = random.below(bytes.len());
                bytes[at] = random.pick(NOISE);
            }
            1 => {
                let at = random.below(bytes.len() + 1);
                bytes.insert(at, random.pick(NOISE));
            }
            2 if !bytes.is_empty() => {
                let at = random.below(bytes.len());
                bytes.remove(at);
            }
            _ => bytes.extend((0..random.below(8)).map(|_| random.pick(NOISE))),
        }
    }
    String::from_utf8(bytes).expect("ascii")
}

#[test]
fn random_and_mutated_headers_never_panic_and_allocate_a_bounded_amount() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    let mut most_allocated = 0;
    for case in 0..100_000 {
        let traceparent = match case % 10 {
            0..=3 => valid_traceparent(&mut random),
            4..=8 => {
                let valid = valid_traceparent(&mut random);
                mutate(&mut random, &valid)
            }
            _ => {
                let length = random.below(2_000);
                (0..length).map(|_| random.pick(NOISE) as char).collect()
            }
        };
        let mut headers = HeaderMap::new();
        let Ok(value) = HeaderValue::from_str(&traceparent) else {
            continue;
        };
        headers.insert("traceparent", value);
        let members = random.below(80);
        let tracestate: Vec<String> = (0..members)
            .map(|i| format!("k{i}=v{}", random.next() % 1000))
            .collect();
        headers.insert(
            "tracestate",
            HeaderValue::from_str(&tracestate.join(",")).unwrap(),
        );
        let baggage: Vec<String> = (0..random.below(200)).map(|i| format!("b{i}=x")).collect();
        headers.insert(
            "baggage",
            HeaderValue::from_str(&baggage.join(",")).unwrap(),
        );

        let (context, bytes) = allocated_by(|| extract_context(&headers));
        most_allocated = most_allocated.max(bytes);
        let span = context.span().span_context().clone();
        assert_eq!(
            span.is_valid(),
            reference_accepts(&traceparent),
            "{traceparent:?}"
        );
        if span.is_valid() {
            accepted += 1;
            assert!(span.is_remote());
            let state = span.trace_state().header();
            assert!(
                state.len() <= 512 && state.split(',').count() <= 32,
                "{state}"
            );
        }
    }
    assert!(
        accepted > 30_000,
        "the valid cases were accepted: {accepted}"
    );
    assert!(
        most_allocated < 64 * 1024,
        "at most {most_allocated} bytes per extraction"
    );
}

#[test]
fn huge_headers_allocate_no_more_than_small_ones() {
    let dashes = "-".repeat(400_000);
    let hex = "a".repeat(400_000);
    let members = (0..20_000)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    for (name, value) in [
        ("traceparent", dashes.as_str()),
        ("traceparent", hex.as_str()),
        ("tracestate", members.as_str()),
        ("baggage", members.as_str()),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        let (_, bytes) = allocated_by(|| extract_context(&headers));
        assert!(
            bytes < 64 * 1024,
            "{name} of {} bytes made {bytes} bytes of allocations",
            value.len()
        );
    }
}
