//! A span exporter that prints one line per span.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

use opentelemetry::trace::Status;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Prints each span as one line: name, duration, ids, status, attributes.
///
/// ```
/// let traces = telemark_runtime::Traces::exporter(telemark_runtime::trace::ConsoleExporter::stdout());
/// # let _ = traces;
/// ```
pub struct ConsoleExporter {
    out: Mutex<Box<dyn std::io::Write + Send>>,
}

impl std::fmt::Debug for ConsoleExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleExporter").finish_non_exhaustive()
    }
}

impl ConsoleExporter {
    /// Prints to standard output.
    pub fn stdout() -> Self {
        ConsoleExporter {
            out: Mutex::new(Box::new(std::io::stdout())),
        }
    }

    /// Prints to any writer (a file, a buffer in a test).
    pub fn to_writer(writer: impl std::io::Write + Send + 'static) -> Self {
        ConsoleExporter {
            out: Mutex::new(Box::new(writer)),
        }
    }
}

/// One span as a line of text.
pub(crate) fn format_span(span: &SpanData) -> String {
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    let mut line = format!(
        "span {} {:.3}ms trace={} span={}",
        span.name,
        duration.as_secs_f64() * 1e3,
        span.span_context.trace_id(),
        span.span_context.span_id(),
    );
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        let _ = write!(line, " parent={}", span.parent_span_id);
    }
    let _ = write!(line, " kind={:?}", span.span_kind);
    if let Status::Error { description } = &span.status {
        let _ = write!(line, " status=error({description:?})");
    }
    for attribute in &span.attributes {
        let _ = write!(line, " {}={}", attribute.key, attribute.value);
    }
    for event in span.events.iter() {
        let _ = write!(line, " event={}", event.name);
    }
    line
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut text = String::new();
        for span in &batch {
            text.push_str(&format_span(span));
            text.push('\n');
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        Ok(())
    }
}
