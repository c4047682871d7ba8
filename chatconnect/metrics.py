"""Prometheus metrics, served at `GET /metrics` when METRICS_ENABLED is true.

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (set up by
deploy/gunicorn.conf.py before any worker starts, which is what puts prometheus_client in its
multiprocess mode) and a scrape, answered by any one worker, adds up the files of all of them.
Without that variable (tests, `flask run`) the values are this process's own.

What the rest of the app uses:
- `open_connection(kind)`: a context manager around a request that holds its client waiting
  (a long-poll, an event stream); the gauge `chatconnect_realtime_open{kind}` counts them;
- `count_cache_lookup(cache, result)`: hit, miss or bypass of a per-process cache."""

import os
import threading
import time
from contextlib import contextmanager

from flask import Blueprint, Response, current_app, request
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
                               multiprocess)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .errors import not_found

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
SAMPLE_SECONDS = 5  # how old the pool and listener gauges of a worker may be
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                   30)
STARTED_KEY = "chatconnect.metrics_started"
REALTIME_KINDS = ("long_poll", "event_stream")
CACHES = ("widgets", "sessions")
CACHE_RESULTS = ("hit", "miss", "bypass")

# Values of this process; a scrape in multiprocess mode reads every worker's files instead.
REGISTRY = CollectorRegistry()

REQUESTS = Counter("chatconnect_http_requests", "HTTP requests answered",
                   ["route", "method", "status"], registry=REGISTRY)
LATENCY = Histogram("chatconnect_http_request_duration_seconds",
                    "Time from the request's arrival to its answer (long-polls included)",
                    ["route", "method"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
REALTIME_OPEN = Gauge("chatconnect_realtime_open", "Event streams and long-polls open now",
                      ["kind"], multiprocess_mode="livesum", registry=REGISTRY)
POOL_CONNECTIONS = Gauge("chatconnect_db_pool_connections",
                         "PostgreSQL connections of the workers' pools",
                         ["state"], multiprocess_mode="livesum", registry=REGISTRY)
POOL_WAITING = Gauge("chatconnect_db_pool_waiting_requests",
                     "Requests waiting for a pooled connection",
                     multiprocess_mode="livesum", registry=REGISTRY)
LISTENERS_CONNECTED = Gauge("chatconnect_listener_connected",
                            "Workers whose LISTEN connection to PostgreSQL is up",
                            multiprocess_mode="livesum", registry=REGISTRY)
WORKERS = Gauge("chatconnect_worker_processes", "Worker processes serving",
                multiprocess_mode="livesum", registry=REGISTRY)
CACHE_LOOKUPS = Counter("chatconnect_cache_lookups",
                        "Lookups in the per-process caches: hit, miss, or bypass (the "
                        "worker's listener was not connected, so the database was asked)",
                        ["cache", "result"], registry=REGISTRY)

bp = Blueprint("metrics", __name__)
_children: dict = {}  # labelled series, looked up once: .labels() is dearer than a dict
_enabled = False  # whether any app of this process has METRICS_ENABLED


def _child(metric, *labels):
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


@contextmanager
def open_connection(kind: str):
    """Count a request that keeps its client waiting, for as long as it does."""
    gauge = _child(REALTIME_OPEN, kind)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def count_cache_lookup(cache: str, result: str) -> None:
    if _enabled:  # on the hottest path: nothing to write when nobody reads it
        _child(CACHE_LOOKUPS, cache, result).inc()


class CacheHitRatio:
    """The hits of each cache as a share of its lookups since start, over every worker."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        lookups: dict[str, dict[str, float]] = {}
        for family in self.source.collect():
            yield family
            if family.name == "chatconnect_cache_lookups":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        cache = lookups.setdefault(sample.labels["cache"], {})
                        result = sample.labels["result"]
                        cache[result] = cache.get(result, 0) + sample.value
        ratio = GaugeMetricFamily("chatconnect_cache_hit_ratio",
                                  "Hits as a share of the lookups of each cache since start",
                                  labels=["cache"])
        for cache, results in sorted(lookups.items()):
            total = sum(results.values())
            ratio.add_metric([cache], results.get("hit", 0) / total if total else 0)
        yield ratio


def _scrape_registry():
    if not MULTIPROCESS:
        registry = CollectorRegistry()
        registry.register(CacheHitRatio(REGISTRY))
        return registry
    source = CollectorRegistry()
    multiprocess.MultiProcessCollector(source)
    registry = CollectorRegistry()
    registry.register(CacheHitRatio(source))
    return registry


@bp.get("/metrics")
def scrape():
    if not current_app.config["METRICS_ENABLED"]:
        raise not_found()
    _sample(current_app)  # this worker's gauges as of now; the others' are a few seconds old
    return Response(generate_latest(_scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def _stamp_arrival(wsgi_app):
    def timed(environ, start_response):
        environ[STARTED_KEY] = time.perf_counter()
        return wsgi_app(environ, start_response)
    return timed


def _record(response):
    rule = request.url_rule
    route = rule.rule if rule is not None else "unmatched"
    method = request.method
    started = request.environ.get(STARTED_KEY)
    _child(REQUESTS, route, method, str(response.status_code)).inc()
    if started is not None:
        _child(LATENCY, route, method).observe(time.perf_counter() - started)
    return response


def _listener_connected(app) -> bool:
    hub = app.extensions.get("realtime_hub")
    return bool(hub is not None and getattr(hub, "connected", False))


def _sample(app) -> None:
    stats = app.extensions["db_pool"].get_stats()
    size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
    _child(POOL_CONNECTIONS, "in_use").set(size - available)
    _child(POOL_CONNECTIONS, "idle").set(available)
    _child(POOL_CONNECTIONS, "max").set(stats.get("pool_max", 0))
    POOL_WAITING.set(stats.get("requests_waiting", 0))
    LISTENERS_CONNECTED.set(1 if _listener_connected(app) else 0)


def _sample_forever(app) -> None:
    pool = app.extensions["db_pool"]
    while not pool.closed:
        _sample(app)
        time.sleep(SAMPLE_SECONDS)


def init_app(app) -> None:
    app.register_blueprint(bp)
    if not app.config["METRICS_ENABLED"]:
        return
    global _enabled
    _enabled = True
    app.wsgi_app = _stamp_arrival(app.wsgi_app)
    app.after_request(_record)
    WORKERS.set(1)
    for kind in REALTIME_KINDS:  # every series present from the start, at 0
        _child(REALTIME_OPEN, kind)
    for cache in CACHES:
        for result in CACHE_RESULTS:
            _child(CACHE_LOOKUPS, cache, result)
    # Started in the worker (create_app runs after the fork), so each worker reports its own.
    threading.Thread(target=_sample_forever, args=(app,), name="chatconnect-metrics",
                     daemon=True).start()
