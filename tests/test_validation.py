"""The shared request checks, at the edge cases fuzzing finds."""

import pytest

from chatconnect.errors import ApiError
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
