"""`make bench-contacts`: identify throughput and contact search latency at a million contacts.

One client holds every contact (the heaviest tenant: a search scans only its own contacts), a
third of them anonymous, the others verified with a name, an email and an external id. The app
is served by gunicorn with the shipped deploy/gunicorn.conf.py, and wrk loads two cases:

- identify: POST /api/public/widgets/{key}/identify, each request with a signature of its own
  (signatures are accepted once), for returning users (nine in ten) and new ones;
- search: GET /api/clients/{id}/contacts?q=… with a bearer token, rotating over common and rare
  fragments of names, emails and external ids.

Search is measured twice: with the pg_trgm index of the schema, then with it dropped (what
plain indexes give: the recent contacts through (client_id, last_seen_at), then a scan of the
client's contacts for rarer text), so the choice of index is a measurement. Figures go to bench/results/contacts-<time>.json."""

import argparse
import hashlib
import json
import os
import random
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run import (GUNICORN_CONFIG, BenchError, bench_database, cpu_seconds,  # noqa: E402
                 gunicorn, gunicorn_capacity, save_report, wrk)

from chatconnect import identity, migrate  # noqa: E402

OWNER = "bench-contacts-owner"
FIRST_NAMES = ["Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Greta", "Hugo", "Ines",
               "Jonas", "Karin", "Liam", "Maria", "Noah", "Olga", "Pablo", "Quinn", "Rosa",
               "Sven", "Tara", "Umar", "Vera", "Wen", "Yusuf", "Zoe"]
LAST_NAMES = ["Müller", "Smith", "García", "Rossi", "Novak", "Kowalski", "Jensen", "Dubois",
              "Silva", "Nakamura", "Okafor", "Schmidt", "Brown", "Lopez", "Meyer", "Costa",
              "Ivanova", "Hansen", "Moreau", "Fischer"]
MAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "web.de", "shop.example"]

SEED_CONTACTS = """
INSERT INTO contacts (client_id, external_id, verified, name, email, created_at, last_seen_at)
SELECT %(client_id)s,
       CASE WHEN n %% 3 = 0 THEN NULL ELSE 'user-' || n END,
       n %% 3 <> 0,
       (%(first)s::text[])[1 + n %% %(first_count)s] || ' '
           || (%(last)s::text[])[1 + (n / 7) %% %(last_count)s],
       CASE WHEN n %% 5 = 0 THEN NULL ELSE
           lower((%(first)s::text[])[1 + n %% %(first_count)s]) || '.' || n || '@'
           || (%(domains)s::text[])[1 + (n / 3) %% %(domain_count)s] END,
       now() - make_interval(secs => n * 30),
       now() - make_interval(secs => n * 10)
FROM generate_series(1, %(contacts)s) AS n"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per case")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each case")
    parser.add_argument("--connections", type=int, default=None,
                        help="wrk connections (default: four per gunicorn worker)")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="cc-bench-contacts-") as work, \
                bench_database(Path(work)) as (database_url, database_pid):
            report = run(args, Path(work), database_url, database_pid)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    print_report(report)
    save_report(report, f"contacts-{report['time']}")
    bad = any(case["bad_responses"] or sum(case["socket_errors"].values())
              for case in report["cases"])
    return 1 if bad else 0


def seed(database_url: str, contacts: int, secret_key: str) -> dict:
    """The owner, its client (with an identity secret) and its contacts; a bearer token."""
    started = time.monotonic()
    token = "cc_pat_" + secrets.token_urlsafe(32)
    secret = identity.new_identity_secret()
    with psycopg.connect(database_url) as conn:
        owner_id = conn.execute("INSERT INTO users (username, password) VALUES (%s, 'x') "
                                "RETURNING id", (OWNER,)).fetchone()[0]
        client_id, key = conn.execute(
            "INSERT INTO clients (user_id, name, public_api_key) VALUES (%s, 'Big shop', %s) "
            "RETURNING id, public_api_key", (owner_id, "pk_" + secrets.token_urlsafe(24))
        ).fetchone()
        conn.execute("INSERT INTO client_widgets (client_id) VALUES (%s)", (client_id,))
        conn.execute("UPDATE clients SET identity_secret_encrypted = %s WHERE id = %s",
                     (identity.SecretBox([secret_key]).seal(client_id, secret), client_id))
        conn.execute("INSERT INTO api_tokens (user_id, name, token_hash) VALUES (%s, 'bench', %s)",
                     (owner_id, hashlib.sha256(token.encode()).hexdigest()))
        # Faster without the search index; it is built once the rows are in.
        conn.execute("DROP INDEX contacts_search_idx")
        conn.execute(SEED_CONTACTS, {
            "client_id": client_id, "contacts": contacts, "first": FIRST_NAMES,
            "first_count": len(FIRST_NAMES), "last": LAST_NAMES, "last_count": len(LAST_NAMES),
            "domains": MAIL_DOMAINS, "domain_count": len(MAIL_DOMAINS)})
    migrate.upgrade(database_url)  # builds the index again, as in production
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE contacts")
    return {"client_id": client_id, "key": key, "secret": secret, "token": token,
            "seconds": time.monotonic() - started}


def identify_requests(path: Path, seeded: dict, contacts: int, count: int) -> None:
    """`count` identify requests, each with its own signature: returning users mostly."""
    now = int(time.time())
    returning = random.sample(range(1, contacts + 1), min(contacts, count))
    url = f"/api/public/widgets/{seeded['key']}/identify"
    with path.open("w") as out:
        for i in range(count):
            user = (f"user-{returning[i]}" if i % 10 and i < len(returning)
                    else f"new-{i}-{secrets.token_hex(4)}")
            body = {"user_id": user, "timestamp": now,
                    "signature": identity.sign(seeded["secret"], user, now)}
            if i % 10 == 0:
                body["name"] = "New Visitor"
            out.write(f"POST {url}\tContent-Type: application/json\t"
                      f"Body: {json.dumps(body)}\n")


SEARCHES = [
    # common: many matches, the first page comes from the newest contacts
    "anna", "smith", "gmail", "user-1", "müller", "shop.example", "ver",
    # rare: a few matches among a million
    "emma.4242", "user-777777", "farid.13", "@proton.me", "zoe.99", "olga nakamura", "yusuf.5",
    # none
    "nobody-by-this-name", "xqz",
]


def search_requests(path: Path, seeded: dict) -> None:
    url = f"/api/clients/{seeded['client_id']}/contacts"
    with path.open("w") as out:
        for term in SEARCHES:
            out.write(f"{url}?q={quote(term)}&limit=50\t"
                      f"Authorization: Bearer {seeded['token']}\n")


def measure(name, title, server, requests_file, database_pid, args, threads, connections,
            expected, once=False) -> dict:
    if args.warmup and not once:
        wrk(server, requests_file, threads, connections, args.warmup)
    cpu_before = cpu_seconds(server.process.pid) + cpu_seconds(database_pid)
    figures = wrk(server, requests_file, threads, connections, args.duration, once=once)
    cpu = cpu_seconds(server.process.pid) + cpu_seconds(database_pid) - cpu_before
    requests = figures["requests"]
    statuses = figures["statuses"]
    return {
        "name": name, "title": title,
        "requests_per_second": requests / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
        "bad_responses": requests - statuses.get(str(expected), 0),
        "statuses": statuses, "socket_errors": figures["socket_errors"],
        "cpu_us_per_request": 1e6 * cpu / requests if requests else None,
    }


def run(args, work: Path, database_url: str, database_pid) -> dict:
    timestamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    migrate.upgrade(database_url)
    secret_key = secrets.token_urlsafe(32)
    print(f"seeding {args.contacts:,} contacts", flush=True)
    seeded = seed(database_url, args.contacts, secret_key)
    print(f"seeded in {seeded['seconds']:.1f} s", flush=True)
    workers, _threads = gunicorn_capacity(GUNICORN_CONFIG)
    threads = max(1, workers)
    connections = args.connections or 4 * workers
    env = {**os.environ, "DATABASE_URL": database_url, "CHATCONNECT_ENV": "production",
           "SECRET_KEY": secret_key, "IDENTIFY_LIMIT_PER_IP": "100000000/60"}
    search_file = work / "search.txt"
    search_requests(search_file, seeded)
    identify_file = work / "identify.txt"
    cases = []
    with gunicorn(GUNICORN_CONFIG, "wsgi:app", env, work / "app.log", "/readyz") as server:
        # More signatures than the case can use, each sent once; made just before, so that
        # every one is inside its 300 s window.
        identify_requests(identify_file, seeded, args.contacts, 60_000)
        cases.append(measure("identify", "identify, one signature each (200)", server,
                             identify_file, database_pid, args, threads, connections, 200,
                             once=True))
        cases.append(measure("search", "contact search, pg_trgm index (200)", server,
                             search_file, database_pid, args, threads, connections, 200))
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP INDEX contacts_search_idx")
        cases.append(measure("search-plain", "contact search, plain indexes only (200)",
                             server, search_file, database_pid, args, threads, connections,
                             200))
    return {"time": timestamp, "contacts": args.contacts, "workers": workers,
            "wrk_threads": threads, "connections": connections, "duration": args.duration,
            "seed_seconds": seeded["seconds"], "cpus": os.cpu_count(), "cases": cases}


def print_report(report: dict) -> None:
    print(f"\n{report['contacts']:,} contacts in one client (seeded in "
          f"{report['seed_seconds']:.1f} s); gunicorn deploy/gunicorn.conf.py "
          f"({report['workers']} workers); wrk {report['wrk_threads']} thread(s), "
          f"{report['connections']} connections, {report['duration']} s per case; "
          f"{report['cpus']} CPUs\n")
    print("| case | req/s | p50 ms | p99 ms | bad responses | socket errors | "
          "server CPU µs/req |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in report["cases"]:
        cpu = case["cpu_us_per_request"]
        print(f"| {case['title']} | {case['requests_per_second']:,.0f} | {case['p50_ms']:.2f} | "
              f"{case['p99_ms']:.2f} | {case['bad_responses']} | "
              f"{sum(case['socket_errors'].values())} | "
              f"{'' if cpu is None else f'{cpu:,.0f}'} |")


if __name__ == "__main__":
    sys.exit(main())
