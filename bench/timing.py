"""Timing one action call by call: requests per second, median and 99th percentile."""

from __future__ import annotations

import time
from collections.abc import Callable

WARMUP = 20


def measure(n: int, action: Callable[[], object]) -> tuple[float, float, float]:
    """(calls per second, p50 ms, p99 ms) over ``n`` calls after a short warm-up."""
    for _ in range(WARMUP):
        action()
    samples = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        action()
        samples.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    ordered = sorted(samples)
    return n / total, ordered[len(ordered) // 2] * 1e3, ordered[int(0.99 * len(ordered))] * 1e3
