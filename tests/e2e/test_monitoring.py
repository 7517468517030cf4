"""infra/monitoring/: the Grafana dashboard and the Prometheus alert rules, loaded and checked
against what the running app really exposes on /metrics, so renaming a metric or a label breaks
this test instead of silently blanking a panel or an alert."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import PROJECT_ROOT, WEBHOOK, body, envelope, new_id

MONITORING = PROJECT_ROOT / "infra" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "prometheus-alerts.yml"
# Labels Prometheus adds at scrape time, and the histogram's bucket label.
SCRAPE_LABELS = {"job", "instance"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                "unless", "offset", "inf", "nan"}  # fmt: skip
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("", "_sum", "_count", "_created")}  # fmt: skip


def exposed(api: httpx.Client) -> dict[str, set[str]]:
    """Every sample name the app's /metrics can carry, with the labels of each."""
    # One event first, so the labelled counters have a child (their labels then show).
    api.post(WEBHOOK, content=body(envelope("arrival", movement_id=new_id(), warehouse_id=new_id(),
                                            product_id=new_id(), quantity=1)))  # fmt: skip
    text = api.get("/metrics").text
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        labels = {label for sample in family.samples for label in sample.labels}
        for suffix in SUFFIXES.get(family.type, ("",)):
            names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def used_metrics(expr: str) -> dict[str, set[str]]:
    """The metric names a PromQL expression reads, with the label names it matches on each."""
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
    assert expr.count("[") == expr.count("]"), expr
    found: dict[str, set[str]] = {}
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables ($__rate_interval)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    for name, matchers in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}", text):
        found.setdefault(name, set()).update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        found.setdefault(name, set())
    return found


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def all_expressions() -> list[tuple[str, str]]:
    exprs = [(f"panel {p['title']}", t["expr"]) for p in dashboard()["panels"] for t in p["targets"]]
    return exprs + [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]


def test_dashboard_structure() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"} and grid["x"] + grid["w"] <= 24, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in ("lag", "dead letters", "5xx", "latency"):
        assert topic in titles, topic


def test_alert_rules_structure() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert [g["name"] for g in document["groups"]] == ["warehouse-stock"]
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    covered = " ".join(r["expr"] for r in rules)
    assert "warehouse_poller_lag" in covered  # lag
    assert "warehouse_poller_paused_partitions" in covered  # a partition paused on an undecodable batch
    assert "warehouse_poller_last_loop_timestamp_seconds" in covered  # a stalled poller loop
    assert 'outcome="rejected"' in covered  # dead-letter rate
    assert 'status=~"5.."' in covered  # 5xx rate
    assert "histogram_quantile(0.99" in covered  # p99


def test_metric_extraction_sees_names_and_labels() -> None:
    """The parser the next test relies on: functions, keywords and grouping labels are not metrics."""
    expr = 'histogram_quantile(0.99, sum by (le, route) (rate(x_bucket{job="a", route!="/m"}[5m]))) > 0.5'
    assert used_metrics(expr) == {"x_bucket": {"job", "route"}}
    assert used_metrics("max(y) > 0 and on (instance) sum(rate(z_total[$__rate_interval])) == 0") == {
        "y": set(),
        "z_total": set(),
    }


@pytest.mark.parametrize(("where", "expr"), all_expressions())
def test_every_metric_and_label_used_is_exposed_by_the_app(api: httpx.Client, where: str, expr: str) -> None:
    names = exposed(api)
    used = used_metrics(expr)
    assert used, f"{where}: no metric in {expr}"
    for metric, labels in used.items():
        assert metric in names, f"{where}: {metric} is not on /metrics (renamed?)"
        unknown = labels - names[metric] - SCRAPE_LABELS
        assert not unknown, f"{where}: {metric} has no label {sorted(unknown)}"
