"""Stage 10's parts: promtool on the kit's alert rules, a real Prometheus, the text fallback, drift, manifests."""

from __future__ import annotations

import copy
import shutil
import threading
from http.server import HTTPServer

import numpy as np
import pytest
import yaml

from kit.machine.processes import free_port, port_is_free
from kit.observe import drift, prometheus, rules, textparse


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:  # a missing tool fails, naming the fix: these tests are part of `make test`
        pytest.fail(f"`{tool}` is not installed: {prometheus.INSTALL_FIX}")
    return path


def test_the_kits_rules_pass_their_promtool_tests():
    need("promtool")
    built = rules.rules_file(drift_threshold=rules.DRIFT_THRESHOLD)
    for tests in (rules.availability_tests(built), rules.latency_tests(built)):
        result = rules.promtool_test(built, tests)
        assert result.ok, result.output


@pytest.mark.parametrize("break_it", ["threshold", "bucket", "short window"])
def test_promtool_fails_on_a_broken_latency_rule(break_it):
    need("promtool")
    good = rules.rules_file()
    broken = copy.deepcopy(good)
    rules_ = [r for g in broken["groups"] for r in g["rules"]]
    if break_it == "threshold":  # 50x the budget: an hour with 20 % slow requests no longer pages
        alert = next(r for r in rules_ if r.get("alert") == "DigitsLatencyBurnRatePage")
        alert["expr"] = alert["expr"].replace("14.4", "50")
    elif break_it == "bucket":  # the 1 s bucket instead of 100 ms: the slow requests count as fast
        for rule in rules_:
            rule["expr"] = rule["expr"].replace('le="0.1"', 'le="1"')
    else:  # the short window only: 5 slow minutes page
        alert = next(r for r in rules_ if r.get("alert") == "DigitsLatencyBurnRatePage")
        alert["expr"] = "slo:digits_latency_bad:ratio_rate5m > (14.4 * 0.01)"
    result = rules.promtool_test(broken, rules.latency_tests(good))
    assert not result.ok, f"promtool passed a broken latency rule ({break_it}):\n{result.output}"


@pytest.mark.parametrize("break_it", ["threshold", "metric", "window", "syntax"])
def test_promtool_fails_on_a_broken_rule(break_it):
    need("promtool")
    good = rules.rules_file()
    broken = copy.deepcopy(good)
    alert = next(r for r in broken["groups"][0]["rules"] if r.get("alert") == "DigitsAvailabilityBurnRatePage")
    if break_it == "threshold":  # 50x the budget: the hour of 20 % errors no longer pages
        alert["expr"] = alert["expr"].replace("14.4", "50")
    elif break_it == "metric":  # a typo in the recorded metric: the alert can never fire
        alert["expr"] = alert["expr"].replace("ratio_rate1h", "ratio_rate_1h")
    elif break_it == "window":  # long window only: the 5-minute outage now pages
        alert["expr"] = "slo:digits_availability_bad:ratio_rate5m > (14.4 * 0.01)"
    else:
        alert["expr"] = "sum(rate(digits_requests_total[5m]) >"
    result = rules.promtool_test(broken, rules.availability_tests(good))
    assert not result.ok, f"promtool passed a broken rule ({break_it}):\n{result.output}"


def test_rules_shape_follow_the_workbook():
    built = rules.rules_file(rules.CLUSTER_WINDOWS, drift_threshold=0.2)
    alerts = {r["alert"]: r for g in built["groups"] for r in g["rules"] if "alert" in r}
    assert set(alerts) == {"DigitsAvailabilityBurnRatePage", "DigitsAvailabilityBurnRateTicket",
                           "DigitsLatencyBurnRatePage", "DigitsLatencyBurnRateTicket", "DigitsInputDrift"}
    page = alerts["DigitsLatencyBurnRatePage"]["expr"]
    assert "ratio_rate1h > (14.4 * 0.01) and" in page and "ratio_rate5m" in page
    local = rules.rules_file(rules.LOCAL_WINDOWS)
    assert "ratio_rate20s" in yaml.safe_dump(local)


class _Exporter:
    """A prometheus_client exporter on loopback with a known histogram (what Prometheus will scrape)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.exposition import MetricsHandler

        self.registry = CollectorRegistry()
        self.requests = Counter(rules.REQUESTS, "requests", ["code"], registry=self.registry)
        self.duration = Histogram(rules.DURATION, "latency", buckets=(0.01, 0.05, 0.1, 0.5), registry=self.registry)
        self.port = free_port()
        self.server = HTTPServer(("127.0.0.1", self.port), MetricsHandler.factory(self.registry))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def observe(self, n_fast: int, n_slow: int) -> None:
        for _ in range(n_fast):
            self.requests.labels("200").inc()
            self.duration.observe(0.02)
        for _ in range(n_slow):
            self.requests.labels("500").inc()
            self.duration.observe(0.3)


def test_a_real_prometheus_scrapes_queries_and_stops_clean():
    need("prometheus")
    exporter = _Exporter()
    server = prometheus.PrometheusServer({"test": [f"127.0.0.1:{exporter.port}"]}, interval_s=0.5)
    try:
        server.start()
        directory, port = server.directory, server.port
        assert server.wait_for_scrape() == {f"http://127.0.0.1:{exporter.port}/metrics": "up"}
        before = textparse.scrape(f"http://127.0.0.1:{exporter.port}/metrics")
        exporter.observe(90, 10)
        after = textparse.scrape(f"http://127.0.0.1:{exporter.port}/metrics")
        import time

        time.sleep(1.2)  # two scrapes after the burst
        p95 = server.value(f"histogram_quantile(0.95, sum by (le) ({rules.DURATION}_bucket))")
        assert p95 == pytest.approx(textparse.bucket_quantile(0.95, after.buckets(rules.DURATION)))
        assert 0.1 < p95 < 0.5  # 10 % of requests at 300 ms: the 95th percentile is in the (0.1, 0.5] bucket
        window = textparse.window(before, after)
        assert window["error_rate"] == pytest.approx(0.1)
        assert server.value(f'sum({rules.REQUESTS}{{code="500"}})') == 10
        with pytest.raises(prometheus.PrometheusError, match="refused"):
            server.query("sum(rate(")
    finally:
        server.stop()
        exporter.server.shutdown()
    assert port_is_free(port) and not directory.exists()


def test_prometheus_refuses_a_bad_rule_before_it_starts():
    need("promtool")
    bad = {"groups": [{"name": "x", "rules": [{"alert": "X", "expr": "sum(rate("}]}]}
    server = prometheus.PrometheusServer({"test": ["127.0.0.1:1"]}, rules=bad)
    with pytest.raises(prometheus.PrometheusError, match="promtool rejects"):
        server.start()
    server.stop()


def test_bucket_quantile_interpolates_like_prometheus():
    buckets = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, float("inf"): 100.0}
    assert textparse.bucket_quantile(0.5, buckets) == pytest.approx(0.1)
    assert textparse.bucket_quantile(0.7, buckets) == pytest.approx(0.15)
    assert textparse.bucket_quantile(0.95, buckets) == pytest.approx(0.3)
    assert np.isnan(textparse.bucket_quantile(0.5, {0.1: 0.0, float("inf"): 0.0}))


def test_scrape_config_and_ray_targets():
    config = prometheus.scrape_config({"kserve": ["127.0.0.1:9"]}, 1.0, ["rules.yml"])
    assert config["global"]["scrape_interval"] == "1s" and config["rule_files"] == ["rules.yml"]
    nodes = [{"NodeManagerAddress": "10.0.0.1", "MetricsExportPort": 8080, "Alive": True},
             {"NodeManagerAddress": "10.0.0.2", "MetricsExportPort": 8080, "Alive": False}]
    assert prometheus.ray_targets(nodes) == ["10.0.0.1:8080"]
    with pytest.raises(prometheus.PrometheusError):
        prometheus.scrape_config({"kserve": []})


def test_drift_score_separates_shifted_inputs_from_clean_ones():
    reference = drift.reference_rows()
    clean = reference[np.random.default_rng(1).choice(len(reference), 64, replace=False)]
    clean_score = drift.drift_score(reference, clean)
    for kind in drift.SHIFTS:
        assert drift.drift_score(reference, np.array(drift.shifted(clean, kind))) > rules.DRIFT_THRESHOLD > clean_score
    window = drift.DriftWindow(reference, size=32)
    assert window.score() == 0.0
    window.add(np.array(drift.shifted(clean, "invert")))
    assert len(window.rows) == 32 and window.score() > 0.5
    with pytest.raises(ValueError, match="unknown shift"):
        drift.shifted(clean, "rotate")


def test_monitoring_manifests_validate_strictly():
    from kit.k8s.builders import monitoring
    from kit.k8s.validation import validate

    docs = monitoring.monitoring("kit")
    assert [d["kind"] for d in docs] == ["ServiceMonitor", "PodMonitor", "PodMonitor", "PrometheusRule",
                                         "NetworkPolicy"]
    problems = validate.validate_documents(docs, "monitoring")
    assert not problems, problems
    broken = copy.deepcopy(docs)
    broken[1]["spec"]["podMetricsEndpoints"][0]["portName"] = "metrics"  # not a PodMonitor field
    assert validate.validate_documents(broken, "monitoring")


def test_doctor_names_prometheus_and_how_to_install_it():
    from kit.machine import doctor

    missing = doctor.check_prometheus(which=lambda tool: None if tool == "promtool" else f"/usr/bin/{tool}")
    assert missing.status == doctor.WARN and "promtool not found" in missing.detail
    assert "apt-get install prometheus" in missing.fix and "conda-forge" in missing.fix and "brew" in missing.fix
    assert doctor.check_prometheus(which=lambda tool: f"/usr/bin/{tool}").status == doctor.OK
