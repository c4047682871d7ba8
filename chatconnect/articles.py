"""Knowledge base articles: Markdown rendered to safe HTML, slugs, locales and search queries.

Shared by the team's routes (views/articles.py) and the widget's (views/help_center.py)."""

import re
import unicodedata
from html import escape
from dataclasses import dataclass
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt

from .validation import Invalid

MAX_SLUG_LENGTH = 120
SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
# BCP 47 as help centres use it: language, optional script, region and variants.
LOCALE_PATTERN = re.compile(
    r"([a-zA-Z]{2,3})(-[a-zA-Z]{4})?(-(?:[a-zA-Z]{2}|[0-9]{3}))?"
    r"((?:-(?:[a-zA-Z0-9]{5,8}|[0-9][a-zA-Z0-9]{3}))*)")
MAX_LOCALE_LENGTH = 35
# As the visitor types, the last word is matched as a prefix once it has this many
# characters: shorter prefixes match most of the vocabulary and help nobody.
MIN_PREFIX_LENGTH = 3
SNIPPET_CHARACTERS = 160
# ts_headline marks matches with these; they cannot occur in body_text (see plain_text).
MARK_START, MARK_END = "\x02", "\x03"

# Raw HTML is allowed in the Markdown and then sanitised, with the tags and attributes a help
# article needs: no script, style, form, frame or embed, no event handler, no style but
# table-cell alignment, and only http(s), mailto and tel URLs (relative ones resolve against
# the page showing the widget). Links open in a new tab, so that the visitor keeps the page.
_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_sanitiser = nh3.Cleaner(
    tags={"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "dl", "dt",
          "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "mark", "ol",
          "p", "pre", "s", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th",
          "thead", "tr", "u", "ul"},
    clean_content_tags={"script", "style", "iframe", "object", "embed", "svg", "math",
                        "template", "noscript", "textarea", "select"},
    attributes={"a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"},
                "abbr": {"title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"},
                "details": {"open"}},
    url_schemes={"http", "https", "mailto", "tel"},
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    filter_style_properties={"text-align"},
)

_BLOCK_TAGS = {"p", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
               "blockquote", "hr", "dt", "dd", "summary", "table", "ul", "ol", "details", "img"}
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Letters ASCII folding (NFKD) drops instead of spelling out.
_SLUG_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "œ": "oe",
                               "Œ": "oe", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "þ": "th",
                               "Þ": "th", "ð": "d", "Ð": "d"})


def render_markdown(source: str) -> str:
    """The Markdown as HTML that is safe to insert into any page."""
    return _sanitiser.clean(_markdown.render(source))


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.parts.append(" " + (dict(attrs).get("alt") or "") + " ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data)


def plain_text(html: str) -> str:
    """The text a reader sees in `html`: what search indexes and snippets quote."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    text = _CONTROL_CHARACTERS.sub(" ", "".join(extractor.parts))
    return re.sub(r"\n\s*\n\s*", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()


def slug_from_title(title: str) -> str:
    """`Ändern Sie Ihr Passwort!` -> `andern-sie-ihr-passwort`; `article` if nothing is left."""
    folded = unicodedata.normalize("NFKD", title.translate(_SLUG_LETTERS))
    slug = re.sub(r"[^a-z0-9]+", "-", folded.encode("ascii", "ignore").decode().lower())
    return truncate_slug(slug.strip("-")) or "article"


def truncate_slug(slug: str, length: int = MAX_SLUG_LENGTH) -> str:
    if len(slug) <= length:
        return slug
    cut = slug[:length]
    return (cut.rsplit("-", 1)[0] if slug[length] != "-" and "-" in cut else cut).strip("-")


def check_slug(value) -> str:
    if not isinstance(value, str) or not re.fullmatch(SLUG_PATTERN, value):
        raise Invalid("must be lower-case letters and digits in words joined by single "
                      "hyphens, like reset-your-password")
    if len(value) > MAX_SLUG_LENGTH:
        raise Invalid(f"must be at most {MAX_SLUG_LENGTH} characters")
    return value


def check_locale(value) -> str:
    """A BCP 47 tag in its usual case: `pt-br` -> `pt-BR`, `zh-hant-tw` -> `zh-Hant-TW`."""
    match = LOCALE_PATTERN.fullmatch(value) if isinstance(value, str) else None
    if not match or len(value) > MAX_LOCALE_LENGTH:
        raise Invalid("must be a language tag such as en, de or pt-BR")
    language, script, region, variants = match.groups()
    return (language.lower() + (script or "").title() + (region or "").upper()
            + (variants or "").lower())


def snippet(headline: str) -> str:
    """ts_headline's output (over HTML-escaped text) with its marks as <mark> elements."""
    return headline.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


def leading_text(body_text: str) -> str:
    """The start of an article, HTML-escaped, as the snippet of a list without a query."""
    text = " ".join(body_text.split())
    if len(text) > SNIPPET_CHARACTERS:
        text = text[:SNIPPET_CHARACTERS].rsplit(" ", 1)[0] + " …"
    return escape(text, quote=False)


@dataclass(frozen=True)
class SearchQuery:
    """A visitor's query split for PostgreSQL's websearch_to_tsquery: the `words` to match,
    the word being typed, if any, to match as a prefix too (`prefix_or`: it follows an `or`),
    and the `excluded` terms (`-word`, `-"a phrase"`) joined by `or`.

    Exclusions are kept apart because the query is parsed in several configurations and the
    results OR-ed: an exclusion must hold in all of them, not in one."""

    words: str
    prefix: str | None = None
    prefix_or: bool = False
    excluded: str | None = None

    @property
    def params(self) -> dict:
        return {"words": self.words, "prefix": self.prefix, "prefix_or": self.prefix_or,
                "prefix_query": None if self.prefix is None else f"'{self.prefix}':*",
                "excluded": self.excluded}


# A quoted phrase (closed or still open) or a run of other characters, optionally negated.
_TERM = re.compile(r'(-?)("[^"]*"?|[^\s"]+)')


def search_query(q: str) -> SearchQuery:
    """websearch_to_tsquery semantics (`"a phrase"`, `-word`, `or`), and the last word as a
    prefix while it is being typed: not after a space, not negated, not inside quotes."""
    terms = [(bool(m[1]), m[2]) for m in _TERM.finditer(q)]
    excluded = " or ".join(term for negated, term in terms if negated) or None
    words = [term for negated, term in terms if not negated]
    typing = bool(terms) and not terms[-1][0] and not q[-1].isspace()
    last = words[-1] if typing else ""
    if (len(last) < MIN_PREFIX_LENGTH or not re.fullmatch(r"[^\W_]+", last)
            or last.lower() == "or"):
        return SearchQuery(" ".join(words), excluded=excluded)
    words.pop()
    prefix_or = bool(words) and words[-1].lower() == "or"
    if prefix_or:
        words.pop()
    return SearchQuery(" ".join(words), last, prefix_or, excluded)
