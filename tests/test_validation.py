"""The shared request checks, at the edge cases fuzzing finds."""

from datetime import UTC, datetime

import pytest

from chatconnect.errors import ApiError
from chatconnect.pagination import page, page_params
from chatconnect.validation import query_integer


@pytest.mark.parametrize("raw, expected", [
    ("1", 1),
    ("100", 100),
    ("9223372036854775807", 9223372036854775807),
])
def test_query_integer_accepts_whole_numbers_in_range(app, raw, expected):
    with app.test_request_context(f"/?n={raw}"):
        assert query_integer("n", 0, 1, 2**63 - 1) == expected


@pytest.mark.parametrize("raw", [
    "", "0", "-1", "+5", " 5", "5 ", "1.0", "1e3", "0x10", "1_000",
    "\u0661\u0660",  # Arabic-Indic "10": int() accepts it, the API does not
    "9223372036854775808", "9" * 5000,
])
def test_query_integer_rejects_anything_else_with_a_validation_error(app, raw):
    with app.test_request_context("/", query_string={"n": raw}):
        with pytest.raises(ApiError) as raised:
            query_integer("n", 0, 1, 2**63 - 1)
    assert raised.value.status == 422
    assert "n" in raised.value.fields


@pytest.mark.parametrize("cursor", [
    "", "'", "x" * 10_000, "é", "a.b", "a.b.c", "WzEsMl0.bad-signature", "%00", "\u0000",
])
def test_a_cursor_the_server_did_not_issue_is_a_validation_error(app, cursor):
    with app.test_request_context("/", query_string={"cursor": cursor}):
        with pytest.raises(ApiError) as raised:
            page_params("clients")
    assert raised.value.status == 422
    assert "cursor" in raised.value.fields


def test_an_issued_cursor_comes_back_as_its_key_and_only_for_its_list(app):
    created_at = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
    rows = [{"id": "a", "created_at": created_at}, {"id": "b", "created_at": created_at}]
    with app.test_request_context("/"):
        cursor = page(rows, 1, dict, "clients", "created_at")["next_cursor"]
    with app.test_request_context("/", query_string={"cursor": cursor}):
        assert page_params("clients") == (50, (created_at, "a"))
        with pytest.raises(ApiError):
            page_params("conversations")
