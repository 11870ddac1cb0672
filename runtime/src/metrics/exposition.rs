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
    out.push_str(name);
    write_label_set(out, labels);
    let _ = writeln!(out, " {value}");
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
    fn seconds_format_exactly() {
        assert_eq!(format_seconds(5_000_000), "0.005");
        assert_eq!(format_seconds(10_000_000_000), "10");
        assert_eq!(format_seconds(2_500_000_000), "2.5");
        assert_eq!(format_seconds(1), "0.000000001");
    }
}
