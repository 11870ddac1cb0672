//! Service-level objectives attached to functions: the Autometrics labels on
//! the exported series, and start-up refusing default buckets that would
//! drop an objective's threshold.
#![cfg(not(feature = "disable-instrumentation"))]

use std::time::Duration;

use telemark::metrics::ObjectivePercentile;
use telemark::{counted, timed, Objective};

const API: Objective = Objective::new("api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(Duration::from_millis(250), ObjectivePercentile::P99);

/// Only a latency target, on a threshold that is not a default bucket.
const EXPORT: Objective =
    Objective::new("export").latency(Duration::from_millis(300), ObjectivePercentile::P90);

mod slo {
    use super::*;
    pub const BATCH: Objective = Objective::new("batch").success_rate(ObjectivePercentile::P95);
}

#[counted(objective = API)]
#[timed(objective = API)]
fn handle(fail: bool) -> Result<u32, String> {
    if fail {
        Err("backend down".into())
    } else {
        Ok(7)
    }
}

#[timed(objective = EXPORT, buckets = [0.1, 0.3, 1.0])]
fn export() {}

struct Jobs;

#[counted(objective = slo::BATCH)]
impl Jobs {
    fn run(&self) -> Result<(), ()> {
        Ok(())
    }
}

/// An objective on one attribute only: the other's series carry none.
#[counted(objective = slo::BATCH)]
#[timed]
fn plain() {}

fn line_of<'a>(text: &'a str, prefix: &str, needles: &[&str]) -> &'a str {
    text.lines()
        .find(|line| line.starts_with(prefix) && needles.iter().all(|n| line.contains(n)))
        .unwrap_or_else(|| panic!("no {prefix} line with {needles:?} in\n{text}"))
}

#[test]
fn objectives_label_the_series_of_the_functions_they_are_attached_to() {
    let telemetry = telemark::builder!()
        .without_server()
        .service_name("shop")
        .start()
        .unwrap();
    assert_eq!(handle(false), Ok(7));
    assert!(handle(true).is_err());
    export();
    Jobs.run().unwrap();
    plain();
    let text = telemetry.render_metrics();

    let site = r#"function="handle",module="objectives",service_name="shop""#;
    let success = r#"objective_name="api",objective_percentile="99.9""#;
    let latency =
        r#"objective_name="api",objective_percentile="99",objective_latency_threshold="0.25""#;
    for expected in [
        format!(r#"function_calls_total{{{site},{success},result="ok"}} 1"#),
        format!(r#"function_calls_total{{{site},{success},result="error"}} 1"#),
        format!(r#"function_calls_duration_seconds_bucket{{{site},{latency},le="0.25"}} 2"#),
        format!(r#"function_calls_duration_seconds_count{{{site},{latency}}} 2"#),
        format!(r#"function_calls_concurrent{{{site}}} 0"#),
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "missing {expected} in\n{text}"
        );
    }
    let sum = line_of(&text, "function_calls_duration_seconds_sum{", &[site]);
    assert!(sum.contains(latency), "{sum}");

    // Own buckets holding the threshold; a latency-only objective.
    let bucket = line_of(
        &text,
        "function_calls_duration_seconds_bucket{",
        &[r#"function="export""#, r#"le="0.3""#],
    );
    assert!(
        bucket.contains(
            r#"objective_name="export",objective_percentile="90",objective_latency_threshold="0.3""#
        ),
        "{bucket}"
    );

    // From the impl block, with a path to the objective.
    let run = line_of(
        &text,
        "function_calls_total{",
        &[r#"function="Jobs::run""#, r#"result="ok""#],
    );
    assert!(
        run.contains(r#"objective_name="batch",objective_percentile="95""#),
        "{run}"
    );
    assert!(!run.contains("objective_latency_threshold"), "{run}");

    // `plain`'s histogram has no objective, its counter has one.
    let histogram = line_of(
        &text,
        "function_calls_duration_seconds_count{",
        &[r#"function="plain""#],
    );
    assert!(!histogram.contains("objective_"), "{histogram}");
    let counter = line_of(&text, "function_calls_total{", &[r#"function="plain""#]);
    assert!(counter.contains(r#"objective_name="batch""#), "{counter}");
}

#[test]
fn default_buckets_without_an_objectives_threshold_are_refused_at_start() {
    let error = telemark::builder!()
        .without_server()
        .duration_buckets(&[0.1, 0.5, 1.0])
        .start()
        .expect_err("0.25 s (the `api` objective) is not among the buckets");
    let message = error.to_string();
    assert!(message.contains("duration_buckets"), "{message}");
    assert!(message.contains("objective `api`"), "{message}");
    assert!(message.contains("`handle`"), "{message}");
    assert!(message.contains("0.25 s"), "{message}");
}
