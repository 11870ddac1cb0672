//! Argument parsing shared by every attribute.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::{Error, LitStr, Path, Result};

/// Labels every function series already has, or that a family adds itself.
const RESERVED_LABELS: &[&str] = &[
    "function",
    "module",
    "service_name",
    "result",
    "le",
    "caller_function",
    "caller_module",
    "objective_name",
    "objective_percentile",
    "objective_latency_threshold",
];

/// Tracks which arguments were given, to refuse duplicates.
pub struct Seen {
    names: Vec<String>,
}

impl Seen {
    pub fn new() -> Self {
        Seen { names: Vec::new() }
    }

    /// The argument's name, or an error spanned on it if it came before.
    pub fn name(&mut self, meta: &ParseNestedMeta) -> Result<String> {
        let name = path_name(&meta.path);
        if self.names.contains(&name) {
            return Err(meta.error(format!("duplicate argument `{name}`")));
        }
        self.names.push(name.clone());
        Ok(name)
    }
}

fn path_name(path: &Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// `unknown argument` error listing what the attribute accepts.
pub fn unknown(meta: &ParseNestedMeta, attribute: &str, name: &str, expected: &str) -> Error {
    meta.error(format!(
        "unknown argument `{name}` for #[{attribute}]; expected one of: {expected}"
    ))
}

/// `crate = path::to::telemark`
pub fn crate_path(meta: &ParseNestedMeta) -> Result<Path> {
    meta.value()?.parse::<Path>().map_err(|err| {
        Error::new(
            err.span(),
            "expected a path to the telemark crate, e.g. `crate = ::telemark`",
        )
    })
}

/// Families telemark renders itself, which no attribute may take over.
const RESERVED_NAMES: &[&str] = &[
    "function_calls_concurrent",
    "build_info",
    "telemark_spans_exported_total",
    "telemark_spans_dropped_total",
];

/// `name = "..._total"` of a counter.
pub fn counter_name(meta: &ParseNestedMeta) -> Result<String> {
    let (name, lit) = metric_name(meta)?;
    if !name.ends_with("_total") {
        return Err(Error::new_spanned(
            lit,
            format!("a counter's name must end in `_total`, e.g. `{name}_total`"),
        ));
    }
    Ok(name)
}

/// `name = "..."` of a histogram: not ending like a counter or a histogram
/// series (`_total`, `_bucket`, `_sum`, `_count`).
pub fn histogram_name(meta: &ParseNestedMeta) -> Result<String> {
    let (name, lit) = metric_name(meta)?;
    for suffix in ["_total", "_bucket", "_sum", "_count"] {
        if name.ends_with(suffix) {
            return Err(Error::new_spanned(
                lit,
                format!(
                    "a histogram's name must not end in `{suffix}`: Prometheus adds \
                     `_bucket`, `_sum` and `_count` to it"
                ),
            ));
        }
    }
    Ok(name)
}

/// `name = "metric_name"`, checked against Prometheus's metric name syntax.
fn metric_name(meta: &ParseNestedMeta) -> Result<(String, LitStr)> {
    let lit = string(meta, "a metric name string, e.g. `name = \"jobs_total\"`")?;
    let value = lit.value();
    let mut chars = value.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid {
        return Err(Error::new_spanned(
            &lit,
            format!(
                "`{value}` is not a valid Prometheus metric name \
                 (letters, digits, `_` and `:`, not starting with a digit)"
            ),
        ));
    }
    if RESERVED_NAMES.contains(&value.as_str()) {
        return Err(Error::new_spanned(
            &lit,
            format!("`{value}` is a metric telemark exports itself; choose another name"),
        ));
    }
    Ok((value, lit))
}

fn string(meta: &ParseNestedMeta, expected: &str) -> Result<LitStr> {
    let value = meta.value()?;
    value
        .parse::<LitStr>()
        .map_err(|err| Error::new(err.span(), format!("expected {expected}")))
}

/// `labels(key = "value", ...)`: constant labels on every series.
pub fn labels(meta: &ParseNestedMeta) -> Result<Vec<(String, String)>> {
    let ahead = meta.input.fork();
    let content;
    syn::parenthesized!(content in ahead);
    if content.is_empty() {
        return Err(meta.error("`labels(...)` needs at least one `key = \"value\"`"));
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    meta.parse_nested_meta(|label| {
        let Some(key) = label.path.get_ident() else {
            return Err(label.error("a label name must be a plain identifier"));
        };
        let key_text = key.to_string();
        let key_text = key_text.trim_start_matches("r#").to_owned();
        if !key_text.is_ascii() {
            return Err(label.error("Prometheus label names are ASCII letters, digits and `_`"));
        }
        if key_text.starts_with("__") {
            return Err(label.error("label names starting with `__` are reserved by Prometheus"));
        }
        if RESERVED_LABELS.contains(&key_text.as_str()) {
            return Err(label.error(format!(
                "label `{key_text}` is set by telemark and cannot be overridden"
            )));
        }
        if labels.iter().any(|(existing, _)| *existing == key_text) {
            return Err(label.error(format!("duplicate label `{key_text}`")));
        }
        let value = string(&label, "a string label value, e.g. `team = \"payments\"`")?;
        labels.push((key_text, value.value()));
        Ok(())
    })?;
    Ok(labels)
}

/// The default `::telemark` path, spanned at the call site.
pub fn default_crate() -> Path {
    let mut path: Path = syn::parse_quote!(::telemark);
    for segment in &mut path.segments {
        segment.ident.set_span(Span::call_site());
    }
    path
}

/// `__telemark_type = "Type"`: passed by an annotated impl block to the
/// telemark attributes on its methods; not written by users.
pub fn impl_type(meta: &ParseNestedMeta) -> Result<String> {
    Ok(meta.value()?.parse::<LitStr>()?.value())
}
