"""GET /metrics in one process (tests/test_deploy.py scrapes a multi-worker gunicorn)."""

from prometheus_client.parser import text_string_to_metric_families

from chatconnect import metrics


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def requests_of(samples, route, status, method="GET") -> float:
    labels = (("method", method), ("route", route), ("status", str(status)))
    return samples.get(("chatconnect_http_requests_total", labels), 0)


def test_metrics_are_off_by_default(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_requests_are_counted_by_route_template_and_status(app, make_app):
    client = make_app(METRICS_ENABLED="true").test_client()
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/api/public/widgets/pk_unknown").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    after = scrape(client)
    assert requests_of(after, "/healthz", 200) - requests_of(before, "/healthz", 200) == 3
    widget = "/api/public/widgets/<public_api_key>"
    assert requests_of(after, widget, 404) - requests_of(before, widget, 404) == 1
    assert requests_of(after, "unmatched", 404) - requests_of(before, "unmatched", 404) == 1
    count = ("chatconnect_http_request_duration_seconds_count",
             (("method", "GET"), ("route", "/healthz")))
    assert after[count] - before.get(count, 0) == 3


def test_gauges_and_the_cache_hit_ratio_are_exported(app, make_app):
    client = make_app(METRICS_ENABLED="1", DB_POOL_MAX_SIZE="3").test_client()
    samples = scrape(client)
    assert samples[("chatconnect_db_pool_connections", (("state", "max"),))] == 3
    assert ("chatconnect_db_pool_connections", (("state", "in_use"),)) in samples
    assert ("chatconnect_listener_connected", ()) in samples
    assert ("chatconnect_db_pool_waiting_requests", ()) in samples
    for kind in metrics.REALTIME_KINDS:
        assert ("chatconnect_realtime_open", (("kind", kind),)) in samples
    for cache in metrics.CACHES:
        assert 0 <= samples[("chatconnect_cache_hit_ratio", (("cache", cache),))] <= 1


def test_open_connections_are_counted_while_open(app, make_app):
    client = make_app(METRICS_ENABLED="true").test_client()
    gauge = ("chatconnect_realtime_open", (("kind", "long_poll"),))
    before = scrape(client)[gauge]
    with metrics.open_connection("long_poll"):
        with metrics.open_connection("long_poll"):
            assert scrape(client)[gauge] == before + 2
    assert scrape(client)[gauge] == before


def test_the_hit_ratio_is_hits_over_lookups(app, make_app):
    client = make_app(METRICS_ENABLED="true").test_client()
    ratio = ("chatconnect_cache_hit_ratio", (("cache", "widgets"),))

    def total(result):
        return scrape(client)[("chatconnect_cache_lookups_total",
                               (("cache", "widgets"), ("result", result)))]

    for result, times in (("hit", 3), ("miss", 1)):
        for _ in range(times):
            metrics.count_cache_lookup("widgets", result)
    hits, lookups = total("hit"), sum(total(r) for r in metrics.CACHE_RESULTS)
    assert scrape(client)[ratio] == hits / lookups
