//! The process's own metrics, named as every Prometheus client library
//! names them (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! …), read from `/proc` when `/metrics` is rendered (the `process-metrics`
//! feature, on Linux; elsewhere nothing is written).

/// Appends the `process_*` families: CPU seconds, resident and virtual
/// memory, open and maximum file descriptors, threads and start time. A
/// value `/proc` cannot give is left out, never guessed.
pub(crate) fn render_process_metrics(out: &mut String) {
    #[cfg(all(feature = "process-metrics", target_os = "linux"))]
    linux::render(out);
    #[cfg(not(all(feature = "process-metrics", target_os = "linux")))]
    let _ = out;
}

#[cfg(all(feature = "process-metrics", target_os = "linux"))]
mod linux {
    use procfs::process::{LimitValue, Process};
    use procfs::{CurrentSI, WithCurrentSystemInfo};

    use crate::metrics::exposition::{header, sample};

    fn family(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        header(out, name, kind, help);
        sample(out, name, [], value);
    }

    pub(super) fn render(out: &mut String) {
        let Ok(me) = Process::myself() else { return };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            family(
                out,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
            family(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                stat.rss_bytes().get(),
            );
            family(
                out,
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                stat.vsize,
            );
            family(
                out,
                "process_threads",
                "gauge",
                "Number of OS threads in the process.",
                stat.num_threads,
            );
            if let Ok(boot) = procfs::KernelStats::current() {
                let started = boot.btime as f64 + stat.starttime as f64 / ticks;
                family(
                    out,
                    "process_start_time_seconds",
                    "gauge",
                    "Start time of the process since unix epoch in seconds.",
                    started,
                );
            }
        }
        if let Ok(open) = me.fd_count() {
            family(
                out,
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                open,
            );
        }
        if let Ok(limits) = me.limits() {
            if let LimitValue::Value(max) = limits.max_open_files.soft_limit {
                family(
                    out,
                    "process_max_fds",
                    "gauge",
                    "Maximum number of open file descriptors.",
                    max,
                );
            }
        }
    }
}
