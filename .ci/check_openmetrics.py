#!/usr/bin/env python3
"""Checks a /metrics body served as OpenMetrics with the reference parser
(prometheus_client's, strict about the format) and requires exemplars: at
least one on a counter sample and one on a histogram bucket, each with a
32-hex-digit trace_id and a 16-hex-digit span_id.

    python3 .ci/check_openmetrics.py metrics.om
"""
import re
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        text = handle.read()
    if not text.endswith("# EOF\n"):
        raise SystemExit("OpenMetrics text must end with # EOF")
    families = list(text_string_to_metric_families(text))
    linked = {"counter": 0, "histogram": 0}
    for family in families:
        for sample in family.samples:
            exemplar = sample.exemplar
            if exemplar is None:
                continue
            trace_id = exemplar.labels.get("trace_id", "")
            span_id = exemplar.labels.get("span_id", "")
            if not re.fullmatch(r"[0-9a-f]{32}", trace_id) or not re.fullmatch(r"[0-9a-f]{16}", span_id):
                raise SystemExit(f"{sample.name}: bad exemplar ids {exemplar.labels}")
            if family.type == "histogram" and sample.name.endswith("_bucket"):
                upper = float(sample.labels["le"])
                if exemplar.value > upper:
                    raise SystemExit(f"{sample.name}{sample.labels}: exemplar {exemplar.value} above its bucket")
            if family.type in linked:
                linked[family.type] += 1
    if not all(linked.values()):
        raise SystemExit(f"exemplars missing: {linked}")
    print(f"OpenMetrics: {len(families)} families parsed; exemplars on {linked['counter']} counter "
          f"samples and {linked['histogram']} histogram buckets")


if __name__ == "__main__":
    main()
