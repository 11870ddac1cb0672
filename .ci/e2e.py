"""End-to-end check of the observability assets against real components.

Starts rotel (an OTLP collector), the example service under load exporting
spans to it, Alertmanager and Prometheus (with assets/prometheus/alerts.yml),
all on loopback, then checks:

- every PromQL expression of every dashboard panel and variable, and every
  rule, evaluates without error and returns data after traffic;
- turning the pricing backend's failure switch on makes CircuitBreakerOpen
  and HighErrorRatio (for the API handler) go pending, the burn-rate alert
  of the API handler's success objective fires, the breaker alert then fires and Alertmanager routes it to the on-call receiver; turning the
  switch off resolves them;
- a request's spans reach the collector as one trace across two services
  (shop -> pricing, each behind telemark's tower layer, the call made with
  its reqwest middleware) with correct parents, kinds and the HTTP
  semantic-convention attributes, and the handler's log line carries the
  same trace id;
- the HTTP server and client metrics of both services are in Prometheus.

Usage: e2e.py SERVICE_BINARY ROTEL_BINARY WORK_DIR
Every wait is bounded; every process started is stopped.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_rotel_spans  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "assets")
API = "127.0.0.1:28080"
METRICS = "127.0.0.1:29464"
PRICING_API = "127.0.0.1:28081"
PRICING_METRICS = "127.0.0.1:29465"
PROMETHEUS = "127.0.0.1:29090"
ALERTMANAGER = "127.0.0.1:29093"
OTLP_GRPC = "127.0.0.1:24317"
OTLP_HTTP = "127.0.0.1:24318"


def log(message):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def http(url, method="GET", timeout=5):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


def wait_for(what, check, timeout, interval=1.0):
    """Calls check() until it returns a true value, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            last_error = error
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def query(expr):
    url = f"http://{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        _, body = http(url)
    except urllib.error.HTTPError as error:
        return {"status": "error", "error": error.read().decode()}
    return json.loads(body)


def substitute(expr):
    """A dashboard expression as Grafana would send it, every variable on All."""
    expr = expr.replace("$__rate_interval", "1m")
    return re.sub(r"\$\{?(service|module|function|breaker|job)\}?", ".*", expr)


def dashboard_queries():
    queries = []
    directory = os.path.join(ASSETS, "grafana", "dashboards")
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name)) as handle:
            dashboard = json.load(handle)
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):  # a row has none
                queries.append((f"{name}: panel {panel['title']!r}", substitute(target["expr"])))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
            if not match:
                raise SystemExit(f"{name}: variable {variable['name']}: unexpected query")
            queries.append(
                (f"{name}: variable ${variable['name']}", f"count by ({match[2]}) ({substitute(match[1])})")
            )
    return queries


def rule_queries():
    """Recording rules by name; alerts by the left side of their comparison."""
    _, body = http(f"http://{PROMETHEUS}/api/v1/rules")
    queries = []
    for group in json.loads(body)["data"]["groups"]:
        for rule in group["rules"]:
            if rule["health"] != "ok":
                raise SystemExit(f"rule {rule['name']} is unhealthy: {rule.get('lastError')}")
            if rule["type"] == "recording":
                queries.append((f"recording rule {rule['name']}", rule["name"]))
            else:
                left = re.fullmatch(r"(.+?)\s*(>=|<=|==|!=|>|<)\s*[0-9.]+", rule["query"].strip(), re.S)
                if not left:
                    raise SystemExit(f"alert {rule['name']}: expected '<expression> <op> <number>'")
                queries.append((f"alert {rule['name']}", left[1]))
    return queries


def require_data(label, expr, timeout):
    def has_data():
        answer = query(expr)
        if answer["status"] != "success":
            raise SystemExit(f"{label}: {expr}\n  error: {answer.get('error')}")
        return answer["data"]["result"]

    result = wait_for(f"data for {label}: {expr}", has_data, timeout)
    log(f"ok: {label} ({len(result)} series)")


def alerts():
    _, body = http(f"http://{PROMETHEUS}/api/v1/alerts")
    return json.loads(body)["data"]["alerts"]


def active(name):
    return [a for a in alerts() if a["labels"]["alertname"] == name and a["state"] in ("pending", "firing")]


# Attributes each span of the cross-service trace must carry (rotel prints
# them as "-> key: Str(value)" / "Int(value)").
SERVER_ATTRIBUTES = {"http.request.method": "Str(GET)", "url.scheme": "Str(http)",
                     "http.response.status_code": "Int(200)", "network.protocol.version": "Str(1.1)"}
CLIENT_ATTRIBUTES = {"http.request.method": "Str(GET)", "server.address": "Str(127.0.0.1)",
                     "server.port": f"Int({PRICING_API.rsplit(':', 1)[1]})",
                     "http.response.status_code": "Int(200)"}


def attribute(span, key):
    return span.get(f"-> {key}")


def check_spans(rotel_log, shop_log):
    """One request's trace: shop's server span -> handle_price -> (load_item,
    fetch_price -> GET client span) -> pricing's server span -> pricing_backend,
    with the handler's log line in shop's output carrying the trace id."""
    with open(rotel_log, encoding="utf-8", errors="replace") as handle:
        spans = check_rotel_spans.all_spans(handle.read())
    with open(shop_log, encoding="utf-8", errors="replace") as handle:
        logged = set(re.findall(r"^trace_id=([0-9a-f]{32}) span_id=[0-9a-f]{16} .* priced item=",
                                handle.read(), re.MULTILINE))
    by_id = {span.get("ID"): span for span in spans}
    parent = lambda span: by_id.get(span.get("Parent ID"))  # noqa: E731
    for backend in (s for s in spans if s.get("Name") == "pricing_backend"):
        chain = [backend]
        while len(chain) < 6 and parent(chain[-1]):
            chain.append(parent(chain[-1]))
        names = [span.get("Name") for span in chain]
        if names != ["pricing_backend", "GET /internal/pricing/{item}", "GET", "fetch_price",
                     "handle_price", "GET /price/{item}"]:
            continue
        backend, pricing_server, client, fetch, handler, root = chain
        trace = root.get("Trace ID")
        if root.get("Parent ID") or trace not in logged:
            continue
        if {span.get("Trace ID") for span in chain} != {trace}:
            raise SystemExit(f"one request's spans in several traces: {[(s.get('Name'), s.get('Trace ID')) for s in chain]}")
        siblings = {s.get("Name") for s in spans if s.get("Parent ID") == handler.get("ID")}
        if "load_item" not in siblings:
            continue
        kinds = [span.get("Kind") for span in chain]
        if kinds != ["SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_INTERNAL",
                     "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER"]:
            raise SystemExit(f"span kinds in trace {trace}: {list(zip(names, kinds))}")
        services = [span["service"] for span in chain]
        if services != ["pricing", "pricing", "shop", "shop", "shop", "shop"]:
            raise SystemExit(f"service.name in trace {trace}: {list(zip(names, services))}")
        expected = [(root, dict(SERVER_ATTRIBUTES, **{"http.route": "Str(/price/{item})"})),
                    (pricing_server, dict(SERVER_ATTRIBUTES, **{"http.route": "Str(/internal/pricing/{item})"})),
                    (client, CLIENT_ATTRIBUTES)]
        for span, attributes in expected:
            wrong = {key: attribute(span, key) for key, value in attributes.items() if attribute(span, key) != value}
            if wrong:
                raise SystemExit(f"{span.get('Name')} in trace {trace}: attributes {wrong}, expected {attributes}")
        if not (attribute(root, "url.path") or "").startswith("Str(/price/"):
            raise SystemExit(f"url.path of the root span in trace {trace}: {attribute(root, 'url.path')}")
        return trace
    return None


def exemplar_traces_at_collector(rotel_log):
    """Trace ids of handle_price's duration exemplars that rotel received."""
    now = time.time()
    url = f"http://{PROMETHEUS}/api/v1/query_exemplars?" + urllib.parse.urlencode({
        "query": 'function_calls_duration_seconds_bucket{function="handle_price"}',
        "start": now - 600, "end": now})
    status, body = http(url)
    if status != 200:
        return None
    exemplars = [e for series in json.loads(body)["data"] for e in series["exemplars"]]
    ids = {e["labels"].get("trace_id") for e in exemplars}
    with open(rotel_log, encoding="utf-8", errors="replace") as handle:
        received = {s.get("Trace ID") for s in check_rotel_spans.all_spans(handle.read())}
    return ids & received or None


def main():
    service, rotel, work = sys.argv[1:4]
    processes = []

    def start(name, args, env=None):
        with open(os.path.join(work, f"e2e-{name}.log"), "w") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        processes.append((name, process))
        return process

    try:
        start("rotel", [rotel, "start", "--otlp-grpc-endpoint", OTLP_GRPC,
                        "--otlp-http-endpoint", OTLP_HTTP, "--exporter", "blackhole",
                        "--debug-log", "traces", "--debug-log-verbosity", "detailed"])
        env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{OTLP_GRPC}",
                   OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_SERVICE_NAME="shop")
        # The pricing backend as a second service: another instance of the
        # example, which the shop calls over HTTP.
        start("pricing", [service, "--listen", PRICING_API, "--metrics-listen", PRICING_METRICS],
              dict(env, OTEL_SERVICE_NAME="pricing"))
        start("service", [service, "--listen", API, "--metrics-listen", METRICS, "--load", "25",
                          "--pricing", f"http://{PRICING_API}"], env)
        start("alertmanager", ["prometheus-alertmanager",
                               f"--config.file={os.path.join(ASSETS, 'alertmanager', 'alertmanager.yml')}",
                               f"--storage.path={os.path.join(work, 'alertmanager')}",
                               f"--web.listen-address={ALERTMANAGER}", "--cluster.listen-address="])
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as handle:
            handle.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {os.path.join(ASSETS, 'prometheus', 'alerts.yml')}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{ALERTMANAGER}"]
scrape_configs:
  - job_name: shop
    static_configs:
      - targets: ["{METRICS}"]
  - job_name: pricing
    static_configs:
      - targets: ["{PRICING_METRICS}"]
""")
        start("prometheus", ["prometheus", f"--config.file={config}",
                             f"--storage.tsdb.path={os.path.join(work, 'tsdb')}",
                             f"--web.listen-address={PROMETHEUS}",
                             "--enable-feature=exemplar-storage"])

        wait_for("Alertmanager to be ready", lambda: http(f"http://{ALERTMANAGER}/-/ready")[0] == 200, 30)
        wait_for("Prometheus to be ready", lambda: http(f"http://{PROMETHEUS}/-/ready")[0] == 200, 30)
        wait_for("both services' targets to be up",
                 lambda: len(query('up{job=~"shop|pricing"} == 1')["data"]["result"]) == 2, 60)
        log("targets up")
        wait_for("traffic", lambda: query('sum(rate(function_calls_total{function="handle_price"}[1m])) > 0')
                 ["data"]["result"], 60)
        log("traffic flowing")

        # The HTTP metrics of telemark's layer and middleware, per route.
        for label, expr in (
                ("shop's API route", 'http_server_request_duration_seconds_count'
                 '{job="shop",http_route="/price/{item}",http_response_status_code="200"} > 0'),
                ("pricing's route", 'http_server_request_duration_seconds_count'
                 '{job="pricing",http_route="/internal/pricing/{item}",http_response_status_code="200"} > 0'),
                ("shop's calls to pricing", 'http_client_request_duration_seconds_count'
                 f'{{job="shop",server_address="127.0.0.1",server_port="{PRICING_API.rsplit(":", 1)[1]}"}} > 0'),
                ("requests in flight", 'http_server_active_requests{job="shop"}')):
            require_data(label, expr, 30)
        log("ok: HTTP server and client metrics of both services")

        for label, expr in dashboard_queries():
            require_data(label, expr, 30)
        wait_for("every rule to be evaluated", lambda: all(
            rule.get("lastEvaluation", "").startswith("20")
            for group in json.loads(http(f"http://{PROMETHEUS}/api/v1/rules")[1])["data"]["groups"]
            for rule in group["rules"]), 30)
        for label, expr in rule_queries():
            require_data(label, expr, 30)

        log("pricing backend: failing")
        http(f"http://{PRICING_API}/admin/dependency?fail=true", method="POST")
        for name in ("CircuitBreakerOpen", "HighErrorRatio"):
            found = wait_for(f"{name} to go pending or firing", lambda: active(name), 90)
            log(f"ok: {name} {found[0]['state']} {found[0]['labels']}")
        if not any(a["labels"].get("breaker") == "pricing" for a in active("CircuitBreakerOpen")):
            raise SystemExit("CircuitBreakerOpen is not about the pricing breaker")
        wait_for("HighErrorRatio for the API handler",
                 lambda: any(a["labels"].get("function") == "handle_price" for a in active("HighErrorRatio")), 60)
        log("ok: HighErrorRatio covers handle_price")
        # The API handler's success objective (99.9%) burns its budget far
        # faster than 14.4x: the page-level burn-rate alert fires (no `for`).
        burning = wait_for("ObjectiveBudgetBurnFast to fire for the price-availability objective", lambda: [
            a for a in active("ObjectiveBudgetBurnFast")
            if a["state"] == "firing" and a["labels"].get("objective_name") == "price-availability"
            and a["labels"].get("objective_kind") == "success_rate"], 90)
        log(f"ok: ObjectiveBudgetBurnFast firing {burning[0]['labels']} (burn rate {float(burning[0]['value']):.0f})")
        # After its `for: 1m`, the breaker alert fires and reaches Alertmanager,
        # routed to the on-call receiver.
        wait_for("CircuitBreakerOpen to fire", lambda: any(
            a["state"] == "firing" for a in active("CircuitBreakerOpen")), 120, interval=2)

        def routed():
            _, body = http(f"http://{ALERTMANAGER}/api/v2/alerts")
            return [a for a in json.loads(body) if a["labels"].get("alertname") == "CircuitBreakerOpen"
                    and {r["name"] for r in a["receivers"]} == {"on-call"}]

        wait_for("Alertmanager to route CircuitBreakerOpen to on-call", routed, 30)
        log("ok: Alertmanager received CircuitBreakerOpen and routed it to on-call")

        log("pricing backend: healthy again")
        http(f"http://{PRICING_API}/admin/dependency?fail=false", method="POST")
        for name in ("CircuitBreakerOpen", "HighErrorRatio"):
            wait_for(f"{name} to resolve", lambda: not active(name), 180, interval=2)
            log(f"ok: {name} resolved")

        trace = wait_for("a request's spans at the collector, and its log line",
                         lambda: check_spans(os.path.join(work, "e2e-rotel.log"),
                                             os.path.join(work, "e2e-service.log")), 30)
        log(f"ok: trace {trace}: shop [GET /price/{{item}} -> handle_price -> (load_item, fetch_price -> GET)]"
            " -> pricing [GET /internal/pricing/{item} -> pricing_backend], logged with its trace id")

        # Prometheus negotiated OpenMetrics, kept the duration buckets'
        # exemplars, and their trace ids are traces the collector received.
        linked = wait_for("exemplars of handle_price's duration that are traces at the collector",
                          lambda: exemplar_traces_at_collector(os.path.join(work, "e2e-rotel.log")), 60, interval=2)
        log(f"ok: {len(linked)} exemplar trace ids of handle_price's duration buckets are traces at rotel, "
            f"e.g. {sorted(linked)[0]}")
    finally:
        for name, process in reversed(processes):
            process.terminate()
        for name, process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    log("end-to-end check passed")


if __name__ == "__main__":
    main()
