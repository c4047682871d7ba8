"""The knowledge base: the team's articles, and search and reading from the widget."""

import re
import secrets
from datetime import datetime
from html.parser import HTMLParser

import psycopg
import pytest
from psycopg.types.json import Json

from chatconnect.articles import SearchQuery, plain_text, render_markdown, search_query

from .conftest import AuthActions

ORIGIN = "https://shop.example"


def create_client(database_url, owner_id, allowed_domains=(), status="active") -> dict:
    with psycopg.connect(database_url) as conn:
        client_id, key = conn.execute(
            "INSERT INTO clients (user_id, name, public_api_key, allowed_domains, status) "
            "VALUES (%s, 'Shop', %s, %s, %s) RETURNING id, public_api_key",
            (owner_id, "pk_" + secrets.token_urlsafe(16), Json(list(allowed_domains)), status),
        ).fetchone()
    return {"id": client_id, "public_api_key": key}


def articles_url(shop, article_id=None) -> str:
    return f"/api/clients/{shop['id']}/articles" + (f"/{article_id}" if article_id else "")


def public_url(shop, slug=None) -> str:
    return f"/api/public/widgets/{shop['public_api_key']}/articles" + (f"/{slug}" if slug else "")


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.fixture
def owner(auth):
    return auth.register()


@pytest.fixture
def shop(owner, database_url):
    return create_client(database_url, owner["id"], allowed_domains=["shop.example"])


@pytest.fixture
def browser(app):
    """A visitor's browser on the customer's site: no cookie, no token."""
    return app.test_client()


@pytest.fixture
def write(client, shop):
    """Create an article of the shop (published unless told otherwise)."""
    def create(title, body_markdown="", **fields):
        response = client.post(articles_url(shop), json={
            "title": title, "body_markdown": body_markdown, "status": "published", **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()
    return create


@pytest.fixture
def search(browser, shop):
    """The slugs (or, with full=True, the items) the widget's search answers for `q`."""
    def run(q, full=False, **params):
        response = browser.get(public_url(shop), query_string={"q": q, **params},
                               headers={"Origin": ORIGIN})
        assert response.status_code == 200, response.get_json()
        items = response.get_json()["items"]
        return items if full else [item["slug"] for item in items]
    return run


# --- writing articles ------------------------------------------------------------------------

def test_an_article_is_stored_with_its_markdown_rendered(client, shop):
    response = client.post(articles_url(shop), json={
        "title": "Reset your password", "body_markdown": "Open **Settings**, then *Security*.",
        "locale": "pt-br", "category": "Account"})
    assert response.status_code == 201
    article = response.get_json()
    assert set(article) == {"id", "client_id", "title", "slug", "body_markdown", "body_html",
                            "status", "locale", "category", "views", "created_at",
                            "updated_at"}
    assert article["slug"] == "reset-your-password"
    assert article["body_html"] == ("<p>Open <strong>Settings</strong>, then "
                                    "<em>Security</em>.</p>\n")
    assert (article["status"], article["locale"], article["category"], article["views"]) == (
        "draft", "pt-BR", "Account", 0)
    assert article["client_id"] == shop["id"]
    assert client.get(articles_url(shop, article["id"])).get_json() == article


def test_patch_changes_only_what_is_given_and_moves_updated_at_only_on_a_change(client, write,
                                                                                shop):
    article = write("Shipping", "We ship *worldwide*.", category="Orders")
    url = articles_url(shop, article["id"])
    same = client.patch(url, json={"title": "Shipping", "body_markdown": "We ship *worldwide*."})
    assert same.status_code == 200 and same.get_json() == article
    assert client.patch(url, json={}).get_json() == article

    changed = client.patch(url, json={"body_markdown": "We ship **worldwide**.",
                                      "category": None}).get_json()
    assert changed["body_html"] == "<p>We ship <strong>worldwide</strong>.</p>\n"
    assert changed["category"] is None
    assert (changed["title"], changed["slug"]) == ("Shipping", "shipping")
    assert datetime.fromisoformat(changed["updated_at"]) > datetime.fromisoformat(
        article["updated_at"])
    # A new title keeps the slug, so that links to the article keep working.
    assert client.patch(url, json={"title": "Delivery"}).get_json()["slug"] == "shipping"


def test_delete(client, write, shop):
    article = write("Old news")
    assert client.delete(articles_url(shop, article["id"])).status_code == 204
    assert client.get(articles_url(shop, article["id"])).status_code == 404
    assert client.delete(articles_url(shop, article["id"])).status_code == 404


@pytest.mark.parametrize("title, slug", [
    ("Ändern Sie Ihr Passwort!", "andern-sie-ihr-passwort"),
    ("Straße & Co. -- Öffnungszeiten", "strasse-co-offnungszeiten"),
    ("  How do I... pay?  ", "how-do-i-pay"),
    ("日本語のガイド", "article"),
    ("word " * 40, ("word-" * 24)[:-1]),
])
def test_the_slug_comes_from_the_title(write, title, slug):
    assert write(title)["slug"] == slug


def test_a_derived_slug_that_is_taken_gets_a_number_and_a_given_one_is_409(client, write,
                                                                           shop):
    assert [write("FAQ")["slug"] for _ in range(3)] == ["faq", "faq-2", "faq-3"]
    taken = client.post(articles_url(shop), json={"title": "Other", "slug": "faq-2"})
    assert taken.status_code == 409 and error_code(taken) == "conflict"
    other = write("Other", slug="other")
    clash = client.patch(articles_url(shop, other["id"]), json={"slug": "faq"})
    assert clash.status_code == 409 and error_code(clash) == "conflict"
    assert client.get(articles_url(shop, other["id"])).get_json()["slug"] == "other"


def test_slugs_are_unique_per_client_only(client, write, owner, database_url):
    write("Returns", slug="returns")
    other_shop = create_client(database_url, owner["id"])
    response = client.post(articles_url(other_shop), json={"title": "Returns", "slug": "returns"})
    assert response.status_code == 201


@pytest.mark.parametrize("body, field", [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": 7}, "title"),
    ({"title": "a\x00b"}, "title"),
    ({"title": "T", "body_markdown": "x" * 60_001}, "body_markdown"),
    ({"title": "T", "body_markdown": None}, "body_markdown"),
    ({"title": "T", "status": "archived"}, "status"),
    ({"title": "T", "locale": "english"}, "locale"),
    ({"title": "T", "locale": "pt_BR"}, "locale"),
    ({"title": "T", "locale": ""}, "locale"),
    ({"title": "T", "category": ""}, "category"),
    ({"title": "T", "category": "c" * 101}, "category"),
    ({"title": "T", "slug": "Upper-Case"}, "slug"),
    ({"title": "T", "slug": "double--hyphen"}, "slug"),
    ({"title": "T", "slug": "-leading"}, "slug"),
    ({"title": "T", "slug": "spa ce"}, "slug"),
    ({"title": "T", "slug": "a" * 121}, "slug"),
    ({"title": "T", "views": 100}, "views"),
])
def test_bad_articles_are_refused_and_change_nothing(client, shop, database_url, body, field):
    response = client.post(articles_url(shop), json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM knowledge_base").fetchone() == (0,)


def test_a_patch_with_one_bad_field_changes_nothing(client, write, shop):
    article = write("Payments")
    response = client.patch(articles_url(shop, article["id"]),
                            json={"title": "Paying", "locale": "not a locale"})
    assert response.status_code == 422
    assert client.get(articles_url(shop, article["id"])).get_json() == article


# --- the sanitiser ---------------------------------------------------------------------------

@pytest.mark.parametrize("markdown", [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<p onclick="alert(1)" onmouseover="alert(2)">hover</p>',
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    '<a href="javascript:alert(1)">click</a>',
    '<a href=" JaVaScRiPt:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    "<a href='vbscript:msgbox(1)'>click</a>",
    "<iframe src='https://evil.example'></iframe>",
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)><circle r=1 /></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "![pixel](data:image/png;base64,iVBORw0KGgo=)",
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">open</a>',
    '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    "<object data='x.swf'></object><embed src='x.swf'>",
    "<form action='https://evil.example'><input name=password></form>",
    "<style>body { display: none }</style>",
    '<p style="position:fixed;top:0;background:url(javascript:alert(1))">overlay</p>',
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x</maction></math>",
    "<base href='https://evil.example/'><meta http-equiv=refresh content='0;url=https://evil.example'>",
])
def test_the_sanitiser_removes_what_could_run_or_mislead(markdown):
    html = render_markdown(f"Before\n\n{markdown}\n\nAfter")
    elements = Elements()
    elements.feed(html)
    assert elements.tags <= {"p", "a", "img"}, html
    for tag, name, value in elements.attributes:
        assert not name.startswith("on") and name != "style", html
        if name in ("href", "src"):
            assert re.match(r"https?://|mailto:|[a-z0-9./]", value or "", re.I), html
            assert not re.match(r"\s*(javascript|vbscript|data):", value or "", re.I), html
    if "alert" in elements.text:  # a Markdown link refused: shown as the text it is
        assert elements.tags == {"p"}, html
    assert "display" not in elements.text, html
    assert elements.text.startswith("Before") and elements.text.endswith("After\n")


class Elements(HTMLParser):
    """The tags, attributes and text of an HTML fragment, as a browser would parse them."""

    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.text = set(), [], ""

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += [(tag, name, value) for name, value in attrs]

    def handle_data(self, data):
        self.text += data


def test_the_sanitiser_keeps_what_help_articles_need():
    html = render_markdown(
        "## Steps\n\n1. Open [Settings](https://shop.example/settings \"Settings\")\n"
        "2. Press <kbd>Ctrl</kbd>+<kbd>S</kbd>\n\n| Plan | Price |\n|:-----|------:|\n"
        "| Pro | 10 € |\n\n```\ncode <here>\n```\n\n![Logo](https://shop.example/logo.png)\n\n"
        "<details><summary>More</summary>Hidden text</details>\n\n~~old~~ "
        "[mail](mailto:help@shop.example)")
    assert "<h2>Steps</h2>" in html
    assert ('<a href="https://shop.example/settings" title="Settings" target="_blank" '
            'rel="noopener noreferrer nofollow">Settings</a>') in html
    assert "<kbd>Ctrl</kbd>" in html
    assert '<th style="text-align:left">Plan</th>' in html
    assert '<td style="text-align:right">10 €</td>' in html
    assert "<pre><code>code &lt;here&gt;\n</code></pre>" in html
    assert '<img src="https://shop.example/logo.png" alt="Logo">' in html
    assert "<details><summary>More</summary>Hidden text</details>" in html
    assert "<s>old</s>" in html and 'href="mailto:help@shop.example"' in html
    text = plain_text(html)
    assert "code <here>" in text and "Hidden text" in text and "Logo" in text
    assert "<kbd>" not in text


# --- search: language, accents, prefix, phrases, ranking, snippets ---------------------------

def test_stemming_in_english_and_german(write, search):
    write("Getting started", "Before you run the app for the first time, sign in.")
    write("Unsere Häuser", "Jedes Haus hat einen Garten.", locale="de")
    assert search("running") == ["getting-started"]
    assert search("Häuser") == ["unsere-hauser"]
    assert search("haus") == ["unsere-hauser"]


def test_accents_do_not_matter_and_snippets_keep_them(write, search):
    write("Le café", "Notre café ouvre à 8 h. Crème brûlée le dimanche.", locale="fr")
    write("Cafe opening hours", "Our cafe opens at eight.")
    assert sorted(search("cafe")) == ["cafe-opening-hours", "le-cafe"]
    assert sorted(search("café")) == ["cafe-opening-hours", "le-cafe"]
    assert search("creme brulee") == ["le-cafe"]
    french = next(item for item in search("cafe", full=True) if item["slug"] == "le-cafe")
    assert "<mark>café</mark>" in french["snippet"]


def test_the_last_word_matches_as_a_prefix_while_it_is_typed(write, search):
    write("Change your password", "Passwords are stored hashed.")
    write("Payment methods", "We accept cards.")
    assert search("pas") == ["change-your-password"]
    assert search("change passw") == ["change-your-password"]
    assert search("passw payment") == []
    # A finished word (followed by a space) and a prefix shorter than three letters are words.
    assert search("passw ") == []
    assert search("pa") == []
    items = search("passwo", full=True)
    assert "<mark>Passwords</mark>" in items[0]["snippet"]


def test_quoted_phrases_and_excluded_words(write, search):
    write("Reset a password", "To reset your password, open the account settings.")
    write("Password rules", "Choose a long password; you can reset it any time.")
    write("International shipping", "We ship internationally within a week.")
    write("Local shipping", "We ship within the city.")
    assert search('"reset your password"') == ["reset-a-password"]
    assert sorted(search("password reset")) == ["password-rules", "reset-a-password"]
    assert search("shipping -international") == ["local-shipping"]
    assert search("shipping -internationally") == ["local-shipping"]
    assert search('password -"account settings"') == ["password-rules"]
    assert sorted(search("settings or city")) == ["local-shipping", "reset-a-password"]


def test_a_query_in_another_language_finds_the_words_as_written(write, search):
    write("Versand", "Die Versandkosten hängen vom Gewicht ab.", locale="de")
    write("Shipping costs", "Costs depend on weight.")
    write("Ukonwn language", "Kargo ücretleri ağırlığa bağlıdır.", locale="xx")
    assert search("Versandkosten") == ["versand"]
    assert search("versandkost") == ["versand"]
    assert search("ucretleri") == ["ukonwn-language"]
    assert search("costs") == ["shipping-costs"]


def test_a_title_match_ranks_above_body_matches(write, search):
    write("Refund policy overview", "Everything about money back.")
    write("Orders", "refund " * 50 + "Refunds take a week; a refund is refunded in full.")
    write("Returns", "Ask for a refund in your account.")
    assert search("refund")[0] == "refund-policy-overview"
    assert search("refund")[1:] and set(search("refund")[1:]) == {"orders", "returns"}


def test_snippets_escape_everything_but_the_marks(write, search):
    write("Formatting", "Write **bold** with the `<b>` tag & `<mark>` for highlights; "
                        "`<script>alert(1)</script>` is shown as code.")
    [item] = search("bold", full=True)
    snippet = item["snippet"]
    assert "&lt;b&gt;" in snippet and "<mark>bold</mark>" in snippet and "&amp;" in snippet
    assert "&lt;mark&gt;" in snippet
    assert "&lt;script&gt;" in snippet
    assert re.sub(r"</?mark>", "", snippet).count("<") == 0
    assert item["title"] == "Formatting"


def test_without_a_query_the_most_viewed_published_articles_come_first(write, browser, shop,
                                                                       search):
    quiet, popular, draft = write("Quiet"), write("Popular", "Read **me**."), write(
        "Draft", status="draft")
    for _ in range(3):
        browser.get(public_url(shop, popular["slug"]))
    browser.get(public_url(shop, quiet["slug"]))
    items = search("", full=True)
    assert [item["slug"] for item in items] == ["popular", "quiet"]
    assert items[0]["snippet"] == "Read me."
    assert draft["slug"] not in search("   ")


def test_the_public_limit(write, search):
    for n in range(7):
        write(f"Topic {n}", "shared words")
    assert len(search("shared")) == 5
    assert len(search("shared", limit=3)) == 3
    assert len(search("shared", limit=20)) == 7


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "21"}, {"limit": "x"},
                                   {"q": "x" * 201}, {"q": "a\x00b"}, {"page": "2"}])
def test_public_search_validation(browser, shop, query):
    response = browser.get(public_url(shop), query_string=query)
    assert response.status_code == 422 and error_code(response) == "validation_error"


@pytest.mark.parametrize("q", ['"', "-", "or", "&", "!", "'", ":*", "(", "\\", "a:* & !",
                               '"unclosed phrase', "--x", "- -", "or or or", "-or", "ø:*"])
def test_odd_queries_are_answered(write, search, q):
    write("Anything", "Some text or other")
    assert isinstance(search(q), list)


@pytest.mark.parametrize("q, parsed", [
    ("reset passw", SearchQuery("reset", "passw")),
    ("reset passw ", SearchQuery("reset passw")),
    ("reset pa", SearchQuery("reset pa")),
    ('"reset passw', SearchQuery('"reset passw')),
    ('reset "password"', SearchQuery('reset "password"')),
    ("cats or dog", SearchQuery("cats", "dog", prefix_or=True)),
    ("ship -international", SearchQuery("ship", excluded="international")),
    ('-"a b" c -d efg', SearchQuery("c", "efg", excluded='"a b" or d')),
    ("e-mail", SearchQuery("e-mail")),
    ("passwörter", SearchQuery("", "passwörter")),
])
def test_how_a_query_is_split(q, parsed):
    assert search_query(q) == parsed


# --- draft, published and the public routes --------------------------------------------------

def test_drafts_are_never_public(client, write, browser, shop, search):
    draft = write("Unreleased feature", "Coming soon.", status="draft")
    assert search("unreleased") == []
    assert browser.get(public_url(shop, draft["slug"])).status_code == 404
    client.patch(articles_url(shop, draft["id"]), json={"status": "published"})
    assert search("unreleased") == ["unreleased-feature"]
    assert browser.get(public_url(shop, draft["slug"])).status_code == 200
    client.patch(articles_url(shop, draft["id"]), json={"status": "draft"})
    assert browser.get(public_url(shop, draft["slug"])).status_code == 404


def test_reading_an_article_counts_views_and_revalidates(client, write, browser, shop):
    article = write("Opening hours", "Mon–Fri, **9–17**.", locale="de-AT")
    response = browser.get(public_url(shop, article["slug"]), headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.get_json() == {"slug": "opening-hours", "title": "Opening hours",
                                   "body_html": "<p>Mon–Fri, <strong>9–17</strong>.</p>\n",
                                   "locale": "de-AT", "updated_at": article["updated_at"]}
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = browser.get(public_url(shop, article["slug"]), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert client.get(articles_url(shop, article["id"])).get_json()["views"] == 2

    client.patch(articles_url(shop, article["id"]), json={"body_markdown": "Mon–Sat."})
    changed = browser.get(public_url(shop, article["slug"]), headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    # Counting views does not move updated_at.
    assert client.get(articles_url(shop, article["id"])).get_json()["views"] == 3


def test_public_routes_check_the_origin_and_answer_preflights(write, browser, shop):
    article = write("Hello", "world")
    for url in (public_url(shop), public_url(shop, article["slug"])):
        refused = browser.get(url, headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403 and error_code(refused) == "forbidden"
        assert "Access-Control-Allow-Origin" not in refused.headers
        preflight = browser.options(url, headers={"Origin": ORIGIN,
                                                  "Access-Control-Request-Method": "GET"})
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        assert browser.options(url, headers={"Origin": "https://evil.example"}).status_code == 403
        assert browser.get(url).status_code == 200  # no Origin: a server or curl


@pytest.mark.parametrize("status", ["suspended"])
def test_a_suspended_client_serves_nothing(client, write, browser, shop, status, database_url):
    article = write("Hello", "world")
    client.patch(f"/api/clients/{shop['id']}", json={"status": status})
    for url in (public_url(shop), public_url(shop, article["slug"])):
        assert browser.get(url, query_string={"q": "hello"}).status_code == 404
        assert browser.get(url).status_code == 404
        assert browser.options(url, headers={"Origin": ORIGIN}).status_code == 404
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT views FROM knowledge_base").fetchone() == (0,)


@pytest.mark.parametrize("slug", ["Hello", "no_such", "a" * 121, "%00", "x%20y", "..", "-a"])
def test_odd_or_unknown_slugs_and_keys_are_404(write, browser, shop, slug):
    write("Hello", "world")
    assert browser.get(public_url(shop, slug)).status_code == 404
    assert browser.get("/api/public/widgets/pk_nope/articles/hello").status_code == 404
    assert browser.get("/api/public/widgets/pk_nope/articles").status_code == 404
    assert browser.get("/api/public/widgets/%00/articles").status_code == 404


def test_search_is_rate_limited_per_ip_across_workers(make_app, app, write, shop):
    first, second = (make_app(ARTICLE_SEARCH_LIMIT_PER_IP="3/60").test_client()
                     for _ in range(2))
    statuses = [http.get(public_url(shop), query_string={"q": "x"}).status_code
                for http in (first, second, first, second)]
    assert statuses == [200, 200, 200, 429]
    refused = first.get(public_url(shop))
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    other_ip = first.get(public_url(shop), environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other_ip.status_code == 200
    # Reading articles is not limited.
    assert first.get(public_url(shop, write("Hi")["slug"])).status_code == 200


# --- the team's list -------------------------------------------------------------------------

def test_the_list_is_most_recently_updated_first_and_filters_by_status(client, write, shop):
    first, second, third = write("One"), write("Two", status="draft"), write("Three")
    client.patch(articles_url(shop, first["id"]), json={"title": "One, edited"})
    listed = client.get(articles_url(shop), query_string={"limit": 2}).get_json()
    assert [a["id"] for a in listed["items"]] == [first["id"], third["id"]]
    rest = client.get(articles_url(shop), query_string={
        "limit": 2, "cursor": listed["next_cursor"]}).get_json()
    assert [a["id"] for a in rest["items"]] == [second["id"]] and rest["next_cursor"] is None
    drafts = client.get(articles_url(shop), query_string={"status": "draft"}).get_json()
    assert [a["id"] for a in drafts["items"]] == [second["id"]]
    published = client.get(articles_url(shop), query_string={"status": "published"}).get_json()
    assert {a["id"] for a in published["items"]} == {first["id"], third["id"]}


def test_team_search_finds_drafts_too_and_pages_by_rank(client, write, shop):
    billing = write("Billing", "Invoices are sent monthly.", status="draft")["id"]
    ids = [write(f"Note {n}", "Invoices. " * (n + 1) + "filler " * 10)["id"] for n in range(5)]
    # Equal articles tie on rank: the id breaks the tie, and no page repeats or skips one.
    ties = [write(f"Tie {n}", "invoices", slug=f"tie-{n}")["id"] for n in range(4)]
    seen, cursor = [], None
    while True:
        params = {"q": "invoices", "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = client.get(articles_url(shop), query_string=params).get_json()
        seen += [item["id"] for item in response["items"]]
        cursor = response["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids + ties + [billing]) and len(seen) == len(set(seen))
    tie_positions = [seen.index(tie) for tie in sorted(ties)]
    assert tie_positions == sorted(tie_positions)
    drafts = client.get(articles_url(shop), query_string={"q": "invoices", "status": "draft"})
    assert [a["title"] for a in drafts.get_json()["items"]] == ["Billing"]


def test_a_cursor_belongs_to_its_query_and_its_list(client, write, shop):
    for n in range(3):
        write(f"Invoice {n}")
    searched = client.get(articles_url(shop), query_string={"q": "invoice", "limit": 1})
    listed = client.get(articles_url(shop), query_string={"limit": 1})
    for params in ({"q": "other", "cursor": searched.get_json()["next_cursor"]},
                   {"cursor": searched.get_json()["next_cursor"]},
                   {"q": "invoice", "cursor": listed.get_json()["next_cursor"]},
                   {"cursor": "forged"}):
        response = client.get(articles_url(shop), query_string=params)
        assert response.status_code == 422 and "cursor" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("query, field", [({"status": "archived"}, "status"),
                                          ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"),
                                          ({"q": "q" * 201}, "q"), ({"sort": "title"}, "sort")])
def test_team_list_query_validation(client, shop, query, field):
    response = client.get(articles_url(shop), query_string=query)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]


# --- tenants ---------------------------------------------------------------------------------

def test_another_owners_articles_are_404(client, app, write, shop, database_url):
    article = write("Private", "Only for this shop.")
    intruder = app.test_client()
    AuthActions(intruder).register()
    for response in (intruder.get(articles_url(shop)),
                     intruder.get(articles_url(shop), query_string={"q": "private"}),
                     intruder.post(articles_url(shop), json={"title": "Mine"}),
                     intruder.get(articles_url(shop, article["id"])),
                     intruder.patch(articles_url(shop, article["id"]), json={"title": "Mine"}),
                     intruder.delete(articles_url(shop, article["id"]))):
        assert response.status_code == 404 and error_code(response) == "not_found"
    # Nor is an article reached through another client of the same owner.
    owner_id = client.get("/api/auth/me").get_json()["user"]["id"]
    other_shop = create_client(database_url, owner_id)
    assert client.get(articles_url(other_shop, article["id"])).status_code == 404
    assert client.delete(articles_url(other_shop, article["id"])).status_code == 404
    assert client.get(articles_url(shop, article["id"])).get_json() == article


def test_search_and_read_stay_within_one_client(write, browser, owner, database_url):
    write("Secret sauce", "The recipe.")
    other_shop = create_client(database_url, owner["id"])
    assert browser.get(public_url(other_shop), query_string={"q": "secret"}).get_json() == {
        "items": [], "next_cursor": None}
    assert browser.get(public_url(other_shop, "secret-sauce")).status_code == 404


def test_the_team_routes_need_a_sign_in(app, shop):
    anonymous = app.test_client()
    assert anonymous.get(articles_url(shop)).status_code == 401
    assert anonymous.post(articles_url(shop), json={"title": "x"}).status_code == 401


def test_deleting_a_client_deletes_its_articles(client, write, shop, database_url):
    write("Gone soon")
    assert client.delete(f"/api/clients/{shop['id']}").status_code == 204
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM knowledge_base").fetchone() == (0,)
