"""The provisioned Grafana dashboards (monitoring/grafana/dashboards/*.json) as test data: every SQL
query and PromQL expression in them, found by walking the JSON (panels, rows, template
variables), and Grafana's interpolation of the few macros and variables they use.

Used by tests/test_dashboards.py (SQL against migrated databases) and
tests/test_metrics_endpoints.py (PromQL against a real Prometheus scraping the service)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DASHBOARDS = REPO / "monitoring" / "grafana" / "dashboards"

# Metrics the dashboards chart that have series only in states the metrics test does not create:
# open gaps, and TimescaleDB jobs (TSL edition; that test runs on the Apache engine).
# tests/test_db_jobs.py checks the jobs' metrics on the TSL engine.
SERIES_ONLY_SOMETIMES = frozenset({"tcpd_gaps_open", "tcpd_db_job_consecutive_failures"})


@dataclass(frozen=True, slots=True)
class DashboardQuery:
    """One query of a dashboard: `where` names the panel (or template variable) it feeds."""

    dashboard: str
    where: str
    panel_type: str
    language: str  # "sql" or "promql"
    text: str


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def _language(datasource: dict[str, Any]) -> str:
    kind = datasource["type"]
    languages = {"grafana-postgresql-datasource": "sql", "prometheus": "promql"}
    assert kind in languages, f"a data source of type {kind!r}: teach tests/dashboard_support.py its queries"
    return languages[kind]


def dashboard_files() -> list[Path]:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, f"no dashboards in {DASHBOARDS}"
    return files


def dashboard_queries() -> list[DashboardQuery]:
    """Every query of every dashboard: query variables first, then each panel target."""
    found: list[DashboardQuery] = []
    for file in dashboard_files():
        board = json.loads(file.read_text(encoding="utf-8"))
        for var in board.get("templating", {}).get("list", []):
            if var["type"] == "query":
                found.append(
                    DashboardQuery(file.name, f"variable {var['name']}", "variable",
                                   _language(var["datasource"]), var["query"])
                )  # fmt: skip
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                language = _language(target.get("datasource", panel["datasource"]))
                text = target["rawSql"] if language == "sql" else target["expr"]
                found.append(DashboardQuery(file.name, panel["title"], panel["type"], language, text))
    return found


def sql_literal(value: str) -> str:
    """Grafana's `:sqlstring` format: the value quoted, single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def interpolate_sql(text: str, variables: Mapping[str, str], time_from: datetime, time_to: datetime) -> str:
    """Grafana's PostgreSQL interpolation of what the dashboards use: `${name:sqlstring}` and
    `$__timeFilter(column)` (`column BETWEEN 'from' AND 'to'`, RFC 3339 in UTC). Anything
    else with a `$` fails, so a new macro needs its substitution here first."""
    text = re.sub(r"\$\{(\w+):sqlstring\}", lambda m: sql_literal(variables[m.group(1)]), text)
    text = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: f"{m.group(1)} BETWEEN '{_rfc3339(time_from)}' AND '{_rfc3339(time_to)}'",
        text,
    )
    assert "$" not in text, f"a Grafana macro or variable the test does not substitute: {text}"
    return text


def interpolate_promql(text: str, rate_interval: str) -> str:
    """Grafana's `$__rate_interval`; anything else with a `$` fails."""
    text = text.replace("$__rate_interval", rate_interval)
    assert "$" not in text, f"a Grafana macro or variable the test does not substitute: {text}"
    return text


def metric_names(expression: str) -> set[str]:
    """The tcpd_ series an expression reads."""
    return set(re.findall(r"\btcpd_\w+", expression))
