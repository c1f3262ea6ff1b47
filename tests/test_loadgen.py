"""The load generator against the plain FastAPI baseline (which must also reject bad input)."""

from __future__ import annotations

import pytest
import serving_cases as cases

from kit.serve import loadgen, predictor
from kit.serve.process import baseline_server


@pytest.fixture(scope="module")
def baseline(model_dir):
    with baseline_server(model_dir) as server:
        yield server


def body() -> dict:
    return {"instances": predictor.sample_instances(1)}


def test_closed_loop_counts_every_request_and_reports_percentiles(baseline):
    result = loadgen.run_load(f"{baseline.url}/v1/models/digits:predict", body(), concurrency=4, requests=40)
    assert result.ok == 40 and result.errors == 0 and len(result.latencies) == 40
    assert 0 < result.p50 <= result.p95 <= result.p99
    assert result.throughput > 0 and "req/s" in str(result)
    assert set(result.summary()) >= {"throughput_rps", "p50_ms", "p95_ms", "p99_ms", "errors"}


def test_open_loop_keeps_its_rate(baseline):
    result = loadgen.run_load(f"{baseline.url}/v1/models/digits:predict", body(), mode="open", rate=50,
                              duration_s=1.0)
    assert 40 <= sum(result.statuses.values()) <= 55 and result.errors == 0


def test_errors_are_counted_by_status_and_transport(baseline):
    bad = loadgen.run_load(f"{baseline.url}/v1/models/nope:predict", body(), concurrency=2, requests=6)
    assert bad.statuses == {404: 6} and bad.ok == 0
    dead = loadgen.run_load("http://127.0.0.1:9/v1/models/digits:predict", body(), concurrency=1, requests=2,
                            timeout_s=2)
    assert dead.errors == 2 and all(isinstance(k, str) for k in dead.statuses)


def test_sweep_table_and_plot(baseline):
    import matplotlib

    matplotlib.use("Agg")
    results = loadgen.sweep(f"{baseline.url}/v1/models/digits:predict", body(), [1, 4], duration_s=0.5,
                            progress=False, label="baseline")
    assert [r.concurrency for r in results] == [1, 4]
    assert "baseline c=4" in loadgen.table(results)
    ax = loadgen.plot_latency_vs_concurrency({"baseline": results})
    assert len(ax.lines) == 2


def test_invalid_modes_are_refused():
    with pytest.raises(ValueError, match="rate"):
        loadgen.run_load("http://127.0.0.1:9/", {}, mode="open")
    with pytest.raises(ValueError, match="closed"):
        loadgen.run_load("http://127.0.0.1:9/", {}, mode="burst")


@pytest.mark.parametrize("case", cases.v1_cases(), ids=lambda c: c[0])
def test_baseline_rejects_bad_input_with_a_short_4xx(baseline, case):
    name, method, path, data, allowed = case
    cases.assert_short_client_error(cases.send(baseline.url, method, path, data), allowed, name)
    cases.assert_still_serving(baseline.url)


def test_progress_bars_are_off_when_recorded_or_tested(monkeypatch):
    from kit.serve import loadgen

    monkeypatch.setenv(loadgen.PROGRESS_ENV, "0")
    assert loadgen._progress_bar(True, 1.0, None, "load") is None
    monkeypatch.setenv(loadgen.PROGRESS_ENV, "1")
    bar = loadgen._progress_bar(True, 1.0, None, "load")
    assert bar is not None
    bar.close()
