"""Static checks of assets/ that no tool here runs (there is no Docker engine):

- docker-compose.yml: every service has an image or a build whose context
  and Dockerfile exist; every bind-mounted file or directory exists; the
  service exports spans to a service of the stack; Prometheus mounts the
  alert rules the compose config names.
- alerts.yml: every alert has a severity, a summary, a description and a
  runbook_url naming a runbook that exists, and has a firing and a
  non-firing case in tests/alerts_test.yml.
- dashboards: unique uids, every panel query on the ${datasource} variable;
  the latency panel asks for exemplars, Prometheus keeps them, and Grafana
  opens their trace_id in the Jaeger the spans go to.

Usage: check_assets.py (with PyYAML installed)
"""
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "assets")
problems = []


def load(*path):
    with open(os.path.join(ASSETS, *path)) as handle:
        return yaml.safe_load(handle)


def check_compose():
    compose = load("docker-compose.yml")
    services = compose["services"]
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"compose: {name} has neither image nor build")
        if "build" in service:
            context = os.path.normpath(os.path.join(ASSETS, service["build"]["context"]))
            dockerfile = os.path.join(context, service["build"].get("dockerfile", "Dockerfile"))
            if not os.path.isdir(context) or not os.path.isfile(dockerfile):
                problems.append(f"compose: {name} builds from a missing {dockerfile}")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")) and not os.path.exists(os.path.join(ASSETS, source)):
                problems.append(f"compose: {name} mounts missing {source}")
        for dependency in service.get("depends_on", []):
            if dependency not in services:
                problems.append(f"compose: {name} depends on unknown {dependency}")
    endpoint = services["shop"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    if endpoint.split("//")[1].split(":")[0] not in services:
        problems.append(f"compose: spans go to {endpoint}, not a service of the stack")
    prometheus = load("compose", "prometheus.yml")
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    for rule_file in prometheus["rule_files"]:
        if rule_file not in mounted:
            problems.append(f"compose: Prometheus reads {rule_file}, which is not mounted")
    for job in prometheus["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                if target.split(":")[0] not in services:
                    problems.append(f"compose: Prometheus scrapes {target}, not a service")


def check_alerts():
    rules = load("prometheus", "alerts.yml")
    tests = load("prometheus", "tests", "alerts_test.yml")
    firing, quiet = set(), set()
    for test in tests["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert")
            if not name:
                continue
            if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
                problems.append(f"alert {name}: no severity")
            annotations = rule.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                if not annotations.get(key):
                    problems.append(f"alert {name}: no {key}")
            runbook = annotations.get("runbook_url", "").rsplit("/", 1)[-1]
            if runbook != f"{name}.md" or not os.path.isfile(os.path.join(ASSETS, "runbooks", runbook)):
                problems.append(f"alert {name}: runbook {runbook} missing")
            if name not in firing:
                problems.append(f"alert {name}: no promtool test where it fires")
            if name not in quiet:
                problems.append(f"alert {name}: no promtool test where it stays quiet")


def check_dashboards():
    directory = os.path.join(ASSETS, "grafana", "dashboards")
    uids = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name)) as handle:
            dashboard = json.load(handle)
        if dashboard["uid"] in uids:
            problems.append(f"{name}: uid {dashboard['uid']} also used by {uids[dashboard['uid']]}")
        uids[dashboard["uid"]] = name
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):  # a row has none
                if target.get("datasource", panel.get("datasource")) != {"type": "prometheus", "uid": "${datasource}"}:
                    problems.append(f"{name}: panel {panel['title']!r} does not use ${{datasource}}")
        if name == "functions.json":
            latency = [p for p in dashboard["panels"] if p["title"].startswith("Latency")]
            if not latency or not all(t.get("exemplar") is True for p in latency for t in p["targets"]):
                problems.append(f"{name}: the latency panel does not show exemplars")


def check_exemplar_links():
    compose = load("docker-compose.yml")["services"]
    if "--enable-feature=exemplar-storage" not in compose["prometheus"]["command"]:
        problems.append("compose: Prometheus runs without --enable-feature=exemplar-storage")
    sources = load("grafana", "provisioning", "datasources", "prometheus.yml")["datasources"]
    by_uid = {source["uid"]: source for source in sources}
    prometheus = by_uid.get("prometheus", {})
    links = prometheus.get("jsonData", {}).get("exemplarTraceIdDestinations", [])
    if not any(link.get("name") == "trace_id" and by_uid.get(link.get("datasourceUid"), {}).get("type") == "jaeger"
               for link in links):
        problems.append("grafana: exemplars' trace_id does not open a provisioned Jaeger datasource")
    jaeger = next((s for s in sources if s.get("type") == "jaeger"), {})
    if jaeger and jaeger.get("url", "").split("//")[-1].split(":")[0] not in compose:
        problems.append(f"grafana: the Jaeger datasource {jaeger.get('url')} is not a service of the stack")


check_compose()
check_alerts()
check_dashboards()
check_exemplar_links()
if problems:
    print("asset check failed:", *problems, sep="\n  ")
    sys.exit(1)
print("assets: compose references, alert metadata, runbooks, alert tests and dashboards: ok")
