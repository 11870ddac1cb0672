//! The `metrics` facade recorder: whatever the service records through
//! `metrics::counter!` and friends is served on `/metrics` beside
//! telemark's own series.

use std::sync::Mutex;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Another `metrics` recorder is installed in this process.
#[derive(Debug)]
pub(crate) struct RecorderInstalled;

/// The recorder telemark installed in this process, if it did.
static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder as the process's `metrics` recorder,
/// once; later calls share it. `Err` when another recorder is installed.
pub(crate) fn install_recorder(buckets: &[f64]) -> Result<PrometheusHandle, RecorderInstalled> {
    // Held across the check and the install, so concurrent starts share one recorder.
    let mut installed = RECORDER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(buckets)
        .map_err(|_| RecorderInstalled)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| RecorderInstalled)?;
    *installed = Some(handle.clone());
    Ok(handle)
}
