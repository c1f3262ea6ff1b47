"""Stage 10 exercises reject wrong answers, each with its own message, and accept right ones: the p95 PromQL (read,
then run against a real Prometheus), the burn-rate alert (promtool test rules), the drift threshold."""

from __future__ import annotations

import shutil

import pytest

from kit.course import exercises
from kit.course.exercises import NotYetRight, stage10
from kit.observe import rules

B = f"{rules.DURATION}_bucket"
H, F = "slo:digits_availability_bad:ratio_rate1h", "slo:digits_availability_bad:ratio_rate5m"


def _wrong(id: str, answer, message: str) -> None:
    with pytest.raises(NotYetRight, match=message) as raised:
        exercises.check(id, answer)
    assert "Hint:" in str(raised.value)


@pytest.mark.parametrize(("query", "message"), [
    (f"avg(rate({rules.DURATION}_sum[30s]) / rate({rules.DURATION}_count[30s]))", "mean latency"),
    (f"quantile(0.95, rate({B}[30s]))", "quantiles of sample values"),
    (f"histogram_quantile(95, sum by (le) (rate({B}[30s])))", "a fraction"),
    (f"histogram_quantile(0.5, sum by (le) (rate({B}[30s])))", "p50, not the p95"),
    ("histogram_quantile(0.95, sum by (le) (rate(request_predict_seconds_bucket[30s])))", "predict step only"),
    (f"histogram_quantile(0.95, sum by (le) ({B}))", "take rate"),
    (f"histogram_quantile(0.95, rate({B}[30s]))", "one p95 per replica"),
    (f"histogram_quantile(0.95, sum(rate({B}[30s])))", "drops the le label"),
    (42, "as a string"),
])
def test_p95_rejects_wrong_queries(query, message):
    _wrong("10.p95", query, message)


def test_p95_runs_the_query_against_a_real_prometheus():
    if shutil.which("prometheus") is None:
        pytest.fail("`prometheus` is not installed: apt-get install prometheus (make test needs it)")
    assert exercises.check("10.p95", stage10.REFERENCE_P95) == stage10.REFERENCE_P95
    # reads right, runs wrong: the buckets of only the fast requests (le="0.05") are not the p95
    _wrong("10.p95", f'histogram_quantile(0.95, sum by (le) (rate({B}{{le="0.05"}}[30s])))', "no value|same window")


@pytest.mark.parametrize(("expr", "message"), [
    (f"{H} > (14.4 * 0.01)", "one window"),
    (f"{H} > (50 * 0.01) and {F} > (50 * 0.01)",
     "does not fire while 20 %"),
    (f"{H} > 0 and {F} > 0",
     "5-minute outage"),
    (f"{H} > (14.4 * 0.01) or {F} > (14.4 * 0.01)",
     "5-minute outage"),
    (f"{H} >= 0 and {F} >= 0",
     "fires on healthy traffic"),
    (f"{H} > (14.4 * 0.01) and {F} >",
     "cannot load"),
])
def test_burn_rate_rejects_wrong_alerts(expr, message):
    _wrong("10.burn_rate", expr, message)


def test_burn_rate_accepts_the_reference_and_raw_rates():
    assert exercises.check("10.burn_rate", stage10._reference_burn_rate())
    raw = rules.availability()
    expr = f"({raw.ratio('1h')}) > (14.4 * 0.01) and ({raw.ratio('5m')}) > (14.4 * 0.01)"
    assert exercises.check("10.burn_rate", expr) == expr


def test_drift_threshold():
    clean, shifted = stage10.drift_scores()
    assert max(clean) < shifted
    _wrong("10.drift_threshold", "0.2", "expected a number")
    _wrong("10.drift_threshold", 1.5, "between 0")
    _wrong("10.drift_threshold", round(max(clean) - 0.01, 3), "fires on clean traffic")
    _wrong("10.drift_threshold", round(shifted + 0.01, 3), "misses the shift")
    _wrong("10.drift_threshold", max(clean) + 0.01, "flap")
    reference = exercises.skip_ahead("10.drift_threshold")
    assert exercises.check("10.drift_threshold", reference) == reference
