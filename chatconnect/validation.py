"""Turn request bodies and query strings into checked values, or a validation_error."""

import json
import re
from collections.abc import Callable, Iterable

from flask import request
from werkzeug.routing import BaseConverter

from .errors import ApiError, validation_error

UUID_REGEX = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
# Keys are `pk_` and URL-safe characters, and keys kept from the original application are
# printable ASCII; anything else (NUL, spaces, very long) cannot be a key.
PUBLIC_API_KEY_PATTERN = re.compile(r"[!-~]{1,200}")


class Invalid(ValueError):
    """Raised by a field check; its message becomes the field's entry in `fields`."""


def json_body() -> dict:
    """The request body as a JSON object, or 415 / 400 errors."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


def parse_body(checks: dict[str, Callable], required: Iterable[str] = ()) -> dict:
    """Check the JSON body against `checks` (field name -> check); unknown fields are errors."""
    return parse_fields(json_body(), checks, required)


def parse_fields(data: dict, checks: dict[str, Callable], required: Iterable[str] = ()) -> dict:
    errors = {name: "is not a known field" for name in data if name not in checks}
    errors.update({name: "is required" for name in required if name not in data})
    values = {}
    for name, check in checks.items():
        if name in data and name not in errors:
            try:
                values[name] = check(data[name])
            except Invalid as error:
                errors[name] = str(error)
    if errors:
        raise validation_error(errors)
    return values


def _clean_text(value, what="a string"):
    if not isinstance(value, str):
        raise Invalid(f"must be {what}")
    if "\x00" in value:
        raise Invalid("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("must be valid Unicode text") from None
    return value


def text(min_length=1, max_length=None, pattern=None, pattern_message=None):
    """A string of min_length..max_length characters, optionally matching `pattern`."""
    def check(value):
        value = _clean_text(value)
        if len(value) < min_length:
            raise Invalid("must not be empty" if min_length == 1
                          else f"must be at least {min_length} characters")
        if max_length is not None and len(value) > max_length:
            raise Invalid(f"must be at most {max_length} characters")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise Invalid(pattern_message or "has an invalid format")
        return value
    return check


def boolean(value):
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def integer(minimum, maximum):
    """A JSON integer in [minimum, maximum]: not a boolean; 30.0 is 30, as in JSON Schema."""
    def check(value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) \
                or not minimum <= value <= maximum:
            raise Invalid(f"must be a whole number from {minimum} to {maximum}")
        return value
    return check


def nullable(check):
    return lambda value: None if value is None else check(value)


def one_of(*choices):
    def check(value):
        if value not in choices or not isinstance(value, str):
            raise Invalid("must be one of: " + ", ".join(choices))
        return value
    return check


def list_of(item_check, max_items):
    """A list of at most max_items entries, each passed through item_check and de-duplicated.

    A bad entry is named by its value in the message."""
    def check(value):
        if not isinstance(value, list):
            raise Invalid("must be a list")
        if len(value) > max_items:
            raise Invalid(f"must have at most {max_items} entries")
        items = []
        for entry in value:
            try:
                item = item_check(entry)
            except Invalid as error:
                raise Invalid(f"{json.dumps(entry)[:100]}: {error}") from None
            if item not in items:
                items.append(item)
        return items
    return check


def query_integer(name, default, minimum, maximum):
    """An integer query parameter in [minimum, maximum], or a validation_error."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not minimum <= int(raw) <= maximum:
        raise validation_error({name: f"must be a whole number from {minimum} to {maximum}"})
    return int(raw)


def known_query(*names) -> None:
    """422 for a query parameter the route does not take (as for unknown body fields)."""
    unknown = {name: "is not a known parameter" for name in request.args if name not in names}
    if unknown:
        raise validation_error(unknown)


def query_value(name, check):
    """A query parameter passed through a field check (e.g. `text`, `one_of`), or None."""
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return check(raw)
    except Invalid as error:
        raise validation_error({name: str(error)}) from None


class IdConverter(BaseConverter):
    """`<id:name>` in a route: a UUID, lower-cased. Any other value matches no route (404)."""

    regex = UUID_REGEX

    def to_python(self, value: str) -> str:
        return value.lower()


def is_public_api_key(value: str) -> bool:
    """Could `value` be a public API key? Other values are a 404 without asking the database,
    which refuses some of them (NUL) with an error."""
    return bool(PUBLIC_API_KEY_PATTERN.fullmatch(value))
