"""The knowledge base as the widget uses it: search while the visitor types, read an article.

Public routes like the widget's own: no cookie and no token, an origin check against the
client's allowed domains, CORS echo, explicit preflights; a suspended client's articles and
every draft are 404. Statements run outside a transaction: a read is one (that counts the
view); a search counts against the IP's rate limit, then parses the query for the client and
searches with it (see repositories/knowledge_base.py)."""

import json
import re

from flask import Blueprint, current_app, request

from .. import ratelimit
from ..articles import MAX_SLUG_LENGTH, SLUG_PATTERN, leading_text, search_query, snippet
from ..db import single_statement
from ..errors import not_found
from ..http_cache import PUBLIC_CACHE_CONTROL, cacheable_json
from ..origins import add_cors_headers, check_public_origin
from ..repositories.knowledge_base import ArticleRepository
from ..serialize import iso_utc
from ..validation import is_public_api_key, known_query, query_integer, query_value, text

bp = Blueprint("help_center", __name__, url_prefix="/api/public")
bp.after_request(add_cors_headers)

QUERY = text(0, 200)
DEFAULT_LIMIT, MAX_LIMIT = 5, 20
NO_AUTOMATIC_OPTIONS = {"provide_automatic_options": False}


def _known_key(public_api_key: str) -> None:
    if not is_public_api_key(public_api_key):
        raise not_found("widget")


@bp.get("/widgets/<public_api_key>/articles", **NO_AUTOMATIC_OPTIONS)
def search_articles(public_api_key):
    """Up to `limit` published articles, best match for `q` first (slug, title and a snippet
    with the matched words in <mark>); without `q`, the most viewed."""
    _known_key(public_api_key)
    known_query("q", "limit")
    # Trailing space is kept: it says the last word is finished (no prefix match).
    q = query_value("q", QUERY) or ""
    limit = query_integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    with single_statement() as conn:
        ratelimit.enforce(conn, f"article-search:ip:{request.remote_addr}",
                          current_app.config["ARTICLE_SEARCH_LIMIT_PER_IP"])
        articles = ArticleRepository(conn)
        if q.strip():
            client = articles.public_search_query(public_api_key, search_query(q))
            if client is None:
                raise not_found("widget")
            check_public_origin(client["allowed_domains"])
            rows = articles.public_search(client["id"], client["tsquery"], limit)
        else:
            found = articles.public_most_viewed(public_api_key, limit)
            if found is None:
                raise not_found("widget")
            allowed_domains, rows = found
            check_public_origin(allowed_domains)
    items = [{"slug": row["slug"], "title": row["title"],
              "snippet": snippet(row["snippet"]) if q.strip() else leading_text(row["body_text"])}
             for row in rows]
    return {"items": items, "next_cursor": None}, {"Cache-Control": PUBLIC_CACHE_CONTROL}


@bp.get("/widgets/<public_api_key>/articles/<slug>", **NO_AUTOMATIC_OPTIONS)
def read_article(public_api_key, slug):
    """A published article, its Markdown rendered as safe HTML; every read counts a view."""
    _known_key(public_api_key)
    if len(slug) > MAX_SLUG_LENGTH or not re.fullmatch(SLUG_PATTERN, slug):
        raise not_found("article")
    with single_statement() as conn:
        article = ArticleRepository(conn).public_read(public_api_key, slug)
    if article is None:
        raise not_found("article")
    check_public_origin(article["allowed_domains"])
    body = json.dumps({
        "slug": article["slug"],
        "title": article["title"],
        "body_html": article["body_html"],
        "locale": article["locale"],
        "updated_at": iso_utc(article["updated_at"]),
    }, separators=(",", ":"), ensure_ascii=False)
    return cacheable_json(body, public_api_key)


def _preflight(public_api_key):
    _known_key(public_api_key)
    with single_statement() as conn:
        allowed_domains = ArticleRepository(conn).allowed_domains_by_key(public_api_key)
    if allowed_domains is None:
        raise not_found("widget")
    check_public_origin(allowed_domains)
    return "", 204


@bp.route("/widgets/<public_api_key>/articles", methods=["OPTIONS"])
def preflight_search(public_api_key):
    return _preflight(public_api_key)


@bp.route("/widgets/<public_api_key>/articles/<slug>", methods=["OPTIONS"])
def preflight_article(public_api_key, slug):
    return _preflight(public_api_key)
