"""The demo pages of development mode: a shop page with the widget, and an agent page.

Registered only when CHATCONNECT_ENV=development; production serves no demo."""

from importlib import resources

from flask import Blueprint, Response
from markupsafe import escape

from .. import demo
from ..db import single_statement

bp = Blueprint("demo_pages", __name__, url_prefix="/demo")

# The pages run their own inline script and the widget from this server, and nothing else.
PAGE_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")

NOT_SEEDED = ("<!doctype html><meta charset=utf-8><title>ChatConnect demo</title>"
              "<p>No demo client yet: run <code>.venv/bin/chatconnect demo seed</code> "
              "(<code>make run</code> does it) and reload.</p>")


def _page(name: str) -> Response:
    with single_statement() as conn:
        client = demo.demo_client(conn)
    if client is None:
        return Response(NOT_SEEDED, mimetype="text/html",
                        headers={"Content-Security-Policy": PAGE_POLICY})
    html = resources.files("chatconnect").joinpath(f"demo_pages/{name}").read_text("utf-8")
    for placeholder, value in (("__PUBLIC_API_KEY__", client["public_api_key"]),
                               ("__CLIENT_ID__", client["id"]),
                               ("__USERNAME__", demo.USERNAME), ("__PASSWORD__", demo.PASSWORD)):
        html = html.replace(placeholder, str(escape(value)))
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": PAGE_POLICY})


@bp.get("/")
def shop_page():
    return _page("shop.html")


@bp.get("/agent")
def agent_page():
    return _page("agent.html")
