//! Writing the Prometheus text exposition format (0.0.4): family headers,
//! label sets and escaped values. Used by every subsystem that renders
//! series on `/metrics`.

use std::fmt::Write;

/// Appends `value` with `\`, `"` and newlines escaped, as label values need.
pub(crate) fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes `{key="value",...}` for every label of `labels`, in order
/// (nothing when there are none).
pub(crate) fn write_label_set<'a>(
    out: &mut String,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let mut labels = labels.into_iter().peekable();
    if labels.peek().is_none() {
        return;
    }
    out.push('{');
    for (i, (key, value)) in labels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    out.push('}');
}

/// Writes a family's `# HELP` and `# TYPE` lines.
pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample line: `name{labels} value`.
pub(crate) fn sample<'a>(
    out: &mut String,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    value: impl std::fmt::Display,
) {
    sample_with_exemplar(out, name, labels, value, None);
}

/// An exemplar as OpenMetrics writes it after a sample's value.
pub(crate) struct ExemplarText<'a> {
    pub trace_id: u128,
    pub span_id: u64,
    /// The exemplar's own value, as written.
    pub value: &'a str,
    pub unix_nanos: u128,
}

/// Writes one sample line, with ` # {trace_id="…",span_id="…"} value
/// timestamp` after its value when given an exemplar (OpenMetrics only).
pub(crate) fn sample_with_exemplar<'a>(
    out: &mut String,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    value: impl std::fmt::Display,
    exemplar: Option<ExemplarText<'_>>,
) {
    out.push_str(name);
    write_label_set(out, labels);
    let _ = write!(out, " {value}");
    if let Some(exemplar) = exemplar {
        let seconds = exemplar.unix_nanos / 1_000_000_000;
        let millis = exemplar.unix_nanos / 1_000_000 % 1_000;
        let _ = write!(
            out,
            " # {{trace_id=\"{:032x}\",span_id=\"{:016x}\"}} {} {seconds}.{millis:03}",
            exemplar.trace_id, exemplar.span_id, exemplar.value
        );
    }
    out.push('\n');
}

/// Appends `value` in decimal, without the formatting machinery (the
/// renderers write hundreds of thousands of them).
pub(crate) fn push_u64(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or("0"));
}

/// Appends `value` as a JSON string.
pub(crate) fn json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"key":` to a JSON object being written.
pub(crate) fn json_key(out: &mut String, key: &str) {
    json_string(out, key);
    out.push(':');
}

/// Formats a bound in nanoseconds as an exact decimal number of seconds.
pub(crate) fn format_seconds(nanos: u64) -> String {
    let whole = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value("a\"b\\c\nd", &mut out);
        assert_eq!(out, r#"a\"b\\c\nd"#);
    }

    #[test]
    fn samples_without_labels_have_no_braces() {
        let mut out = String::new();
        sample(&mut out, "spans_total", [], 3);
        sample(&mut out, "calls_total", [("result", "ok")], 1);
        assert_eq!(out, "spans_total 3\ncalls_total{result=\"ok\"} 1\n");
    }

    #[test]
    fn exemplars_follow_the_value_in_openmetrics_form() {
        let mut out = String::new();
        let exemplar = ExemplarText {
            trace_id: 0x0af7651916cd43dd8448eb211c80319c,
            span_id: 0xb7ad6b7169203331,
            value: "0.25",
            unix_nanos: 1_700_000_000_123_456_789,
        };
        sample_with_exemplar(&mut out, "calls_total", [("a", "b")], 3, Some(exemplar));
        assert_eq!(
            out,
            "calls_total{a=\"b\"} 3 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\",\
             span_id=\"b7ad6b7169203331\"} 0.25 1700000000.123\n"
        );
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for value in [0, 7, 10, 4_294_967_296, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn seconds_format_exactly() {
        assert_eq!(format_seconds(5_000_000), "0.005");
        assert_eq!(format_seconds(10_000_000_000), "10");
        assert_eq!(format_seconds(2_500_000_000), "2.5");
        assert_eq!(format_seconds(1), "0.000000001");
    }
}
