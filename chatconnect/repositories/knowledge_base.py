"""The knowledge_base table: a client's help articles, and their full-text search.

A search query is parsed in the text search configuration of every language the client writes
articles in, plus kb_simple (unstemmed), and the results are OR-ed: each article is then found
by its own language's stems, and by its plain words in a query of any other language (the
stored vector holds both, see schema.sql). The last word being typed also matches as a prefix.

Rank: an article whose title alone matches the query comes first, then ts_rank (title
weighted above body, normalised by length and into [0, 1)), then the id. Team-side queries
join `clients` and scope by owner in the SQL; public ones need the active client's key."""

from psycopg import errors, sql

from ..articles import MARK_END, MARK_START

ARTICLE_COLUMNS = """
    a.id, a.client_id, a.title, a.slug, a.body_markdown, a.body_html, a.status, a.locale,
    a.category, a.views, a.created_at, a.updated_at"""

# The configurations a query is parsed in: those of the client's articles, and kb_simple.
QUERY_CONFIGS = """
    ARRAY(SELECT DISTINCT kb_search_config(locale) FROM knowledge_base
          WHERE client_id = {client_id}) || 'kb_simple'::regconfig"""

# The tsquery of a SearchQuery: its words and typed prefix in any configuration, and none of
# its excluded terms in any.
SEARCH_TSQUERY = """
    SELECT CASE WHEN negative IS NULL THEN positive ELSE positive && !!negative END AS tsquery
    FROM (SELECT kb_tsquery_or(CASE
            WHEN %(prefix)s::text IS NULL THEN websearch_to_tsquery(config, %(words)s)
            WHEN %(prefix_or)s THEN websearch_to_tsquery(config, %(words)s)
                || (websearch_to_tsquery(config, %(prefix)s)
                    || to_tsquery('kb_simple', %(prefix_query)s))
            ELSE websearch_to_tsquery(config, %(words)s)
                && (websearch_to_tsquery(config, %(prefix)s)
                    || to_tsquery('kb_simple', %(prefix_query)s))
            END) AS positive,
            kb_tsquery_or(websearch_to_tsquery(config, %(excluded)s::text)) AS negative
          FROM unnest({configs}) AS config) parsed"""

SCORE = """(ts_filter(a.search_vector, ARRAY['a']::"char"[]) @@ %(tsquery)s::tsquery)::int::float8
    + ts_rank(a.search_vector, %(tsquery)s::tsquery, 1 | 32)::float8"""

# Snippets: ts_headline over the HTML-escaped text (so that nothing in it is taken for a tag
# and dropped, and the marks are the only markup), in the article's language; when that marks
# nothing (a prefix matches the unstemmed word only), unstemmed.
HEADLINE_OPTIONS = (f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, "
                    'MaxFragments=2, FragmentDelimiter=" … "')
SNIPPET = """
    CASE WHEN strpos(h.stemmed, %(mark)s) > 0 THEN h.stemmed
         ELSE ts_headline('kb_simple', h.escaped, %(tsquery)s::tsquery,
                          %(headline_options)s) END"""
HEADLINE = """
    CROSS JOIN LATERAL (SELECT replace(replace(replace(
        f.body_text, '&', '&amp;'), '<', '&lt;'), '>', '&gt;') AS escaped) e
    CROSS JOIN LATERAL (SELECT e.escaped, ts_headline(kb_search_config(f.locale), e.escaped,
        %(tsquery)s::tsquery, %(headline_options)s) AS stemmed) h"""

# Search is two statements: the first finds the client and parses the query into a tsquery,
# the second searches with that tsquery as a constant. So the planner sees the actual query and
# the client: a rare word is found through the GIN index (client_id and lexemes together), a
# prefix that matches much of the vocabulary through the client's rows instead (a prefix's
# entries are read in full from a GIN index, whatever the client).
PUBLIC_SEARCH_QUERY = f"""
SELECT c.id, c.allowed_domains, ({SEARCH_TSQUERY.format(configs=QUERY_CONFIGS.format(
    client_id="c.id"))})::text AS tsquery
FROM clients c
WHERE c.public_api_key = %(public_api_key)s AND c.status = 'active'"""

PUBLIC_SEARCH = f"""
SELECT f.slug, f.title, {SNIPPET} AS snippet
FROM (
    SELECT a.id, a.slug, a.title, a.locale, a.body_text, {SCORE} AS score
    FROM knowledge_base a
    WHERE a.client_id = %(client_id)s AND a.search_vector @@ %(tsquery)s::tsquery
      AND a.status = 'published'
    ORDER BY score DESC, a.id
    LIMIT %(limit)s
) f {HEADLINE}
ORDER BY f.score DESC, f.id"""

# Without a query: the most viewed published articles. views has no index on purpose (a view
# is counted on every read), so this sorts the client's published articles.
PUBLIC_MOST_VIEWED = """
SELECT c.allowed_domains, a.slug, a.title, a.body_text
FROM clients c
LEFT JOIN LATERAL (
    SELECT slug, title, body_text, views, id FROM knowledge_base
    WHERE client_id = c.id AND status = 'published'
    ORDER BY views DESC, id
    LIMIT %(limit)s
) a ON true
WHERE c.public_api_key = %(public_api_key)s AND c.status = 'active'
ORDER BY a.views DESC, a.id"""

# Reading an article counts the view in the same statement; a draft is not there.
PUBLIC_READ = """
UPDATE knowledge_base a SET views = a.views + 1
FROM clients c
WHERE c.public_api_key = %(public_api_key)s AND c.status = 'active' AND a.client_id = c.id
  AND a.slug = %(slug)s AND a.status = 'published'
RETURNING a.slug, a.title, a.body_html, a.locale, a.updated_at, c.allowed_domains"""

SELECT_ALLOWED_DOMAINS_BY_KEY = """
SELECT allowed_domains FROM clients
WHERE public_api_key = %(public_api_key)s AND status = 'active'"""

SELECT_FOR_OWNER = f"""
SELECT {ARTICLE_COLUMNS}
FROM knowledge_base a JOIN clients c ON c.id = a.client_id
WHERE a.id = %(id)s AND c.id = %(client_id)s AND c.user_id = %(owner_id)s"""

# Team list, most recently updated first: one row per article of the page, or one row with a
# NULL id when the owner's client has none; no row when the client is not the owner's.
LIST_FOR_OWNER = f"""
SELECT {ARTICLE_COLUMNS}
FROM clients c
LEFT JOIN LATERAL (
    SELECT {ARTICLE_COLUMNS} FROM knowledge_base a
    WHERE a.client_id = c.id {{filters}}
    ORDER BY a.updated_at DESC, a.id DESC
    LIMIT %(limit)s
) a ON true
WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s
ORDER BY a.updated_at DESC, a.id DESC"""

# Team search, best first, in two statements as above. The cursor keeps the configurations
# the first page was parsed in, so that every page ranks with the same tsquery.
OWNER_SEARCH_QUERY = f"""
SELECT c.id, configs::text[] AS configs, ({SEARCH_TSQUERY.format(configs="configs")})::text
       AS tsquery
FROM clients c
CROSS JOIN LATERAL (SELECT coalesce(%(configs)s::regconfig[], {QUERY_CONFIGS.format(
    client_id="c.id")}) AS configs) k
WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s"""

SEARCH_FOR_OWNER = f"""
SELECT {ARTICLE_COLUMNS}, s.score
FROM knowledge_base a CROSS JOIN LATERAL (SELECT {SCORE} AS score) s
WHERE a.client_id = %(client_id)s AND a.search_vector @@ %(tsquery)s::tsquery {{filters}}
ORDER BY s.score DESC, a.id
LIMIT %(limit)s"""

FILTER_STATUS = "AND a.status = %(status)s"
FILTER_UPDATED_BEFORE = ("AND (a.updated_at, a.id) < "
                         "(%(after_time)s::timestamptz, %(after_id)s::uuid)")
FILTER_RANKED_AFTER = ("AND (s.score < %(after_score)s "
                       "OR (s.score = %(after_score)s AND a.id > %(after_id)s::uuid))")

INSERT_FOR_OWNER = f"""
INSERT INTO knowledge_base AS a (client_id, title, slug, body_markdown, body_html, body_text,
                                 status, locale, category)
SELECT c.id, %(title)s, %(slug)s, %(body_markdown)s, %(body_html)s, %(body_text)s,
       %(status)s, %(locale)s, %(category)s
FROM clients c WHERE c.id = %(client_id)s AND c.user_id = %(owner_id)s
RETURNING {ARTICLE_COLUMNS}"""

# Slugs a derived slug may clash with: the slug itself and its numbered variants.
SELECT_TAKEN_SLUGS = """
SELECT slug FROM knowledge_base
WHERE client_id = %(client_id)s AND (slug = %(slug)s OR slug LIKE %(slug)s || '-%%')"""

# Only the given fields are set; updated_at moves only when a value actually changes.
UPDATE_FOR_OWNER = """
UPDATE knowledge_base a SET {assignments},
    updated_at = CASE WHEN ({new}) IS DISTINCT FROM ({old}) THEN now() ELSE a.updated_at END
FROM clients c
WHERE a.id = %(id)s AND a.client_id = c.id AND c.id = %(client_id)s AND c.user_id = %(owner_id)s
RETURNING {columns}"""

DELETE_FOR_OWNER = """
DELETE FROM knowledge_base a USING clients c
WHERE a.id = %(id)s AND a.client_id = c.id AND c.id = %(client_id)s AND c.user_id = %(owner_id)s"""

UPDATABLE_FIELDS = ("title", "slug", "body_markdown", "body_html", "body_text", "status",
                    "locale", "category")
SLUG_CONSTRAINT = "knowledge_base_client_id_slug_unique"
SAVEPOINT = "SAVEPOINT article_slug"
ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT article_slug"
RELEASE_SAVEPOINT = "RELEASE SAVEPOINT article_slug"
SLUG_ATTEMPTS = 5


class SlugTaken(Exception):
    """The client has another article with this slug."""


def is_slug_clash(error: errors.UniqueViolation) -> bool:
    return error.diag.constraint_name == SLUG_CONSTRAINT


class ArticleRepository:
    def __init__(self, conn):
        self.conn = conn

    # --- the team's side ----------------------------------------------------------------

    def get_for_owner(self, owner_id: str, client_id: str, article_id: str):
        return self.conn.execute(SELECT_FOR_OWNER, {
            "id": article_id, "client_id": client_id, "owner_id": owner_id}).fetchone()

    def list_for_owner(self, owner_id: str, client_id: str, limit: int, status=None, after=None):
        """Up to `limit` articles, most recently updated first, after the (updated_at, id) key
        `after`; None when the client is not the owner's."""
        filters, params = [], {"owner_id": owner_id, "client_id": client_id, "limit": limit}
        if status is not None:
            filters.append(FILTER_STATUS)
            params["status"] = status
        if after is not None:
            filters.append(FILTER_UPDATED_BEFORE)
            params["after_time"], params["after_id"] = after
        query = LIST_FOR_OWNER.format(filters=" ".join(filters))
        return _rows_of_client(self.conn.execute(query, params).fetchall())

    def search_for_owner(self, owner_id: str, client_id: str, query, limit: int, status=None,
                         configs=None, after=None):
        """(configurations parsed in, up to `limit` articles best first with their `score`)
        for a SearchQuery, after the (score, id) key `after`; None when the client is not the
        owner's. `configs` from an earlier page keeps the ranking of that page."""
        parsed = self.conn.execute(OWNER_SEARCH_QUERY, {
            "client_id": client_id, "owner_id": owner_id, "configs": configs,
            **query.params}).fetchone()
        if parsed is None:
            return None
        filters = []
        params = {"client_id": client_id, "limit": limit, "tsquery": parsed["tsquery"]}
        if status is not None:
            filters.append(FILTER_STATUS)
            params["status"] = status
        if after is not None:
            filters.append(FILTER_RANKED_AFTER)
            params["after_score"], params["after_id"] = after
        query = sql.SQL(SEARCH_FOR_OWNER).format(
            filters=sql.SQL(" ").join(sql.SQL(f) for f in filters))
        rows = self.conn.execute(query, params).fetchall()
        return parsed["configs"], rows

    def create(self, owner_id: str, client_id: str, fields: dict, slug_given: bool):
        """A new article; a derived slug that is taken gets a number (`-2`, `-3`, …), a given
        one raises SlugTaken. None when the client is not the owner's."""
        params = {"owner_id": owner_id, "client_id": client_id, **fields}
        for attempt in range(SLUG_ATTEMPTS):
            self.conn.execute(SAVEPOINT)
            try:
                row = self.conn.execute(INSERT_FOR_OWNER, params).fetchone()
            except errors.UniqueViolation as error:
                self.conn.execute(ROLLBACK_TO_SAVEPOINT)
                if not is_slug_clash(error):
                    raise
                if slug_given or attempt == SLUG_ATTEMPTS - 1:
                    raise SlugTaken() from None
                params["slug"] = self._free_slug(client_id, fields["slug"])
                continue
            self.conn.execute(RELEASE_SAVEPOINT)
            return row

    def update(self, owner_id: str, client_id: str, article_id: str, changes: dict):
        """Set the given fields (any of UPDATABLE_FIELDS); None if not the owner's article.
        Raises SlugTaken when the new slug is another article's."""
        if not changes:
            return self.get_for_owner(owner_id, client_id, article_id)
        names = [name for name in UPDATABLE_FIELDS if name in changes]
        query = sql.SQL(UPDATE_FOR_OWNER).format(
            assignments=sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
                for name in names),
            new=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Placeholder(name))
                                   for name in names),
            old=sql.SQL(", ").join(sql.SQL("a.{}").format(sql.Identifier(name))
                                   for name in names),
            columns=sql.SQL(ARTICLE_COLUMNS))
        try:
            return self.conn.execute(query, {"id": article_id, "client_id": client_id,
                                             "owner_id": owner_id, **changes}).fetchone()
        except errors.UniqueViolation as error:
            if is_slug_clash(error):
                raise SlugTaken() from None
            raise

    def delete(self, owner_id: str, client_id: str, article_id: str) -> bool:
        cursor = self.conn.execute(DELETE_FOR_OWNER, {
            "id": article_id, "client_id": client_id, "owner_id": owner_id})
        return cursor.rowcount == 1

    def _free_slug(self, client_id: str, slug: str) -> str:
        taken = {row["slug"] for row in self.conn.execute(
            SELECT_TAKEN_SLUGS, {"client_id": client_id, "slug": slug})}
        number = 2
        while f"{slug}-{number}" in taken:
            number += 1
        return f"{slug}-{number}"

    # --- the widget's side --------------------------------------------------------------

    def public_search_query(self, public_api_key: str, query):
        """The active client's id, allowed_domains and the SearchQuery as a tsquery (text)
        for public_search; None for an unknown key or a suspended client."""
        return self.conn.execute(PUBLIC_SEARCH_QUERY, {"public_api_key": public_api_key,
                                                       **query.params}).fetchone()

    def public_search(self, client_id: str, tsquery: str, limit: int):
        """Rows of slug, title and snippet: the client's best published matches."""
        return self.conn.execute(PUBLIC_SEARCH, {
            "client_id": client_id, "tsquery": tsquery, "limit": limit, "mark": MARK_START,
            "headline_options": HEADLINE_OPTIONS}).fetchall()

    def public_most_viewed(self, public_api_key: str, limit: int):
        """(allowed_domains, rows of slug, title, body_text), most viewed first, or None."""
        rows = self.conn.execute(PUBLIC_MOST_VIEWED, {
            "public_api_key": public_api_key, "limit": limit}).fetchall()
        return _public_rows(rows)

    def public_read(self, public_api_key: str, slug: str):
        """The published article with its client's allowed_domains, counting one view."""
        return self.conn.execute(PUBLIC_READ, {"public_api_key": public_api_key,
                                               "slug": slug}).fetchone()

    def allowed_domains_by_key(self, public_api_key: str):
        row = self.conn.execute(SELECT_ALLOWED_DOMAINS_BY_KEY,
                                {"public_api_key": public_api_key}).fetchone()
        return None if row is None else row["allowed_domains"]


def _rows_of_client(rows):
    if not rows:
        return None
    return [row for row in rows if row["id"] is not None]


def _public_rows(rows):
    if not rows:
        return None
    return rows[0]["allowed_domains"], [row for row in rows if row["slug"] is not None]
