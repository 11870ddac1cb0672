"""Tables and a chart of per-call overhead from criterion's results.

Reads the medians criterion saved under target/criterion for the peer
benches (`cargo bench -p telemark-peers`), prints Markdown tables (median,
overhead over the baseline of the same group and run, telemark's ratio to
each peer) and writes peers/overhead.svg, a log-scale bar chart of the
overheads.

    python3 peers/report.py [CRITERION_DIR]
"""
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERION = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "criterion")

# (section, [(label, group, case, baseline case, telemark?)])
SECTIONS = [
    ("Call counter, one thread", [
        ("telemark #[counted]", "peer_metrics", "telemark_counted", "baseline", True),
        ("metrics: cached Counter", "peer_metrics", "metrics_counter_cached", "baseline", False),
        ("metrics: counter! per call", "peer_metrics", "metrics_counter_macro", "baseline", False),
        ("metered HitCount", "peer_metrics", "metered_hit_count", "baseline", False),
        ("#[autometrics] (counter + histogram)", "peer_metrics", "autometrics", "baseline", False),
    ]),
    ("Call counter, two threads on one function", [
        ("telemark #[counted]", "peer_metrics_two_threads", "telemark_counted", "baseline", True),
        ("metrics: cached Counter", "peer_metrics_two_threads", "metrics_counter_cached", "baseline", False),
        ("metered HitCount", "peer_metrics_two_threads", "metered_hit_count", "baseline", False),
        ("#[autometrics]", "peer_metrics_two_threads", "autometrics", "baseline", False),
    ]),
    ("Duration histogram", [
        ("telemark #[timed]", "peer_metrics", "telemark_timed", "baseline", True),
        ("metrics: cached Histogram + quanta", "peer_metrics", "metrics_histogram_cached_quanta", "baseline", False),
        ("metered ResponseTime", "peer_metrics", "metered_response_time", "baseline", False),
    ]),
    ("Counter and histogram on a Result / async fn", [
        ("telemark #[counted] #[timed], Result", "peer_metrics", "telemark_counted_timed_result", "baseline_result", True),
        ("#[autometrics], Result", "peer_metrics", "autometrics_result", "baseline_result", False),
        ("telemark #[counted] #[timed], async", "peer_metrics", "telemark_counted_timed_async", "baseline_async", True),
        ("#[autometrics], async", "peer_metrics", "autometrics_async", "baseline_async", False),
    ]),
    ("Span, sampled", [
        ("telemark #[traced], root per call", "peer_spans", "telemark_traced_sampled", "baseline", True),
        ("OTel SDK in_span", "peer_spans", "otel_sdk_in_span_sampled", "baseline", False),
        ("#[tracing::instrument] + tracing-opentelemetry", "peer_spans", "tracing_instrument_with_tracing_opentelemetry", "baseline", False),
        ("telemark #[traced], child of a per-chunk root", "peer_spans", "telemark_traced_child_sampled", "baseline", True),
        ("#[fastrace::trace] + reporter, same", "peer_spans", "fastrace_trace_sampled", "baseline", False),
        ("telemark #[traced], async, root per call", "peer_spans", "telemark_traced_async_sampled", "baseline_async", True),
        ("telemark #[traced], async, child of a per-chunk root", "peer_spans", "telemark_traced_async_child_sampled", "baseline_async", True),
        ("#[fastrace::trace], async, child of a per-chunk root", "peer_spans", "fastrace_trace_async_sampled", "baseline_async", False),
    ]),
    ("Span, not sampled", [
        ("telemark #[traced], root not sampled", "peer_spans", "telemark_traced_not_sampled", "baseline", True),
        ("OTel SDK in_span, AlwaysOff", "peer_spans", "otel_sdk_in_span_not_sampled", "baseline", False),
        ("#[tracing::instrument], no subscriber", "peer_spans", "tracing_instrument_no_subscriber", "baseline", False),
        ("telemark #[traced] async fn, root not sampled, awaited in tokio", "peer_spans", "telemark_traced_async_not_sampled_in_tokio", "baseline_async_in_tokio", True),
        ("#[tracing::instrument] async fn, no subscriber, in tokio", "peer_spans", "tracing_instrument_async_no_subscriber_in_tokio", "baseline_async_in_tokio", False),
    ]),
    ("Circuit breaker, closed", [
        ("telemark #[circuit_breaker], default rules", "breaker_closed", "telemark_attribute", "baseline", True),
        ("telemark, failure-rate window of 100", "breaker_closed", "telemark_attribute_window", "baseline", True),
        ("recloser (failure-rate ring of 100)", "breaker_closed", "recloser", "baseline", False),
        ("failsafe", "breaker_closed", "failsafe", "baseline", False),
        ("telemark #[circuit_breaker], async", "breaker_closed", "telemark_attribute_async", "baseline_async", True),
        ("recloser AsyncRecloser", "breaker_closed", "recloser_async", "baseline_async", False),
        ("telemark, two threads", "breaker_closed_two_threads", "telemark_attribute", "baseline", True),
        ("telemark, window, two threads", "breaker_closed_two_threads", "telemark_attribute_window", "baseline", True),
        ("recloser, two threads", "breaker_closed_two_threads", "recloser", "baseline", False),
        ("failsafe, two threads", "breaker_closed_two_threads", "failsafe", "baseline", False),
        ("telemark #[circuit_breaker] async fn, awaited in tokio", "breaker_closed_in_tokio", "telemark_attribute_async", "baseline_async", True),
        ("recloser AsyncRecloser, in tokio", "breaker_closed_in_tokio", "recloser_async", "baseline_async", False),
        ("telemark, async fn with a timeout, in tokio", "breaker_closed_in_tokio", "telemark_attribute_async_with_timeout", "baseline_async", True),
    ]),
    ("Everything on one function", [
        ("telemark: all four attributes, sampled", "peer_spans", "telemark_stacked_sampled", "baseline_result", True),
        ("telemark: all four, switched off", "peer_spans", "telemark_stacked_switched_off", "baseline_result", True),
        ("telemark #[counted], switched off", "peer_metrics", "telemark_counted_switched_off", "baseline", True),
        ("telemark #[timed], switched off", "peer_metrics", "telemark_timed_switched_off", "baseline", True),
    ]),
]


def median(group, case):
    path = os.path.join(CRITERION, group, case, "new", "estimates.json")
    try:
        with open(path) as handle:
            return json.load(handle)["median"]["point_estimate"]
    except FileNotFoundError:
        return None


def rows():
    for section, cases in SECTIONS:
        measured = []
        for label, group, case, base, ours in cases:
            value, baseline = median(group, case), median(group, base)
            if value is None or baseline is None:
                continue
            measured.append((label, value, value - baseline, ours))
        yield section, measured


def fmt(ns):
    return f"{ns:.2f} ns" if abs(ns) < 100 else f"{ns:.0f} ns"


def signed(ns):
    return ("+" if ns >= 0 else "−") + fmt(abs(ns))


def tables(data):
    out = []
    for section, measured in data:
        if not measured:
            continue
        out.append(f"\n**{section}**\n")
        out.append("| case | median | overhead | telemark's ratio to it |")
        out.append("|---|---:|---:|---:|")
        # Each peer is compared with the telemark row just above it, which
        # measures the same shape (sync/async, threads, rules).
        ours = None
        for label, value, overhead, is_ours in measured:
            ratio = ""
            if is_ours:
                ours = overhead
            elif ours is not None and overhead > 0:
                ratio = f"{max(ours, 0) / overhead:.2f}×"
            name = f"**{label}**" if is_ours else label
            out.append(f"| {name} | {fmt(value)} | {signed(overhead)} | {ratio} |")
    return "\n".join(out)


def svg(data):
    bar_h, gap, left, width = 18, 4, 330, 520
    lo, hi = 0.1, 10000.0
    scale = lambda ns: left + width * (math.log10(max(ns, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    y = 40
    parts = []
    for section, measured in data:
        if not measured:
            continue
        y += 10
        parts.append(f'<text x="8" y="{y + 12}" font-weight="bold">{section}</text>')
        y += bar_h + gap
        for label, _, overhead, ours in measured:
            color = "#d9480f" if ours else "#868e96"
            x1 = scale(max(overhead, lo))
            parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{label}</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{x1 - left:.1f}" height="{bar_h}" fill="{color}"/>')
            shown = "≈ 0 ns" if overhead < lo else signed(overhead)
            parts.append(f'<text x="{x1 + 4:.1f}" y="{y + 13}">{shown}</text>')
            y += bar_h + gap
    ticks = []
    for power in range(-1, 5):
        ns = 10.0 ** power
        x = scale(ns)
        ticks.append(f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{y}" stroke="#dee2e6"/>')
        ticks.append(f'<text x="{x:.1f}" y="24" text-anchor="middle">{ns:g} ns</text>')
    height = y + 30
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        *ticks, *parts,
        f'<text x="8" y="{height - 8}" fill="#495057">Overhead per call over an uninstrumented '
        'baseline in the same run (criterion medians, log scale). telemark in orange.</text>',
        "</svg>\n",
    ])


def main():
    data = list(rows())
    if not any(measured for _, measured in data):
        sys.exit(f"no criterion results under {CRITERION}: run cargo bench -p telemark-peers first")
    print(tables(data))
    path = os.path.join(ROOT, "peers", "overhead.svg")
    with open(path, "w") as handle:
        handle.write(svg(data))
    print(f"\nwrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
