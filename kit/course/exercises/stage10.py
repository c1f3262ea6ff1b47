"""Exercises of stage 10 (observe): a PromQL p95, a burn-rate alert that passes promtool's test, a drift threshold.

10.p95 is judged by reading the query, then by running it: against the notebook's live Prometheus
(:func:`kit.observe.lab.current`, after a short burst of the kit's load generator), else against a scratch
Prometheus scraping an exporter with known latencies. 10.burn_rate runs ``promtool test rules``.
10.drift_threshold scores the notebook's clean and shifted request bodies with :func:`kit.observe.drift.drift_score`.
"""

from __future__ import annotations

import re
from typing import Any

from kit.course.exercises import NotYetRight, exercise
from kit.observe import rules

REFERENCE_P95 = f"histogram_quantile(0.95, sum by (le) (rate({rules.DURATION}_bucket[30s])))"
PAGE_ALERT = "DigitsAvailabilityBurnRatePage"
#: The shift stage 10 injects, and how many clean request bodies (seeds) the threshold must stay quiet on.
DRIFT_SHIFT = "dim"
CLEAN_SEEDS = range(5)
ROWS = 64


def _p95_problems(query: str) -> None:
    """Reject by reading: each wrong shape has its own message."""
    text = re.sub(r"\s+", " ", query.strip())
    if re.search(r"\bavg(_over_time)?\s*\(", text) and "histogram_quantile" not in text:
        raise NotYetRight("avg() gives the mean latency, not a percentile: 5 % of requests can be far slower "
                          "than the mean")
    if "quantile_over_time" in text or re.search(r"\bquantile\s*\(", text):
        raise NotYetRight("quantile()/quantile_over_time() take quantiles of sample values (here: bucket counts), "
                          "not of the latencies the histogram recorded")
    found = re.search(r"histogram_quantile\s*\(\s*([0-9.]+)", text)
    if not found:
        raise NotYetRight("use histogram_quantile(φ, ...): it estimates a quantile from a histogram's buckets")
    phi = float(found.group(1))
    if phi == 95:
        raise NotYetRight("φ is a fraction: 0.95 for the 95th percentile, not 95")
    if phi != 0.95:
        raise NotYetRight(f"histogram_quantile({phi:g}, ...) is the p{phi * 100:g}, not the p95")
    if "request_predict_seconds" in text:
        raise NotYetRight("request_predict_seconds is KServe's predict step only; the latency SLO is about the "
                          f"whole request: {rules.DURATION}")
    if f"{rules.DURATION}_bucket" not in text:
        raise NotYetRight(f"histogram_quantile reads the buckets: {rules.DURATION}_bucket (with their le label)")
    if not re.search(rf"\b(rate|irate|increase)\s*\(\s*{rules.DURATION}_bucket\s*(\{{[^}}]*\}})?\s*\[", text):
        raise NotYetRight("the buckets count every request since the server started; take rate(...[30s]) of them "
                          "to get the latency of the last 30 seconds")
    if not re.search(r"\bsum\b", text):
        raise NotYetRight("aggregate the buckets across replicas and instances: sum by (le) (rate(...)); without "
                          "it you get one p95 per replica")
    if not re.search(r"\bby\s*\(\s*([a-z_]+\s*,\s*)*le\b", text):
        raise NotYetRight("sum(...) without `by (le)` drops the le label histogram_quantile needs")


def _window(query: str) -> str:
    found = re.search(r"\[(\d+[smh])\]", query)
    return found.group(1) if found else "30s"


def _run_p95(query: str) -> None:
    from kit.observe import lab

    live = lab.current()
    if live is not None and live.prometheus is not None:
        result = live.burst(2.0, label="10.p95 check")
        live.settle()
        yours = live.prometheus.value(query)
        reference = live.prometheus.value(REFERENCE_P95.replace("30s", _window(query)))
        client_p95 = result.p95
    else:
        from kit.observe.prometheus import binary

        if binary("prometheus") is None:
            print("   Read, not run: no `prometheus` here to run the query against (install it to have it run).")
            return
        yours, reference, client_p95 = _scratch_p95(query)
    if yours is None or yours != yours:  # no series, or NaN: no requests in the window
        raise NotYetRight("the query returned no value: is its window longer than the time since the last "
                          "requests? (use [30s]; scrapes are 1 s apart, so a window needs at least a few)")
    if reference and abs(yours - reference) > 0.2 * reference:
        raise NotYetRight(f"your query gives {yours * 1e3:.1f} ms, the p95 over the same window is "
                          f"{reference * 1e3:.1f} ms: check the metric, its labels and the quantile")
    if yours > 1.5 * client_p95:
        raise NotYetRight(f"{yours * 1e3:.1f} ms is slower than the load generator's own p95 ({client_p95 * 1e3:.1f} "
                          "ms), which includes the network: the query cannot be measuring the p95")
    print(f"   Prometheus (server side): p95 {yours * 1e3:.1f} ms; the load generator (client side, + HTTP, JSON "
          f"and queueing): p95 {client_p95 * 1e3:.1f} ms")


def _scratch_p95(query: str) -> tuple[float | None, float | None, float]:
    """A scratch Prometheus scraping an exporter where 90 % of requests take 20 ms and 10 % take 300 ms."""
    import threading
    from http.server import HTTPServer

    import numpy as np
    from prometheus_client import CollectorRegistry, Histogram
    from prometheus_client.exposition import MetricsHandler

    from kit.machine.processes import free_port
    from kit.observe.model import BUCKETS
    from kit.observe.prometheus import PrometheusServer

    registry = CollectorRegistry()
    histogram = Histogram(rules.DURATION, "latency", buckets=BUCKETS, registry=registry)
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), MetricsHandler.factory(registry))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    latencies = [0.02] * 90 + [0.3] * 10
    prometheus = PrometheusServer({"scratch": [f"127.0.0.1:{port}"]}, interval_s=0.5)
    try:
        prometheus.start()
        prometheus.wait_for_scrape()
        for seconds in latencies:
            histogram.observe(seconds)
        import time

        time.sleep(1.3)
        return (prometheus.value(query), prometheus.value(REFERENCE_P95.replace("30s", _window(query))),
                float(np.percentile(latencies, 95)))
    finally:
        prometheus.stop()
        server.shutdown()


@exercise(
    "10.p95",
    "Write the PromQL for the p95 latency of the digits service",
    f"histogram_quantile(0.95, sum by (le) (rate({rules.DURATION}_bucket[30s]))): rate() of the buckets over a "
    "window, summed across replicas keeping le, then the quantile.",
    reference=lambda: REFERENCE_P95,
)
def check_p95(query) -> None:
    if not isinstance(query, str):
        raise NotYetRight(f"expected the PromQL as a string, got {type(query).__name__}")
    _p95_problems(query)
    _run_p95(query)


def _reference_burn_rate() -> str:
    return rules.burn_rate_expr(rules.availability(), rules.CLUSTER_WINDOWS[0])


#: promtool test names (rules.availability_tests) -> what failing it means.
_BURN_HINTS = {
    "healthy": "it fires on healthy traffic (no errors at all): compare the error ratio with factor x budget, "
               "not with 0",
    "error burst": "it does not fire while 20 % of requests fail for an hour: that burns the budget 20x; "
                   "page at 14.4x the budget (14.4 * 0.01) on both windows",
    "5-minute": "it pages on a 5-minute outage, which spends a sliver of a 30-day budget: both windows must "
                "burn faster than 14.4x the budget (14.4 * 0.01), and both must hold (`and`, not `or`)",
}


@exercise(
    "10.burn_rate",
    "Write the availability page alert: a multi-window burn rate that passes promtool's test",
    "both windows must burn faster than 14.4x the budget: slo:digits_availability_bad:ratio_rate1h > (14.4 * 0.01) "
    "and slo:digits_availability_bad:ratio_rate5m > (14.4 * 0.01)",
    reference=_reference_burn_rate,
)
def check_burn_rate(expr) -> None:
    if not isinstance(expr, str) or not expr.strip():
        raise NotYetRight("expected the alert's expression (PromQL) as a string")
    windows = set(re.findall(r"(?:ratio_rate|\[)(\d+[smh])", expr))
    if len(windows) < 2:
        raise NotYetRight(f"one window ({', '.join(sorted(windows)) or 'none'}): a long window alone keeps paging "
                          "long after the fix, a short one alone pages on every blip; combine 1h and 5m with `and`")
    built = rules.rules_file(rules.CLUSTER_WINDOWS)
    for group in built["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == PAGE_ALERT:
                rule["expr"] = expr
    result = rules.promtool_test(built, rules.availability_tests(rules.rules_file(rules.CLUSTER_WINDOWS)))
    if result.ok:
        return
    failed = result.output
    if "could not" in failed or "parse error" in failed or "bad_data" in failed:
        raise NotYetRight(f"promtool cannot load it: {failed.splitlines()[-1][:200]}")
    for name, message in _BURN_HINTS.items():
        if re.search(rf"name:[^\n]*{re.escape(name)}", failed, re.IGNORECASE):
            raise NotYetRight(message)
    raise NotYetRight(f"promtool test rules failed:\n{failed[-600:]}")


def drift_scores() -> tuple[list[float], float]:
    """The drift score of clean request bodies (one per seed) and of the shifted body stage 10 sends."""
    import numpy as np

    from kit.observe import drift
    from kit.serve.predictor import sample_instances

    reference = drift.reference_rows()
    clean = [drift.drift_score(reference, np.array(sample_instances(ROWS, seed=s))) for s in CLEAN_SEEDS]
    shifted = drift.drift_score(reference, np.array(drift.shifted(sample_instances(ROWS, seed=0), DRIFT_SHIFT)))
    return clean, shifted


def _reference_threshold() -> float:
    clean, shifted = drift_scores()
    return round((max(clean) + shifted) / 2, 2)


@exercise(
    "10.drift_threshold",
    "Pick a drift threshold that catches the shift without firing on clean traffic",
    "above the highest score clean traffic reaches, below the score of the shifted inputs (both printed above); "
    "the middle leaves room on both sides",
    reference=_reference_threshold,
)
def check_drift_threshold(threshold: Any) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise NotYetRight(f"expected a number, got {type(threshold).__name__}")
    if not 0 < threshold < 1:
        raise NotYetRight(f"{threshold}: the score is a mean KS statistic, between 0 (same distribution) and 1")
    clean, shifted = drift_scores()
    if threshold <= max(clean):
        raise NotYetRight(f"{threshold:g} fires on clean traffic: clean request bodies score up to {max(clean):.3f}")
    if threshold >= shifted:
        raise NotYetRight(f"{threshold:g} misses the shift: the dimmed inputs score {shifted:.3f}")
    margin = min(threshold - max(clean), shifted - threshold)
    if margin < 0.02:
        raise NotYetRight(f"{threshold:g} is within {margin:.3f} of a score the notebook measured: sampling noise "
                          "would make it flap; move it towards the middle")
