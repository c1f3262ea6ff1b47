"""kit.evaluate.energy: every reading says measured or estimated and how, from codecarbon 2.6.0's own choice."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kit.errors import KitError
from kit.evaluate import energy

RAPL_FILE = Path("/sys/class/powercap/intel-rapl/intel-rapl:0/energy_uj")


def _busy(seconds: float = 0.3) -> str:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return "done"


def _nvml() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return True
    except Exception:  # no library, no driver or no GPU: codecarbon then tracks no GPU
        return False


def test_a_reading_on_this_machine_is_labelled_with_the_method_codecarbon_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reading = energy.measure_energy(_busy, "busy loop", units=1000)
    assert reading.result == "done" and reading.seconds >= 0.3 and reading.kwh > 0
    assert list(tmp_path.iterdir()) == []  # no emissions.csv unless asked
    rapl = RAPL_FILE.exists() and os.access(RAPL_FILE, os.R_OK)
    if rapl or _nvml():
        assert reading.kind == "measured" and reading.method.startswith("measured (")
        assert ("CPU: RAPL" in reading.method) == rapl
    else:  # this project's CI machine: an AMD EPYC VM without /sys/class/powercap, no GPU
        assert reading.kind == "estimated"
        assert reading.method.startswith("estimated (codecarbon 2.6.0: CPU: constant model, 0.5 x TDP = ")
        assert "whatever the load" in reading.method and "RAM: 0.375 W/GB x this process's memory" in reading.method
        # the constant model is power x wall time, nothing else: check the figure against it
        watts = float(reading.method.split("0.5 x TDP = ")[1].split(" W")[0])
        assert reading.cpu_kwh * 3.6e6 == pytest.approx(watts * reading.seconds, rel=0.1)
    assert reading.method in str(reading) and reading.per(1000) == pytest.approx(reading.joules)


def test_describe_names_rapl_nvml_and_the_constant_model():
    _, hw = energy._codecarbon()
    generic = hw.CPU.from_utils(".", "constant", "Some CPU", None)
    known = hw.CPU(output_dir=".", mode="constant", model="AMD EPYC 7B13", tdp=240)
    rapl = hw.CPU.__new__(hw.CPU)  # building a real one reads /sys/class/powercap: describe reads only the mode
    rapl._mode = "intel_rapl"
    gpu = hw.GPU.__new__(hw.GPU)  # likewise NVML
    ram = hw.RAM(tracking_mode="process")

    kind, method = energy.describe([ram, generic])
    assert kind == "estimated" and "0.5 x TDP = 42.5 W (generic 85 W TDP, CPU 'Some CPU' not in" in method
    kind, method = energy.describe([ram, known], tracking_mode="machine")
    assert kind == "estimated" and "120 W (TDP 240 W of 'AMD EPYC 7B13' from codecarbon's table)" in method
    assert "the machine's memory" in method
    kind, method = energy.describe([ram, rapl])
    assert kind == "measured" and method.startswith("measured (CPU: RAPL) + estimated (codecarbon 2.6.0: RAM:")
    kind, method = energy.describe([ram, gpu, rapl])
    assert kind == "measured" and method.startswith("measured (GPU: NVML energy counters; CPU: RAPL)")
    kind, method = energy.describe([ram, gpu, generic])  # a GPU measured, the CPU estimated: not "measured"
    assert kind == "estimated" and "GPU: NVML" in method and "constant model" in method


def test_wrong_inputs_are_refused_with_a_fix(tmp_path):
    with pytest.raises(KitError, match="no grid intensity for country 'XX'") as error:
        energy.measure_energy(_busy, "x", country_iso_code="XX")
    assert "FRA" in error.value.fix or "DEU" in error.value.fix
    with pytest.raises(KitError, match="tracking_mode"):
        energy.measure_energy(_busy, "x", tracking_mode="host")
    reading = energy.measure_energy(lambda: _busy(0.05), "no units", output_dir=tmp_path / "out")
    assert (tmp_path / "out" / "emissions.csv").is_file()  # written only when asked
    with pytest.raises(KitError, match="without a unit count"):
        reading.per(1000)


def test_the_energy_bench_rows_carry_accuracy_p95_energy_and_its_label(model_dir):
    """One inference row of ``python -m kit bench energy`` for real (the training rows run torchrun: the bench only)."""
    from kit.bench import energy as bench
    from kit.evaluate.model import held_out
    from kit.serve.speed import quantize_dynamic
    from kit.train.artifact import load_model

    network, metadata = load_model(model_dir)
    x, y = held_out(metadata)
    rows = [bench._infer_row(name, net, x, y, 16, 0.05, "FRA")
            for name, net in (("float32", network), ("int8 dynamic", quantize_dynamic(network)))]
    for row in rows:
        assert 0.5 < row["accuracy"] <= 1 and row["p95_ms"] > 0 and row["joules_per"] > 0
        assert row["predictions"] % 16 == 0 and row["energy"] in ("measured", "estimated")
        assert row["joules_per"] == pytest.approx(row["joules"] / row["predictions"] * 1000)
    report = {"machine": {"cpus": 2, "cpu_model": "test CPU", "gpus": []}, "country": "FRA", "rows": rows,
              "methods": sorted({row["method"] for row in rows}), "total_s": 1.0,
              "estimated": any(row["energy"] == "estimated" for row in rows)}
    table = bench.format_energy(report)
    assert "predict int8 dynamic, batch 16" in table and "int8 vs float32 at batch 16: energy per 1,000 x" in table
    assert f"energy method: {rows[0]['method']}" in table
    assert ("ratios of wall time" in table) == report["estimated"]
