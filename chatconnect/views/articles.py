"""The team side of the knowledge base: a client's help articles, written in Markdown."""

import math

from flask import Blueprint
from flask_login import current_user, login_required

from ..articles import (check_locale, check_slug, plain_text, render_markdown, search_query,
                        slug_from_title)
from ..db import transaction
from ..errors import ApiError, not_found
from ..pagination import issue_cursor, page, page_params, read_cursor
from ..repositories.knowledge_base import ArticleRepository, SlugTaken
from ..serialize import article_json
from ..validation import (known_query, nullable, one_of, parse_body, query_integer, query_value,
                          text)

bp = Blueprint("articles", __name__, url_prefix="/api/clients")

STATUS = one_of("draft", "published")
ARTICLE_CHECKS = {
    "title": text(1, 200),
    "slug": check_slug,
    "body_markdown": text(0, 60_000),
    "status": STATUS,
    "locale": check_locale,
    "category": nullable(text(1, 100)),
}
QUERY = text(0, 200)
SEARCH_LIST = "article-search"
DEFAULT_LIMIT, MAX_LIMIT = 50, 100


def _rendered(fields: dict) -> dict:
    """The fields with body_html and body_text derived from body_markdown, if it is given."""
    if "body_markdown" in fields:
        body_html = render_markdown(fields["body_markdown"])
        fields = {**fields, "body_html": body_html, "body_text": plain_text(body_html)}
    return fields


def _slug_taken():
    return ApiError(409, "conflict", "another article of this client has this slug")


@bp.get("/<id:client_id>/articles")
@login_required
def list_articles(client_id):
    known_query("q", "status", "limit", "cursor")
    status = query_value("status", STATUS)
    q = query_value("q", QUERY)
    if q is not None and q.strip():
        return _search_articles(client_id, q, status)
    limit, after = page_params("articles")
    with transaction() as conn:
        rows = ArticleRepository(conn).list_for_owner(current_user.id, client_id, limit + 1,
                                                      status=status, after=after)
    if rows is None:
        raise not_found("client")
    return page(rows, limit, article_json, "articles", "updated_at")


def _ranked_key(q: str):
    def parse(payload):
        cursor_q, configs, score, article_id = payload
        if cursor_q != q:
            raise ValueError("a cursor of another query")
        if not (isinstance(configs, list) and all(isinstance(c, str) for c in configs)
                and isinstance(score, float) and math.isfinite(score)
                and isinstance(article_id, str)):
            raise ValueError("not a ranked cursor")
        return configs, (score, article_id)
    return parse


def _search_articles(client_id, q: str, status):
    """Best match first; the cursor holds the query, the ranking and the last (score, id)."""
    limit = query_integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    configs, after = read_cursor(SEARCH_LIST, _ranked_key(q)) or (None, None)
    with transaction() as conn:
        found = ArticleRepository(conn).search_for_owner(
            current_user.id, client_id, search_query(q), limit + 1, status=status,
            configs=configs, after=after)
    if found is None:
        raise not_found("client")
    configs, rows = found
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = issue_cursor(SEARCH_LIST,
                                   [q, configs, rows[-1]["score"], str(rows[-1]["id"])])
    return {"items": [article_json(row) for row in rows], "next_cursor": next_cursor}


@bp.post("/<id:client_id>/articles")
@login_required
def create_article(client_id):
    fields = parse_body(ARTICLE_CHECKS, required=("title",))
    slug_given = "slug" in fields
    fields = _rendered({"slug": slug_from_title(fields["title"]), "body_markdown": "",
                        "status": "draft", "locale": "en", "category": None, **fields})
    with transaction() as conn:
        try:
            article = ArticleRepository(conn).create(current_user.id, client_id, fields,
                                                     slug_given)
        except SlugTaken:
            raise _slug_taken() from None
    if article is None:
        raise not_found("client")
    return article_json(article), 201


@bp.get("/<id:client_id>/articles/<id:article_id>")
@login_required
def get_article(client_id, article_id):
    with transaction() as conn:
        article = ArticleRepository(conn).get_for_owner(current_user.id, client_id, article_id)
    if article is None:
        raise not_found("article")
    return article_json(article)


@bp.patch("/<id:client_id>/articles/<id:article_id>")
@login_required
def update_article(client_id, article_id):
    changes = _rendered(parse_body(ARTICLE_CHECKS))
    with transaction() as conn:
        try:
            article = ArticleRepository(conn).update(current_user.id, client_id, article_id,
                                                     changes)
        except SlugTaken:
            raise _slug_taken() from None
    if article is None:
        raise not_found("article")
    return article_json(article)


@bp.delete("/<id:client_id>/articles/<id:article_id>")
@login_required
def delete_article(client_id, article_id):
    with transaction() as conn:
        deleted = ArticleRepository(conn).delete(current_user.id, client_id, article_id)
    if not deleted:
        raise not_found("article")
    return "", 204
