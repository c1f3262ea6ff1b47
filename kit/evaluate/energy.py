"""Energy (and CO2) of a piece of work, with codecarbon 2.6.0 in offline mode, labelled honestly.

:func:`measure_energy` runs ``fn`` inside codecarbon's ``OfflineEmissionsTracker`` (no network; the
carbon intensity comes from codecarbon's bundled table for ``country_iso_code``; nothing is written
unless ``output_dir`` is given; codecarbon's logger is silenced). What codecarbon 2.6.0 does,
read from its source (``codecarbon/emissions_tracker.py`` ``BaseEmissionsTracker.__init__`` and
``codecarbon/external/hardware.py``), and how each figure is labelled here:

- **GPU**: when NVML answers (``pynvml.nvmlInit()``), the difference of each GPU's total-energy
  counter (``nvmlDeviceGetTotalEnergyConsumption``) over the run: ``measured (NVML)``.
- **CPU**: in this order, Intel Power Gadget, then RAPL when ``/sys/class/powercap/intel-rapl`` can be
  read (the difference of the package energy counters): ``measured (RAPL)``; then Apple powermetrics.
  Otherwise the *constant* model: power = ``CONSUMPTION_PERCENTAGE_CONSTANT`` (0.5) x the CPU's TDP
  from codecarbon's ``cpu_power.csv`` (``POWER_CONSTANT``, 85 W, when the model is not in the table),
  for the whole run, **whatever the load** (2.6.0 reads no utilisation): energy = that power x wall
  time: ``estimated (...)``, naming the TDP and where it came from.
- **RAM**: always a model, ``RAM.power_per_GB`` (3/8 W per GB) x the memory of this process and its
  children (``tracking_mode="process"``, the default here) or of the machine: ``estimated``.

So on a machine without RAPL or a GPU, an "energy" comparison between two runs is a comparison of
their wall times; :attr:`EnergyReading.cpu_seconds` (user + system CPU time of this process and of the
child processes it waited for, ``resource.getrusage``, over ``fn``) is shown beside it as the work done.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.errors import KitError

#: Where the carbon intensity comes from when the caller names no country (ISO 3166-1 alpha-3).
DEFAULT_COUNTRY = "FRA"


@dataclass(frozen=True)
class EnergyReading:
    """The energy of one piece of work and how it was obtained (``kind`` is measured or estimated)."""

    label: str  # what ran, e.g. "training: 8 epochs"
    seconds: float  # wall time
    cpu_seconds: float  # CPU time of this process and its waited-for children during the work
    kwh: float  # CPU + GPU + RAM, as codecarbon sums them
    cpu_kwh: float
    gpu_kwh: float
    ram_kwh: float
    emissions_kg: float  # CO2-eq, from the country's grid intensity in codecarbon's table
    country: str
    kind: str  # "measured" (RAPL/NVML/...) or "estimated" (a model) for the compute part
    method: str  # e.g. "measured (RAPL)"; "estimated (codecarbon 2.6.0 constant model: ...)"
    units: int | None = None  # how many predictions, epochs, ... the work was (for per-unit figures)
    result: Any = field(default=None, repr=False, compare=False)  # what fn returned

    @property
    def joules(self) -> float:
        return self.kwh * 3.6e6

    def per(self, count: int = 1000) -> float:
        """Joules per ``count`` units (e.g. per 1,000 requests); needs ``units``."""
        if not self.units:
            raise KitError(f"{self.label!r} was measured without a unit count",
                           fix="pass units=N to measure_energy (the number of requests or epochs the work was)")
        return self.joules / self.units * count

    def __str__(self) -> str:
        return (f"{self.label}: {self.joules:.3g} J in {self.seconds:.2f} s ({self.cpu_seconds:.2f} CPU-s), "
                f"{self.emissions_kg * 1e3:.3g} g CO2-eq ({self.country}) - {self.method}")


def _codecarbon():
    """Import codecarbon quietly (its pynvml import warns; its data loader prints ``ref:`` lines)."""
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*pynvml.*")
        import codecarbon
        from codecarbon.external import hardware
    return codecarbon, hardware


def describe(components: list, tracking_mode: str = "process") -> tuple[str, str]:
    """``(kind, method)`` for the hardware objects a codecarbon 2.6.0 tracker chose (``tracker._hardware``)."""
    _, hw = _codecarbon()
    measured, estimated = [], []
    for part in components:
        if isinstance(part, hw.GPU):
            measured.append("GPU: NVML energy counters")
        elif isinstance(part, hw.CPU):
            mode = getattr(part, "_mode", "")
            if mode == "constant":
                tdp = float(part._tdp)
                source = (f"generic {hw.POWER_CONSTANT} W TDP, CPU {part._model!r} not in codecarbon's table"
                          if part._is_generic_tdp else f"TDP {tdp:g} W of {part._model!r} from codecarbon's table")
                estimated.append(f"CPU: constant model, {hw.CONSUMPTION_PERCENTAGE_CONSTANT:g} x TDP = "
                                 f"{tdp * hw.CONSUMPTION_PERCENTAGE_CONSTANT:g} W ({source}) x wall time, "
                                 "whatever the load")
            else:
                name = {"intel_rapl": "RAPL", "intel_power_gadget": "Intel Power Gadget"}.get(mode, mode)
                measured.append(f"CPU: {name}")
        elif isinstance(part, hw.AppleSiliconChip):
            measured.append(f"{part.chip_part}: Apple powermetrics")
        elif isinstance(part, hw.RAM):
            scope = "this process's memory" if tracking_mode == "process" else "the machine's memory"
            estimated.append(f"RAM: {hw.RAM.power_per_GB:g} W/GB x {scope}")
    compute_measured = any(not text.startswith("RAM") for text in measured) and not any(
        text.startswith("CPU") for text in estimated)
    kind = "measured" if compute_measured else "estimated"
    order = ("GPU", "CPU", "RAM")
    measured.sort(key=lambda text: order.index(text[:3]) if text[:3] in order else len(order))
    estimated.sort(key=lambda text: order.index(text[:3]) if text[:3] in order else len(order))
    parts = []
    if measured:
        parts.append("measured (" + "; ".join(measured) + ")")
    if estimated:
        parts.append(f"estimated (codecarbon {_codecarbon()[0].__version__}: " + "; ".join(estimated) + ")")
    return kind, " + ".join(parts)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have exited (torchrun's workers)."""
    try:
        import resource
    except ImportError:  # Windows: this process only
        return time.process_time()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def known_countries() -> set[str]:
    """The ISO codes codecarbon's offline grid-intensity table knows."""
    _codecarbon()
    from codecarbon.input import DataSource

    with contextlib.redirect_stdout(io.StringIO()):
        return set(DataSource().get_global_energy_mix_data())


def measure_energy(fn: Callable[[], Any], label: str, *, country_iso_code: str = DEFAULT_COUNTRY,
                   units: int | None = None, tracking_mode: str = "process", output_dir: str | Path | None = None,
                   measure_power_secs: float = 5.0) -> EnergyReading:
    """Run ``fn()`` under codecarbon's offline tracker and return its :class:`EnergyReading` (``.result`` holds
    what ``fn`` returned). ``output_dir``: also write codecarbon's ``emissions.csv`` there."""
    if tracking_mode not in ("process", "machine"):
        raise KitError(f"tracking_mode must be 'process' or 'machine', got {tracking_mode!r}",
                       fix="'process' counts this process's memory; 'machine' all of it")
    countries = known_countries()
    if country_iso_code not in countries:
        raise KitError(f"codecarbon has no grid intensity for country {country_iso_code!r}",
                       fix=f"use a 3-letter ISO code from its table ({len(countries)} countries), e.g. "
                           + ", ".join(c for c in ("FRA", "DEU", "GBR", "USA", "IND", "CHN") if c in countries))
    codecarbon, _ = _codecarbon()
    options: dict[str, Any] = {"save_to_file": output_dir is not None, "log_level": "error"}
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        options["output_dir"] = str(output_dir)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        tracker = codecarbon.OfflineEmissionsTracker(
            project_name=label, country_iso_code=country_iso_code, tracking_mode=tracking_mode,
            measure_power_secs=measure_power_secs, **options)
        hardware = list(getattr(tracker, "_hardware", []))
        tracker.start()
    wall, cpu = time.perf_counter(), cpu_seconds()
    try:
        result = fn()
    finally:
        cpu = cpu_seconds() - cpu
        wall = time.perf_counter() - wall
        with contextlib.redirect_stdout(io.StringIO()):
            tracker.stop()
    data = getattr(tracker, "final_emissions_data", None)
    if data is None or not hardware:
        raise KitError("codecarbon recorded no energy for this run (its tracker failed silently)",
                       fix="see why with `python -c 'import codecarbon; "
                           "codecarbon.OfflineEmissionsTracker(log_level=\"debug\")'`")
    kind, method = describe(hardware, tracking_mode)
    return EnergyReading(label=label, seconds=wall, cpu_seconds=cpu, kwh=float(data.energy_consumed),
                         cpu_kwh=float(data.cpu_energy), gpu_kwh=float(data.gpu_energy or 0.0),
                         ram_kwh=float(data.ram_energy), emissions_kg=float(data.emissions), country=country_iso_code,
                         kind=kind, method=method, units=units, result=result)
