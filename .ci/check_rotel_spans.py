"""Checks that one trace of the propagation example reached rotel intact.

Usage: check_rotel_spans.py ROTEL_LOG TRACE_ID

rotel (run with --debug-log traces --debug-log-verbosity detailed) prints
every span it receives; this finds the spans of TRACE_ID and checks their
names, kinds, parent links and the resource's service.name.
"""
import re
import sys


def all_spans(log: str):
    """Every span rotel printed, as dicts of its fields plus "service"."""
    spans = []
    service = None
    current = None
    for raw in log.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", raw).strip()
        if line.startswith("-> service.name:"):
            service = line.split("Str(", 1)[1].rstrip(")")
        elif line.startswith("Span #"):
            current = {"service": service}
            spans.append(current)
        elif current is not None and ":" in line:
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
    return spans


def spans_of(log: str, trace_id: str):
    return [s for s in all_spans(log) if s.get("Trace ID") == trace_id]


def main() -> int:
    log_path, trace_id = sys.argv[1], sys.argv[2]
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        spans = spans_of(handle.read(), trace_id)
    by_name = {span["Name"]: span for span in spans}
    expected = {"checkout", "call_inventory", "reserve_stock"}
    problems = []
    if set(by_name) != expected or len(spans) != 3:
        problems.append(f"spans of trace {trace_id}: {[s.get('Name') for s in spans]}")
    else:
        checkout, client, server = (by_name[n] for n in ("checkout", "call_inventory", "reserve_stock"))
        if checkout.get("Parent ID"):
            problems.append(f"checkout has a parent: {checkout.get('Parent ID')}")
        if client.get("Parent ID") != checkout.get("ID"):
            problems.append("call_inventory is not a child of checkout")
        if server.get("Parent ID") != client.get("ID"):
            problems.append("reserve_stock is not a child of call_inventory (propagation)")
        kinds = {n: by_name[n].get("Kind") for n in expected}
        if kinds != {"checkout": "SPAN_KIND_SERVER", "call_inventory": "SPAN_KIND_CLIENT",
                     "reserve_stock": "SPAN_KIND_SERVER"}:
            problems.append(f"kinds: {kinds}")
        services = {span["service"] for span in spans}
        if services != {"propagation-example"}:
            problems.append(f"service.name: {services}")
    if problems:
        print("rotel check failed:", *problems, sep="\n  ")
        return 1
    print(f"rotel received trace {trace_id}: checkout -> call_inventory -> reserve_stock")
    return 0


if __name__ == "__main__":
    sys.exit(main())
