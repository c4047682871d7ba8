"""`make bench-knowledge-base`: the widget's article search under load, at two corpus sizes.

Seeds 1,000 clients (bench/seed.py) and 100 published articles for each of the first 100
active ones: 10,000 articles. Loads the public search with one-, two- and three-word queries
and the article read, then adds the articles of the other 900 clients (100,000 in all) and
loads the same cases again, now over every client. A client's knowledge base is the same size
in both runs; what grows tenfold is the corpus the index holds. Articles are written from the
5,000 most frequent English words, drawn with their real frequencies (wordfreq), so that
common words are common. Queries are words of one of the client's articles, the last one cut
as if still being typed. EXPLAIN (ANALYZE, BUFFERS) of a two-word search is printed for each
size; the figures go to bench/results/knowledge-base-<time>.json.
"""

import argparse
import os
import random
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from argparse import Namespace
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

import seed
from chatconnect import migrate, passwords
from chatconnect.articles import MARK_START, search_query
from chatconnect.localdb import LocalCluster, LocalClusterError
from chatconnect.repositories.knowledge_base import (HEADLINE_OPTIONS, PUBLIC_SEARCH,
                                                     ArticleRepository)
from run import (GUNICORN_CONFIG, OWNER_PASSWORD, BenchError, Case, bench_database, gunicorn,
                 gunicorn_capacity, measure, save_report)

CLIENTS = 1000
ARTICLES_PER_CLIENT = 100
BASELINE_CLIENTS = 100
VOCABULARY = 5000
QUERIES_PER_CASE = 5000
P50_GROWTH_LIMIT = 1.5
# Content words for queries: not among the most frequent (the, to, and …), which no visitor
# searches for and the English configuration drops as stop words.
QUERY_WORD_MIN_RANK = 150

CASES = [
    Case("1", "search, 1 word", "search-1.txt", (200,), "app"),
    Case("2", "search, 2 words", "search-2.txt", (200,), "app"),
    Case("3", "search, 3 words", "search-3.txt", (200,), "app"),
    Case("r", "read an article", "read.txt", (200,), "app"),
]

COPY_ARTICLES = """
COPY knowledge_base (client_id, title, slug, body_markdown, body_html, body_text, status,
                     locale, views, created_at, updated_at) FROM STDIN"""
SELECT_ACTIVE_CLIENTS = """
SELECT id, public_api_key, allowed_domains ->> 0 AS domain FROM clients
WHERE status = 'active' ORDER BY created_at DESC, id LIMIT %(limit)s"""


def main() -> int:
    args = parse_args()
    if not shutil.which("wrk"):
        print("error: wrk is not installed. On Debian or Ubuntu: apt-get install wrk",
              file=sys.stderr)
        return 2
    workers, per_worker = gunicorn_capacity(GUNICORN_CONFIG)
    connections = args.connections or 4 * workers
    work_dir = Path(tempfile.mkdtemp(prefix="chatconnect-bench-kb-"))
    try:
        with database(work_dir, args.shared_buffers) as (database_url, database_pid):
            report = run(args, database_url, database_pid, work_dir, workers, per_worker,
                         connections)
    except (BenchError, LocalClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print_report(report)
    save_report(report, f"knowledge-base-{report['timestamp']}")
    return 1 if report["errors"] else 0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per case (default 10)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="seconds of unmeasured load before each case (default 2)")
    parser.add_argument("--connections", type=int,
                        help="wrk connections (default: 4 per gunicorn worker)")
    parser.add_argument("--shared-buffers", default="1GB",
                        help="shared_buffers of the throwaway cluster (default %(default)s; "
                             "BENCH_DATABASE_URL's server keeps its own)")
    parser.add_argument("--articles-per-client", type=int, default=ARTICLES_PER_CLIENT,
                        help="published articles of each client (default %(default)s)")
    args = parser.parse_args()
    if min(args.duration, args.articles_per_client) < 1 or args.warmup < 0:
        parser.error("--duration and --articles-per-client must be positive")
    return args


@contextmanager
def database(work_dir: Path, shared_buffers: str):
    """bench/run.py's database, except that a throwaway cluster gets `shared_buffers`: the
    default 128 MB holds 10,000 articles but not 100,000, and a server holding a large
    knowledge base would be given memory for it."""
    if os.environ.get("BENCH_DATABASE_URL"):
        with bench_database(work_dir) as database_and_pid:
            yield database_and_pid
        return
    cluster = LocalCluster(work_dir / "postgres", throwaway=True)
    try:
        print(f"starting a throwaway PostgreSQL (shared_buffers {shared_buffers})", flush=True)
        cluster.start()
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(
                sql.Literal(shared_buffers)))
            if conn.execute("SELECT 1 FROM pg_available_extensions "
                            "WHERE name = 'pg_stat_statements'").fetchone():
                conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        cluster.restart()
        url = cluster.create_database(f"chatconnect_bench_{secrets.token_hex(4)}")
        yield url, int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    finally:
        cluster.destroy()


def prewarm(database_url: str) -> None:
    """Load the table, its TOAST and its indexes into shared buffers, where pg_prewarm is
    available, so that every case starts from the same warm cache."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except psycopg.Error:
            return
        conn.execute("""
            SELECT pg_prewarm(oid) FROM pg_class
            WHERE oid IN ('knowledge_base'::regclass,
                          (SELECT reltoastrelid FROM pg_class WHERE oid = 'knowledge_base'::regclass))
               OR oid IN (SELECT indexrelid FROM pg_index
                          WHERE indrelid IN ('knowledge_base'::regclass, (SELECT reltoastrelid
                              FROM pg_class WHERE oid = 'knowledge_base'::regclass)))""")


STATEMENTS = """
SELECT calls, mean_exec_time, regexp_replace(query, '\\s+', ' ', 'g') AS query
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC LIMIT 6"""


def statement_times(database_url: str, reset: bool = False) -> list:
    """Where PostgreSQL spent its time during the cases (pg_stat_statements, where loaded)."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            if reset:
                conn.execute("SELECT pg_stat_statements_reset()")
                return []
            return [{**row, "query": row["query"][:90]} for row in conn.execute(STATEMENTS)]
        except psycopg.Error as error:
            print(f"no statement times: {error}", flush=True)
            return []


def run(args, database_url, database_pid, work_dir, workers, per_worker, connections) -> dict:
    timestamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    migrate.upgrade(database_url)
    writer = ArticleWriter(random.Random(13), args.articles_per_client)
    with psycopg.connect(database_url) as conn:
        seed.seed(conn, CLIENTS + CLIENTS // 99 + 1, CLIENTS // 100,
                  passwords.hash_password(OWNER_PASSWORD))
        clients = conn.execute(SELECT_ACTIVE_CLIENTS, {"limit": CLIENTS}).fetchall()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CHATCONNECT_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        # Visitors come from many addresses (X-Forwarded-For below), each far from its limit.
        "TRUSTED_PROXY_HOPS": "1",
        "ARTICLE_SEARCH_LIMIT_PER_IP": "1000000/60",
    }
    runs = []
    for size_clients in (BASELINE_CLIENTS, CLIENTS):
        seeded = seed_articles(database_url, writer, clients[:size_clients])
        articles = size_clients * args.articles_per_client
        print(f"{articles:,} articles over {size_clients:,} clients "
              f"(seeded {seeded['articles']:,} in {seeded['seconds']:.1f} s)", flush=True)
        write_requests(work_dir, writer, clients[:size_clients])
        prewarm(database_url)
        plan = explain(database_url, writer, clients[:size_clients])
        with gunicorn(GUNICORN_CONFIG, "wsgi:app", env, work_dir / "app.log",
                      "/readyz") as server:
            statement_times(database_url, reset=True)
            results = [measure(case, server, database_pid, work_dir, measure_args(args),
                               1, connections, timestamp, 1) for case in CASES]
        runs.append({"articles": articles, "clients": size_clients,
                     "seed_seconds": round(seeded["seconds"], 1), "cases": results,
                     "explain": plan, "statements": statement_times(database_url)})
    return build_report(args, timestamp, workers, per_worker, connections, runs)


def measure_args(args) -> Namespace:
    return Namespace(duration=args.duration, warmup=args.warmup, profile=None)


class ArticleWriter:
    """Articles and queries from English words drawn with their real frequencies."""

    def __init__(self, rng: random.Random, per_client: int):
        import wordfreq
        self.rng = rng
        self.per_client = per_client
        self.words = wordfreq.top_n_list("en", VOCABULARY)
        self.weights = [wordfreq.word_frequency(word, "en") for word in self.words]
        self.content_words = {word for word in self.words[QUERY_WORD_MIN_RANK:]
                              if re.fullmatch(r"[a-z]{3,}", word)}
        self.client_words: dict[str, list[list[str]]] = {}  # client id -> words of articles

    def sentence(self, low: int, high: int) -> list[str]:
        return self.rng.choices(self.words, self.weights, k=self.rng.randint(low, high))

    def articles(self, client_id: str):
        """Rows for COPY_ARTICLES: the client's published articles."""
        texts = self.client_words.setdefault(client_id, [])
        for number in range(self.per_client):
            title = self.sentence(3, 8)
            paragraphs = [self.sentence(15, 60) for _ in range(self.rng.randint(2, 6))]
            texts.append([w for w in title + sum(paragraphs, []) if w in self.content_words])
            body = [" ".join(paragraph) for paragraph in paragraphs]
            text = "\n\n".join(body)
            created = datetime(2026, 1, 1, tzinfo=UTC).timestamp() + number * 3600
            stamp = datetime.fromtimestamp(created, UTC)
            yield (client_id, " ".join(title).capitalize(), f"article-{number}", text,
                   "".join(f"<p>{p}</p>\n" for p in body), text, "published", "en", self.rng.randint(0, 1000), stamp,
                   stamp)

    def query(self, client_id: str, words: int, typing: bool = True) -> str:
        """`words` consecutive content words of one of the client's articles, the last one
        cut as if still being typed (three letters or more) unless `typing` is False."""
        candidates = []
        while len(candidates) < words:
            candidates = self.rng.choice(self.client_words[client_id])
        start = self.rng.randrange(max(1, len(candidates) - words))
        chosen = candidates[start:start + words]
        last = chosen[-1]
        if typing:
            chosen[-1] = last[:self.rng.randint(min(3, len(last)), len(last))]
        return " ".join(chosen)


def seed_articles(database_url: str, writer: ArticleWriter, clients) -> dict:
    """COPY the articles of the clients that have none yet, on two connections at once (the
    stored vectors are computed as rows arrive), then VACUUM ANALYZE and CHECKPOINT."""
    started = time.monotonic()
    pending = [row[0] for row in clients if row[0] not in writer.client_words]
    rows = [list(writer.articles(client_id)) for client_id in pending]
    errors = []

    def copy(part):
        try:
            with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
                with cursor.copy(COPY_ARTICLES) as copy_in:
                    for client_rows in part:
                        for row in client_rows:
                            copy_in.write_row(row)
        except psycopg.Error as error:
            errors.append(error)

    threads = [threading.Thread(target=copy, args=(rows[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"seeding articles failed: {errors[0]}")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE knowledge_base")
        # Written back now, so that the cases do not pay for it.
        conn.execute("CHECKPOINT")
    return {"articles": sum(map(len, rows)), "seconds": time.monotonic() - started}


def write_requests(work_dir: Path, writer: ArticleWriter, clients) -> None:
    rng = writer.rng
    for case in CASES:
        lines = []
        for number in range(QUERIES_PER_CASE):
            client_id, key, domain = rng.choice(clients)
            if case.name == "r":
                path = (f"/api/public/widgets/{key}/articles/"
                        f"article-{rng.randrange(writer.per_client)}")
            else:
                q = writer.query(client_id, int(case.name))
                path = f"/api/public/widgets/{key}/articles?limit=3&q={quote(q)}"
            # TEST-NET-2 addresses as the visitors' (a header value: nothing is sent there).
            lines.append(f"{path}\tOrigin: {seed.origin_for(domain)}"
                         f"\tX-Forwarded-For: 198.51.{number // 250}.{number % 250}")
        (work_dir / case.requests_file).write_text("\n".join(lines) + "\n")


def explain(database_url: str, writer: ArticleWriter, clients) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of the public search, once warm, for two words of an article:
    finished (a space typed after them), and with the last one still being typed."""
    client_id, key, _ = clients[len(clients) // 2]
    words = writer.query(client_id, 2, typing=False)
    plans = {}
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        articles = ArticleRepository(conn)
        head, last = words.rsplit(" ", 1)
        typed = f"{head} {last[:max(3, len(last) - 2)]}"
        for name, q in (("finished", words + " "), ("typing", typed)):
            parsed = articles.public_search_query(key, search_query(q))
            params = {"client_id": parsed["id"], "tsquery": parsed["tsquery"], "limit": 3,
                      "mark": MARK_START, "headline_options": HEADLINE_OPTIONS}
            conn.execute(PUBLIC_SEARCH, params).fetchall()
            lines = [row["QUERY PLAN"] for row in conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + PUBLIC_SEARCH, params)]
            plans[name] = {"q": q, "tsquery": parsed["tsquery"], "plan": lines,
                           "uses_gin_index": any("search_idx" in line for line in lines)}
    return plans


def build_report(args, timestamp, workers, per_worker, connections, runs) -> dict:
    errors = [f"{run['articles']:,} articles, ({r['case']}): {r['bad_responses']} bad "
              f"responses, socket errors {r['socket_errors']}"
              for run in runs for r in run["cases"]
              if r["bad_responses"] or any(r["socket_errors"].values())]
    small, large = runs
    targets = {}
    for before, after in zip(small["cases"], large["cases"]):
        growth = after["p50_ms"] / before["p50_ms"]
        targets[f"({after['case']}) p50 at {large['articles']:,} <= {P50_GROWTH_LIMIT} x "
                f"p50 at {small['articles']:,}"] = {"value": round(growth, 2),
                                                    "met": growth <= P50_GROWTH_LIMIT}
    for run in runs:
        used = run["explain"]["finished"]["uses_gin_index"]
        targets[f"GIN index used for finished words at {run['articles']:,}"] = {
            "value": used, "met": used}
    return {
        "timestamp": timestamp,
        "command": "bench/knowledge_base.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "gunicorn": {"config": "deploy/gunicorn.conf.py", "workers": workers,
                     "per_worker": per_worker},
        "wrk": {"threads": 1, "connections": connections, "duration_s": args.duration,
                "warmup_s": args.warmup},
        "shared_buffers": None if os.environ.get("BENCH_DATABASE_URL") else args.shared_buffers,
        "runs": runs,
        "targets": targets,
        "errors": errors,
    }


def print_report(report: dict) -> None:
    wrk_settings = report["wrk"]
    print(f"\ngunicorn {report['gunicorn']['config']} ({report['gunicorn']['workers']} "
          f"workers); wrk 1 thread, {wrk_settings['connections']} connections, "
          f"{wrk_settings['duration_s']} s per case; shared_buffers "
          f"{report['shared_buffers'] or 'of BENCH_DATABASE_URL'}; {report['machine']['cpus']} "
          "CPUs\n")
    print("| articles | case | req/s | p50 ms | p99 ms | bad responses | socket errors "
          "| server CPU µs/req |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for run in report["runs"]:
        for r in run["cases"]:
            cpu = r["cpu_us_per_request"]
            print(f"| {run['articles']:,} | ({r['case']}) {r['title']} | "
                  f"{r['requests_per_second']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                  f"{r['bad_responses']} | {sum(r['socket_errors'].values())} | "
                  f"{cpu['gunicorn'] + (cpu['postgresql'] or 0):,.0f} |")
    for run in report["runs"]:
        if run["statements"]:
            print(f"\nPostgreSQL's time per statement during the cases at {run['articles']:,} "
                  "articles (pg_stat_statements):\n")
            print("| calls | execution ms | statement |\n|---:|---:|---|")
            for row in run["statements"]:
                print(f"| {row['calls']:,} | {row['mean_exec_time']:.3f} | `{row['query']}…` |")
    for run in report["runs"]:
        for plan in run["explain"].values():
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) at {run['articles']:,} articles, "
                  f"q={plan['q']!r}, tsquery {plan['tsquery']}:")
            print("\n".join("    " + line for line in plan["plan"]))
    print()
    for name, target in report["targets"].items():
        print(f"target {name}: {target['value']} {'met' if target['met'] else 'NOT MET'}")
    for error in report["errors"]:
        print(f"error: {error}")


if __name__ == "__main__":
    sys.exit(main())
