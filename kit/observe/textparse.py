"""The same figures without a Prometheus server: read the exporter's text with prometheus_client's parser.

Where ``prometheus`` is not installed the notebook scrapes ``/metrics`` itself before and after a load
burst (:func:`scrape`) and computes what PromQL would (:func:`window`): throughput and error rate from the
counters' increase, and quantiles from the histogram buckets' increase with the linear interpolation
``histogram_quantile`` uses. No alerting, no history: that is what the server adds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import httpx

from kit.observe.rules import DURATION, REQUESTS


@dataclass(frozen=True)
class Scrape:
    at: float
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def total(self, name: str, **match: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``match``."""
        return sum(value for (sample, labels), value in self.samples.items()
                   if sample == name and all(dict(labels).get(k) == v for k, v in match.items()))

    def buckets(self, name: str) -> dict[float, float]:
        """``le`` -> cumulative count of histogram ``name`` (summed over its other labels)."""
        out: dict[float, float] = {}
        for (sample, labels), value in self.samples.items():
            if sample == f"{name}_bucket":
                le = float(dict(labels)["le"])
                out[le] = out.get(le, 0.0) + value
        return dict(sorted(out.items()))


def parse(text: str, at: float | None = None) -> Scrape:
    """Every sample of an exposition text, keyed by (name, sorted labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Scrape(time.time() if at is None else at, samples)


def scrape(metrics_url: str) -> Scrape:
    response = httpx.get(metrics_url, timeout=10)
    response.raise_for_status()
    return parse(response.text)


def bucket_quantile(q: float, buckets: dict[float, float]) -> float:
    """``histogram_quantile(q, ...)`` on cumulative ``buckets`` (``le`` -> count), as Prometheus computes it."""
    if not buckets or not 0 <= q <= 1:
        return math.nan
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # the quantile is in the +Inf bucket: Prometheus answers the last finite bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return bounds[-1]


def window(before: Scrape, after: Scrape) -> dict[str, float]:
    """Throughput (req/s), error rate (5xx share) and p50/p95/p99 (s) between two scrapes."""
    seconds = max(after.at - before.at, 1e-9)
    total = after.total(REQUESTS) - before.total(REQUESTS)
    errors = sum(after.total(REQUESTS, code=c) - before.total(REQUESTS, code=c)
                 for c in {dict(labels).get("code", "") for (name, labels) in after.samples if name == REQUESTS}
                 if c.startswith("5"))
    old, new = before.buckets(DURATION), after.buckets(DURATION)
    delta = {le: new[le] - old.get(le, 0.0) for le in new}
    return {"throughput_rps": total / seconds, "error_rate": errors / total if total else 0.0,
            **{f"p{int(q * 100)}_s": bucket_quantile(q, delta) for q in (0.5, 0.95, 0.99)}}
