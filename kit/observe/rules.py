"""SLOs for the digits service and their multi-window burn-rate alerts, as a Prometheus rules file.

An SLO says what fraction of requests must be good over a long period (30 days); the *error budget*
is the rest. The *burn rate* is how fast the budget is spent: 1 spends it exactly in 30 days, 14.4
spends 2 % of it in an hour. Following the Google SRE workbook ("Alerting on SLOs", multiwindow,
multi-burn-rate), an alert fires when both a long window (the budget is really going) and a short one
(it is still going now) burn faster than the factor. Two SLOs here, both on the metrics
:mod:`kit.observe.model` exports:

* availability: ``digits_requests_total{code}``: a request is bad when its code is 5xx;
* latency: ``digits_request_duration_seconds``: a request is bad when it took longer than the threshold.

:data:`CLUSTER_WINDOWS` are the workbook's windows (for the cluster's PrometheusRule);
:data:`LOCAL_WINDOWS` are the same rules shrunk to seconds for the local demo. :func:`promtool_test` runs
``promtool test rules`` on a rules file and a test file, the way ``make test`` does.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kit.observe.prometheus import require

REQUESTS = "digits_requests_total"
DURATION = "digits_request_duration_seconds"
DRIFT = "digits_input_drift_score"
#: The drift alert's threshold on the cluster: between clean traffic and the shifts of
#: :func:`kit.observe.drift.shifted` (stage 10 measures both, and exercise 10.drift_threshold picks one).
DRIFT_THRESHOLD = 0.15


@dataclass(frozen=True)
class SLO:
    name: str
    objective: float  # fraction of good requests, e.g. 0.99
    bad_ratio: str  # PromQL for the fraction of bad requests over ``WINDOW`` (replaced by each window)
    description: str

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 6)

    def ratio(self, window: str) -> str:
        return self.bad_ratio.replace("WINDOW", window)

    def record(self, window: str) -> str:
        return f"slo:digits_{self.name}_bad:ratio_rate{window}"


def availability(objective: float = 0.99) -> SLO:
    return SLO("availability", objective,
               f'sum(rate({REQUESTS}{{code=~"5.."}}[WINDOW])) / sum(rate({REQUESTS}[WINDOW]))',
               f"{objective:.2%} of requests answer without a server error (5xx)")


def latency(objective: float = 0.99, threshold_s: float = 0.1) -> SLO:
    return SLO("latency", objective,
               f'1 - (sum(rate({DURATION}_bucket{{le="{threshold_s:g}"}}[WINDOW])) '
               f"/ sum(rate({DURATION}_count[WINDOW])))",
               f"{objective:.2%} of requests answer within {threshold_s * 1e3:g} ms")


def slos() -> list[SLO]:
    return [availability(), latency()]


@dataclass(frozen=True)
class BurnWindow:
    long: str
    short: str
    factor: float
    severity: str
    for_: str = "0s"


#: The SRE workbook's page and ticket windows (a 30-day SLO).
CLUSTER_WINDOWS = (BurnWindow("1h", "5m", 14.4, "page", "2m"), BurnWindow("6h", "30m", 6, "ticket", "15m"))
#: The page rule shrunk to seconds, so a fault injected in the notebook fires it within a few seconds.
LOCAL_WINDOWS = (BurnWindow("20s", "5s", 14.4, "page", "0s"),)


def alert_name(slo: SLO, window: BurnWindow) -> str:
    return f"Digits{slo.name.capitalize()}BurnRate{window.severity.capitalize()}"


def burn_rate_expr(slo: SLO, window: BurnWindow) -> str:
    limit = f"({window.factor:g} * {slo.budget:g})"
    return f"{slo.record(window.long)} > {limit} and {slo.record(window.short)} > {limit}"


def slo_group(slo: SLO, windows: tuple[BurnWindow, ...]) -> dict[str, Any]:
    """Recording rules for each window's bad ratio, then one alert per burn window."""
    spans = sorted({w for bw in windows for w in (bw.long, bw.short)})
    rules: list[dict[str, Any]] = [{"record": slo.record(w), "expr": slo.ratio(w)} for w in spans]
    for window in windows:
        rules.append({
            "alert": alert_name(slo, window),
            "expr": burn_rate_expr(slo, window),
            "for": window.for_,
            "labels": {"severity": window.severity, "slo": slo.name, "service": "digits"},
            "annotations": {
                "summary": f"digits {slo.name} error budget burning over {window.factor:g}x",
                "description": f"SLO: {slo.description}. Windows {window.long} and {window.short}.",
            },
        })
    return {"name": f"digits-slo-{slo.name}", "rules": rules}


def drift_group(threshold: float, for_: str = "2s") -> dict[str, Any]:
    return {"name": "digits-drift", "rules": [{
        "alert": "DigitsInputDrift", "expr": f"{DRIFT} > {threshold:g}", "for": for_,
        "labels": {"severity": "ticket", "service": "digits"},
        "annotations": {"summary": "live inputs no longer look like the training data",
                        "description": f"per-feature KS drift score above {threshold:g}"}}]}


def rules_file(windows: tuple[BurnWindow, ...] = CLUSTER_WINDOWS, drift_threshold: float | None = None) -> dict:
    """The rules file (``groups:``) for every SLO at ``windows``, plus the drift alert when a threshold is given."""
    groups = [slo_group(slo, windows) for slo in slos()]
    if drift_threshold is not None:
        groups.append(drift_group(drift_threshold, "2s" if windows == LOCAL_WINDOWS else "10m"))
    return {"groups": groups}


def expected_alert(rules: dict, name: str) -> dict:
    """``exp_labels``/``exp_annotations`` of alert ``name`` in ``rules`` (promtool compares both)."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                return {"exp_labels": dict(rule["labels"]), "exp_annotations": dict(rule["annotations"])}
    raise KeyError(name)


def availability_tests(rules: dict, alert: str = "DigitsAvailabilityBurnRatePage") -> dict:
    """A promtool test file for the availability page alert (cluster windows): no errors stays quiet; 20 %
    errors for an hour pages; a 5-minute outage alone spends too little of the budget to page."""
    expected = expected_alert(rules, alert)
    per_min_ok, per_min_bad = 600, 150

    def series(bad_per_min: int, minutes: int = 90) -> list[dict]:
        return [{"series": f'{REQUESTS}{{code="200"}}', "values": f"0+{per_min_ok}x{minutes}"},
                {"series": f'{REQUESTS}{{code="500"}}', "values": f"0+{bad_per_min}x{minutes}"}]

    return {"evaluation_interval": "1m", "tests": [
        {"name": "healthy: no errors stays quiet", "interval": "1m", "input_series": series(0),
         "alert_rule_test": [{"eval_time": "80m", "alertname": alert, "exp_alerts": []}]},
        {"name": "error burst: 20 % errors pages", "interval": "1m", "input_series": series(per_min_bad),
         "alert_rule_test": [{"eval_time": "70m", "alertname": alert, "exp_alerts": [expected]}]},
        {"name": "a 5-minute outage alone does not page", "interval": "1m", "input_series": [
            {"series": f'{REQUESTS}{{code="200"}}', "values": f"0+{per_min_ok}x84 {84 * per_min_ok}x5"},
            {"series": f'{REQUESTS}{{code="500"}}', "values": f"0x84 0+{per_min_ok}x5"}],
         "alert_rule_test": [{"eval_time": "89m", "alertname": alert, "exp_alerts": []}]},
    ]}


def latency_tests(rules: dict, alert: str = "DigitsLatencyBurnRatePage") -> dict:
    """A promtool test file for the latency page alert (cluster windows): every request within 100 ms stays quiet;
    20 % slower than that for an hour pages; 5 slow minutes alone do not."""
    expected = expected_alert(rules, alert)
    per_min, fast_share = 600, 480  # requests per minute; of them, how many answer within the threshold when slow
    bucket, count = f'{DURATION}_bucket{{le="0.1"}}', f"{DURATION}_count"

    def series(fast_per_min: int, minutes: int = 90) -> list[dict]:
        return [{"series": bucket, "values": f"0+{fast_per_min}x{minutes}"},
                {"series": count, "values": f"0+{per_min}x{minutes}"}]

    return {"evaluation_interval": "1m", "tests": [
        {"name": "fast: every request within 100 ms stays quiet", "interval": "1m", "input_series": series(per_min),
         "alert_rule_test": [{"eval_time": "80m", "alertname": alert, "exp_alerts": []}]},
        {"name": "slow replica: 20 % over 100 ms pages", "interval": "1m", "input_series": series(fast_share),
         "alert_rule_test": [{"eval_time": "70m", "alertname": alert, "exp_alerts": [expected]}]},
        {"name": "5 slow minutes alone do not page", "interval": "1m", "input_series": [
            {"series": bucket, "values": f"0+{per_min}x84 {84 * per_min}x5"},
            {"series": count, "values": f"0+{per_min}x89"}],
         "alert_rule_test": [{"eval_time": "89m", "alertname": alert, "exp_alerts": []}]},
    ]}


@dataclass(frozen=True)
class PromtoolResult:
    ok: bool
    output: str

    def __bool__(self) -> bool:
        return self.ok


def promtool_test(rules: dict, tests: dict, timeout_s: float = 60.0) -> PromtoolResult:
    """Run ``promtool test rules`` on ``tests`` (a test-file dict; its ``rule_files`` is set to ``rules``)."""
    promtool = require("promtool")
    with tempfile.TemporaryDirectory(prefix="kit-promtool-") as tmp:
        directory = Path(tmp)
        (directory / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
        (directory / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], **tests}, sort_keys=False))
        done = subprocess.run([promtool, "test", "rules", "tests.yml"], cwd=directory, capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    return PromtoolResult(done.returncode == 0, (done.stdout + done.stderr).strip())
