#!/usr/bin/env python3
"""The OTLP metrics push, end to end against a real collector (rotel).

Runs the example service with OTEL_METRICS_EXPORTER=otlp,prometheus,
pushing to rotel (`--debug-log metrics`) over PROTOCOL (grpc or
http/protobuf) every 300 ms; sends it requests, then stops; scrapes
/metrics; waits for a push made after the scrape, and checks that rotel
received exactly what the scrape shows: the function histograms' bucket
counts, sums and counts, the call counters (by the computed `category`
label too), and the `price_quote_cents` value histogram.

    check_rotel_metrics.py SERVICE_BINARY ROTEL_AGENT WORK_DIR PROTOCOL
"""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(what, check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def exposition(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r'([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)', line)
        if not match:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        samples[(match[1], labels)] = float(match[3])
    return samples


def exports(log):
    """Each export rotel logged: {metric name: [point]}; a point is a dict
    with its attributes and Value, or Count, Sum and Buckets."""
    found = []
    metric = None
    point = None
    for line in log.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if line.startswith("ResourceMetrics #"):
            found.append({})
        elif line.startswith("     -> Name: ") and found:
            metric = line.split(": ", 1)[1]
            found[-1][metric] = []
        elif re.match(r"(Number|Histogram)DataPoints #", line) and metric:
            point = {"attributes": {}, "buckets": []}
            found[-1][metric].append(point)
        elif point is not None and line.startswith("     -> ") and ": Str(" in line:
            key, value = line[len("     -> "):].split(": Str(", 1)
            point["attributes"][key] = value[:-1]
        elif point is not None and line.startswith("Timestamp: "):
            point["time"] = int(line.split(": ")[1])
        elif point is not None and line.startswith("Value: "):
            point["value"] = float(line.split(": ")[1])
        elif point is not None and line.startswith("Count: "):
            point["count"] = int(line.split(": ")[1])
        elif point is not None and line.startswith("Sum: "):
            point["sum"] = float(line.split(": ")[1])
        elif point is not None and re.match(r"Buckets #\d+, Count: ", line):
            point["buckets"].append(int(line.rsplit(": ", 1)[1]))
    return found


def main():
    service, rotel, work, protocol = sys.argv[1:5]
    grpc_port, http_port = free_port(), free_port()
    api, metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log_path = os.path.join(work, f"rotel-metrics-{protocol.replace('/', '-')}.log")
    endpoint = (f"http://127.0.0.1:{grpc_port}" if protocol == "grpc"
                else f"http://127.0.0.1:{http_port}/v1/metrics")
    processes = []
    try:
        with open(log_path, "w") as log:
            processes.append(subprocess.Popen(
                [rotel, "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
                 "--otlp-http-endpoint", f"127.0.0.1:{http_port}", "--exporter", "blackhole",
                 "--debug-log", "metrics", "--debug-log-verbosity", "detailed"],
                stdout=log, stderr=subprocess.STDOUT))
        env = dict(os.environ,
                   OTEL_METRICS_EXPORTER="otlp,prometheus",
                   OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=endpoint,
                   OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=protocol,
                   OTEL_METRIC_EXPORT_INTERVAL="300")
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        processes.append(subprocess.Popen(
            [service, "--quiet", "--listen", api, "--metrics-listen", metrics],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for("the service", lambda: get(f"http://{metrics}/health")[0] == 200, 30)
        for item in range(30):
            get(f"http://{api}/price/{item}")
        time.sleep(1)
        status, text = get(f"http://{metrics}/metrics")
        assert status == 200, status
        scraped_at = time.time_ns()
        scrape = exposition(text)

        def pushed_after_scrape():
            with open(log_path) as handle:
                done = [e for e in exports(handle.read())
                        if any(p.get("time", 0) > scraped_at
                               for p in e.get("function_calls_total", []))]
            return done[-1] if done else None

        wait_for("a push after the scrape", lambda: pushed_after_scrape() is not None, 15)
        export = pushed_after_scrape()

        def scraped(name, **labels):
            found = [v for (n, ls), v in scrape.items()
                     if n == name and all((k, v) in ls for k, v in labels.items())]
            assert len(found) == 1, f"one {name} {labels} scraped, found {found}"
            return found[0]

        def point(name, **labels):
            found = [p for p in export.get(name, [])
                     if all(p["attributes"].get(k) == v for k, v in labels.items())]
            assert len(found) == 1, f"one {name} {labels} pushed, found {found}"
            return found[0]

        checked = 0
        for function in ("handle_price", "fetch_price", "pricing_backend"):
            for result in ("ok", "error"):
                want = scraped("function_calls_total", function=function, result=result)
                got = point("function_calls_total", function=function, result=result)["value"]
                assert got == want, f"{function} {result}: pushed {got}, scraped {want}"
                checked += 1
        handled = scraped("function_calls_total", function="handle_price", result="ok")
        assert handled >= 29, f"the requests were handled: {handled}"
        for category in ("books", "games", "toys"):
            want = scraped("function_calls_total", function="load_item", category=category, result="ok")
            got = point("function_calls_total", function="load_item", category=category, result="ok")
            assert got["value"] == want and want > 0, f"{category}: pushed {got}, scraped {want}"
            checked += 1
        for name, function in (("function_calls_duration_seconds", "handle_price"),
                               ("function_calls_duration_seconds", "pricing_backend"),
                               ("price_quote_cents", "handle_price")):
            got = point(name, function=function)
            cumulative = sorted(
                ((float("inf") if dict(ls)["le"] == "+Inf" else float(dict(ls)["le"])), v)
                for (n, ls), v in scrape.items()
                if n == f"{name}_bucket" and ("function", function) in ls)
            buckets, below = [], 0
            for _, value in cumulative:
                buckets.append(int(value) - below)
                below = int(value)
            count = scraped(f"{name}_count", function=function)
            total = scraped(f"{name}_sum", function=function)
            assert got["buckets"] == buckets, f"{name} {function}: pushed {got['buckets']}, scraped {buckets}"
            assert got["count"] == count > 0, f"{name} {function}: count {got['count']} vs {count}"
            assert abs(got["sum"] - total) <= 1e-9 * max(1, abs(total)), f"{name} sum {got['sum']} vs {total}"
            print(f"ok: {name}{{function={function}}} pushed as scraped: count {count:.0f}, buckets {buckets}")
            checked += 1
        print(f"ok: over {protocol}, {checked} series rotel received match the scrape")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
