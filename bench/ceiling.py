"""The ceilings: a bare Flask app that answers every GET with constant JSON, and the same app
running the statement of the signed-in client page.

`make bench` serves it with the same gunicorn settings as ChatConnect and loads it with the
requests of the widget case, so the ratio of a case to this one is the share of the
framework-and-server maximum the real code reaches on the same machine in the same run.
`/page/<owner id>` runs the client page's statement on a pool like the app's and answers its
JSON: the most any page read from PostgreSQL on each request can reach (case (e))."""

import os

from flask import Flask, Response
from psycopg_pool import ConnectionPool

from chatconnect.pagination import DEFAULT_LIMIT
from chatconnect.repositories.clients import FIRST_PAGE_JSON_FOR_OWNER

WIDGET = {
    "widget_name": "Site 1 support",
    "primary_color": "#3b82f6",
    "position": "bottom-right",
    "welcome_message": "Hi! Questions about Site 1? We usually answer within a few minutes.",
}

app = Flask(__name__)
# Made in each worker (gunicorn imports the app after the fork); idle unless (e) runs.
pool = ConnectionPool(os.environ["DATABASE_URL"], min_size=4, max_size=20,
                      kwargs={"autocommit": True})


@app.get("/page/<owner_id>")
def client_page(owner_id):
    with pool.connection() as conn:
        items = conn.execute(FIRST_PAGE_JSON_FOR_OWNER,
                             {"owner_id": owner_id, "limit": DEFAULT_LIMIT}).fetchone()[0]
    return Response(items, mimetype="application/json")


@app.get("/", defaults={"path": ""})
@app.get("/<path:path>")
def constant(path):
    return WIDGET
