//! The run-time kill switch (its own test binary: it flips process-wide state).
#![cfg(not(feature = "disable-instrumentation"))]

mod common;

use common::{scrape, start};

#[telemark::counted]
#[telemark::timed]
fn work(x: u32) -> Result<u32, String> {
    if x == 0 {
        Err("zero".into())
    } else {
        Ok(x)
    }
}

#[test]
fn switching_off_stops_recording_and_switching_on_resumes_it() {
    let telemetry = start();
    let address = telemetry.local_addr().unwrap();
    let ok = [("function", "work"), ("result", "ok")];
    let error = [("function", "work"), ("result", "error")];
    let timed = [("function", "work")];

    let _ = (work(1), work(0));
    let on = scrape(address);
    assert_eq!(on.value("function_calls_total", &ok), 1.0);
    assert_eq!(on.value("function_calls_total", &error), 1.0);

    telemark::set_enabled(false);
    assert!(!telemark::is_enabled());
    for x in 0..100 {
        assert_eq!(work(x).is_ok(), x != 0, "results are unchanged while off");
    }
    let off = scrape(address);
    assert_eq!(off.value("function_calls_total", &ok), 1.0);
    assert_eq!(off.value("function_calls_total", &error), 1.0);
    let (buckets, _) = off.histogram("function_calls_duration_seconds", &timed);
    assert_eq!(buckets["+Inf"], 2.0);
    let status = telemetry.status();
    assert_eq!(status["instrumentation_enabled"], false);

    telemark::set_enabled(true);
    let _ = work(5);
    let back = scrape(address);
    assert_eq!(back.value("function_calls_total", &ok), 2.0);
    let (buckets, _) = back.histogram("function_calls_duration_seconds", &timed);
    assert_eq!(buckets["+Inf"], 3.0);
    assert_eq!(back.value("function_calls_concurrent", &timed), 0.0);
}
