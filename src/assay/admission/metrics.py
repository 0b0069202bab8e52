"""Prometheus metrics of one webhook app, on its own registry (so several apps can coexist)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 8.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "assay_admission_requests",
            "AdmissionReview requests by webhook path and outcome",
            ["path", "allowed"],
            registry=r,
        )
        self.decisions = Counter(
            "assay_admission_image_decisions",
            "Image decisions by result and status",
            ["result", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "assay_admission_request_seconds",
            "Time to answer an AdmissionReview",
            ["path"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.decide_latency = Histogram(
            "assay_admission_decide_seconds",
            "Time the policy engine took for the uncached images of one request",
            buckets=_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "assay_admission_cache_hits", "Image decisions served from the cache", registry=r
        )
        self.cache_misses = Counter(
            "assay_admission_cache_misses", "Image decisions the engine had to make", registry=r
        )
        self.registry_errors = Counter(
            "assay_admission_registry_errors",
            "Images whose decision or tag resolution failed on a registry error or deadline",
            registry=r,
        )
        self.ready = Gauge("assay_admission_ready", "1 once policies are loaded", registry=r)
