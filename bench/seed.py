"""Realistic data for the benchmark, written with a few set-based statements.

Owners share one password (hashed once with the product's scrypt settings). Each client has its
widget, its style (a third of them business hours too) and one to three allowed domains: `siteN.example.com`, then `*.siteN.example.net`, then
`localhost:PORT`; one client in a hundred is suspended."""

OWNER_PREFIX = "bench-owner-"

INSERT_OWNERS = """
INSERT INTO users (username, password, created_at)
SELECT %(prefix)s || lpad(o::text, 6, '0'), %(password_hash)s, now() - make_interval(days => o)
FROM generate_series(1, %(owners)s) AS o"""

# Clients and their widgets in one statement; created_at spreads the clients over time so that
# pages of GET /api/clients are ordered as in real life. The key suffix makes keys unique.
INSERT_CLIENTS_AND_WIDGETS = """
WITH owners AS (
    SELECT id, row_number() OVER (ORDER BY username) - 1 AS n
    FROM users WHERE username LIKE %(prefix)s || '%%'
), new_clients AS (
    INSERT INTO clients (user_id, name, public_api_key, allowed_domains, status, created_at)
    SELECT owners.id,
           'Site ' || c,
           'pk_' || replace(gen_random_uuid()::text, '-', '') || lpad(to_hex(c), 8, '0'),
           CASE c %% 3
               WHEN 0 THEN jsonb_build_array('site' || c || '.example.com')
               WHEN 1 THEN jsonb_build_array('site' || c || '.example.com',
                                             '*.site' || c || '.example.net')
               ELSE jsonb_build_array('site' || c || '.example.com',
                                      '*.site' || c || '.example.net',
                                      'localhost:' || (3000 + c %% 1000))
           END,
           CASE WHEN c %% 100 = 99 THEN 'suspended' ELSE 'active' END,
           now() - make_interval(secs => c)
    FROM generate_series(0, %(clients)s - 1) AS c
    JOIN owners ON owners.n = c %% %(owners)s
    RETURNING id, name, created_at
)
INSERT INTO client_widgets (client_id, primary_color, position, welcome_message, widget_name,
                            created_at, updated_at)
SELECT id,
       (ARRAY['#3b82f6', '#10b981', '#f59e0b', '#e11d48'])[1 + abs(hashtext(id)) %% 4],
       CASE WHEN hashtext(id) %% 2 = 0 THEN 'bottom-right' ELSE 'bottom-left' END,
       'Hi! Questions about ' || name || '? We usually answer within a few minutes.',
       name || ' support',
       created_at, created_at
FROM new_clients"""

# A random sample of keys that are served, with the last allowed domain of each.
SELECT_ACTIVE_KEYS = """
SELECT public_api_key, allowed_domains ->> (jsonb_array_length(allowed_domains) - 1) AS domain
FROM clients TABLESAMPLE BERNOULLI (%(percent)s)
WHERE status = 'active'
ORDER BY random()
LIMIT %(limit)s"""

SELECT_OWNER_NAMES = """
SELECT username FROM users WHERE username LIKE %(prefix)s || '%%' ORDER BY username LIMIT %(limit)s"""


# Every client has its style row, as when created through the API; one in three has business
# hours (weekdays nine to five in Berlin), so that the widget route computes them.
INSERT_STYLES_AND_HOURS = """
WITH bench_clients AS (
    SELECT c.id FROM clients c JOIN users u ON u.id = c.user_id
    WHERE u.username LIKE %(prefix)s || '%%'
), styles AS (
    INSERT INTO widget_styles (client_id) SELECT id FROM bench_clients
)
INSERT INTO business_hours (client_id, timezone, schedule, offline_message)
SELECT id, 'Europe/Berlin',
       '{"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]],
         "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]], "sat": [], "sun": []}',
       'We are away; leave a message.'
FROM bench_clients WHERE abs(hashtext(id)) %% 3 = 0"""


def seed(conn, clients: int, owners: int, password_hash: str) -> None:
    """Insert the owners, clients, widgets, styles and business hours inside the caller's
    transaction."""
    conn.execute(INSERT_OWNERS, {"prefix": OWNER_PREFIX, "owners": owners,
                                 "password_hash": password_hash})
    conn.execute(INSERT_CLIENTS_AND_WIDGETS, {"prefix": OWNER_PREFIX, "clients": clients,
                                              "owners": owners})
    conn.execute(INSERT_STYLES_AND_HOURS, {"prefix": OWNER_PREFIX})


def origin_for(domain: str) -> str:
    """An Origin header that the allowed-domain pattern `domain` accepts."""
    if domain.startswith("*."):
        return "https://www." + domain[2:]
    if domain.startswith("localhost:"):
        return "http://" + domain
    return "https://" + domain


def sample_keys(conn, clients: int, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` (public_api_key, origin) pairs of active clients, spread over the table."""
    percent = min(100.0, 100.0 * limit * 1.5 / clients)
    rows = conn.execute(SELECT_ACTIVE_KEYS, {"percent": percent, "limit": limit}).fetchall()
    return [(key, origin_for(domain)) for key, domain in rows]


def owner_names(conn, limit: int) -> list[str]:
    return [row[0] for row in conn.execute(SELECT_OWNER_NAMES,
                                           {"prefix": OWNER_PREFIX, "limit": limit})]
