"""Prometheus metrics: counters for what happened here, and queue gauges read from the database at scrape time.

Queue depth comes from the database rather than process memory, so ``web`` and ``worker`` (or
any number of processes) report the same truth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.intake = Counter(
            "flp_intake_requests",
            "POS webhook requests by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.feeds = Counter(
            "flp_feed_events",
            "Payment-processor feed events by processor and outcome",
            ["processor", "outcome"],
            registry=self.registry,
        )
        self.steps = Counter(
            "flp_work_steps", "Background steps run, by kind and outcome", ["kind", "outcome"], registry=self.registry
        )
        self.http_latency = Histogram(
            "flp_http_request_seconds",
            "HTTP request latency by endpoint",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    def watch_queue(self, read_counts: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_QueueCollector(read_counts))


class _QueueCollector(Collector):
    def __init__(self, read_counts: Callable[[], dict[str, int]]):
        self._read_counts = read_counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("flp_work_items", "Work items in the durable queue, by status", labels=["status"])
        try:
            counts = self._read_counts()
        except Exception:
            log.warning("metrics: could not read the work queue")
            counts = {}
        for status in ("pending", "running", "done", "dead"):
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge
