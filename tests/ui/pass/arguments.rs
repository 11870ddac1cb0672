#![deny(warnings)]
use telemark::{counted, timed};

mod vendored {
    pub use telemark;
}

#[counted(name = "jobs_total", labels(queue = "emails", r#type = "batch"))]
#[timed(name = "job_duration_seconds", buckets = [0.001, 0.01, 1, 2.5], labels(queue = "emails"))]
fn job() {}

#[counted(ok_if = Option::is_some)]
fn find(x: u32) -> Option<u32> {
    (x > 1).then_some(x)
}

fn is_negative(value: &i64) -> bool {
    *value < 0
}

#[counted(error_if = is_negative)]
fn delta(x: i64) -> i64 {
    x
}

#[counted(crate = crate::vendored::telemark)]
#[timed(crate = crate::vendored::telemark)]
fn through_a_reexport() -> u8 {
    1
}

fn main() {
    job();
    assert_eq!(find(2), Some(2));
    assert_eq!(delta(-1), -1);
    assert_eq!(through_a_reexport(), 1);
    let delta_stats = telemark::catalog::instrumented_functions()
        .into_iter()
        .find(|f| f.function == "delta")
        .unwrap();
    assert_eq!(delta_stats.errors, 1);
}
