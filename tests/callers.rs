//! Caller labels (`caller_function`, `caller_module`): which instrumented
//! function made each counted call, for synchronous calls, futures awaited
//! inside a caller's poll, spawned tasks and other threads (its own test
//! binary, built with the `caller-labels` feature).
//! `cargo test --features caller-labels --test callers`
#![cfg(all(feature = "caller-labels", not(feature = "disable-instrumentation")))]

use std::sync::OnceLock;

use telemark::{counted, timed, traced};

fn telemetry() -> &'static telemark::Telemetry {
    static TELEMETRY: OnceLock<telemark::Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        telemark::builder!()
            .without_server()
            .service_name("shop")
            .traces(telemark::Traces::exporter(
                telemark::opentelemetry_sdk::trace::InMemorySpanExporter::default(),
            ))
            .start()
            .unwrap()
    })
}

/// The count of `function` called by `caller` with `result`, if exported.
fn count(text: &str, function: &str, caller: &str, result: &str) -> Option<u64> {
    let prefix = format!(
        r#"function_calls_total{{function="{function}",module="callers",service_name="shop","#
    );
    let module = if caller.is_empty() || caller == "(other)" {
        ""
    } else {
        "callers"
    };
    let tail =
        format!(r#"caller_function="{caller}",caller_module="{module}",result="{result}"}} "#);
    text.lines()
        .find(|line| line.starts_with(&prefix) && line.contains(&tail))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

#[counted]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

#[counted]
#[timed]
fn handle(text: &str) -> Result<u32, std::num::ParseIntError> {
    parse(text)
}

/// Only traced: still an instrumented function, so still a caller.
#[traced]
fn traced_only() -> u32 {
    parse("2").unwrap() + parse("x").unwrap_or(0)
}

#[counted]
fn audited() {}

#[traced]
fn audit_caller() {
    audited()
}

/// An exemplar belongs to the series of the caller that made the call.
#[test]
fn a_counter_exemplar_sits_on_the_series_of_its_caller() {
    telemetry();
    audited(); // no caller, no sampled span
    audit_caller();
    let text = telemetry().render_metrics_as(telemark::metrics::ExpositionFormat::OpenMetrics);
    let line = |caller: &str| {
        let caller = format!(r#"caller_function="{caller}","#);
        text.lines()
            .find(|line| {
                line.starts_with(r#"function_calls_total{function="audited""#)
                    && line.contains(&caller)
                    && line.contains(r#"result="ok""#)
            })
            .unwrap_or_else(|| panic!("{caller} in {text}"))
    };
    assert!(line("audit_caller").contains(" # {trace_id=\""), "{text}");
    assert!(!line("").contains(" # "), "{text}");
}

#[test]
fn synchronous_calls_are_counted_by_their_instrumented_caller() {
    telemetry();
    handle("1").unwrap();
    handle("nope").unwrap_err();
    assert_eq!(traced_only(), 2);
    parse("3").unwrap();
    let text = telemetry().render_metrics();
    assert_eq!(count(&text, "parse", "handle", "ok"), Some(1), "{text}");
    assert_eq!(count(&text, "parse", "handle", "error"), Some(1), "{text}");
    assert_eq!(
        count(&text, "parse", "traced_only", "ok"),
        Some(1),
        "{text}"
    );
    assert_eq!(
        count(&text, "parse", "traced_only", "error"),
        Some(1),
        "{text}"
    );
    // Called from the test itself: no instrumented caller.
    assert_eq!(count(&text, "parse", "", "ok"), Some(1), "{text}");
    // The caller stops being current when it returns.
    assert_eq!(count(&text, "handle", "", "ok"), Some(1), "{text}");
    // The histogram has no caller labels.
    let histogram = text
        .lines()
        .find(|line| line.starts_with(r#"function_calls_duration_seconds_count{function="handle""#))
        .unwrap();
    assert!(!histogram.contains("caller_"), "{histogram}");
}

#[counted]
async fn fetch(key: u32) -> Result<u32, String> {
    tokio::task::yield_now().await;
    if key == 0 {
        Err("no such key".into())
    } else {
        Ok(key)
    }
}

#[counted]
async fn api(key: u32) -> Result<u32, String> {
    let first = fetch(key).await?;
    // After an await, on whatever thread the task resumes: still the caller.
    tokio::task::yield_now().await;
    let second = fetch(key + 1).await?;
    Ok(first + second)
}

#[counted]
async fn spawner() -> u32 {
    // A task of its own is not polled inside this call: it has no caller.
    tokio::spawn(fetch(5)).await.unwrap().unwrap()
}

#[test]
fn futures_are_counted_by_the_call_that_awaits_them() {
    telemetry();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for key in 1..=10 {
            assert_eq!(api(key).await, Ok(2 * key + 1));
        }
        api(0).await.unwrap_err();
        assert_eq!(spawner().await, 5);
    });
    let text = telemetry().render_metrics();
    assert_eq!(count(&text, "fetch", "api", "ok"), Some(20), "{text}");
    assert_eq!(count(&text, "fetch", "api", "error"), Some(1), "{text}");
    assert_eq!(count(&text, "fetch", "", "ok"), Some(1), "{text}");
    assert_eq!(count(&text, "api", "", "error"), Some(1), "{text}");
}

#[counted]
fn leaf() {}

macro_rules! callers_of_leaf {
    ($($name:ident),*) => {
        $(
            #[counted]
            fn $name() {
                leaf();
            }
        )*
        const CALLERS: &[fn()] = &[$($name),*];
    };
}

callers_of_leaf!(
    c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, c15, c16, c17, c18
);

#[test]
fn callers_beyond_the_limit_are_counted_together_as_other() {
    telemetry();
    assert!(CALLERS.len() > telemark::metrics::MAX_CALLERS);
    // From threads at once: each caller gets one slot.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for caller in CALLERS {
                    caller();
                }
            });
        }
    });
    let text = telemetry().render_metrics();
    let by_caller: Vec<u64> = CALLERS
        .iter()
        .enumerate()
        .filter_map(|(i, _)| count(&text, "leaf", &format!("c{:02}", i + 1), "ok"))
        .collect();
    assert_eq!(by_caller.len(), telemark::metrics::MAX_CALLERS, "{text}");
    assert!(by_caller.iter().all(|&n| n == 4), "{by_caller:?}");
    let other = count(&text, "leaf", "(other)", "ok");
    assert_eq!(
        other,
        Some(4 * (CALLERS.len() - telemark::metrics::MAX_CALLERS) as u64),
        "{text}"
    );
    // Every call is in the catalog's total.
    let leaf = telemark::catalog::instrumented_functions()
        .into_iter()
        .find(|f| f.function == "leaf")
        .unwrap();
    assert_eq!(leaf.calls, 4 * CALLERS.len() as u64);
}
