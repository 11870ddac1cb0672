//! The `process_*` families on `/metrics` follow the process: file
//! descriptors it opens, threads it starts, CPU it burns; and telemark's
//! own cost is counted.
#![cfg(all(target_os = "linux", feature = "process-metrics"))]

use std::fs::File;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn value(text: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|line| line.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn process_metrics_follow_the_process() {
    let telemetry = telemark::builder!().without_server().start().unwrap();
    let before = telemetry.render_metrics();

    let files: Vec<File> = (0..20)
        .map(|_| File::open("/proc/self/stat").unwrap())
        .collect();
    let release = Arc::new(Barrier::new(5));
    let started = Arc::new(Barrier::new(5));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (release, started) = (release.clone(), started.clone());
            std::thread::spawn(move || {
                started.wait();
                release.wait();
            })
        })
        .collect();
    started.wait();
    let busy = Instant::now();
    let mut x = 1u64;
    while busy.elapsed() < Duration::from_millis(300) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let after = telemetry.render_metrics();
    release.wait();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(files);

    assert!(
        value(&after, "process_open_fds") >= value(&before, "process_open_fds") + 20.0,
        "{before}\n{after}"
    );
    assert!(value(&after, "process_max_fds") >= value(&after, "process_open_fds"));
    assert!(value(&after, "process_threads") >= value(&before, "process_threads") + 4.0);
    assert!(
        value(&after, "process_cpu_seconds_total")
            >= value(&before, "process_cpu_seconds_total") + 0.05,
        "300 ms of busy loop"
    );
    let resident = value(&after, "process_resident_memory_bytes");
    assert!(resident > 1e6 && value(&after, "process_virtual_memory_bytes") >= resident);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started_at = value(&after, "process_start_time_seconds");
    assert!(
        started_at <= now + 1.0 && started_at > now - 3600.0,
        "{started_at} vs {now}"
    );
    // The first render's time is counted by the second.
    assert!(value(&after, "telemark_render_seconds_total") > 0.0);
    assert!(value(&after, "telemark_span_export_seconds_total") >= 0.0);
}
