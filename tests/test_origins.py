import pytest

from chatconnect.origins import normalize_domain_pattern, origin_allowed
from chatconnect.validation import Invalid


@pytest.mark.parametrize("value, expected", [
    ("Example.COM", "example.com"),
    ("*.example.com", "*.example.com"),
    ("localhost:3000", "localhost:3000"),
    ("XN--BCHER-KVA.DE", "xn--bcher-kva.de"),
    ("127.0.0.1:8080", "127.0.0.1:8080"),
])
def test_patterns_are_normalized(value, expected):
    assert normalize_domain_pattern(value) == expected


@pytest.mark.parametrize("value", [
    "", " ", "https://example.com", "example.com/path", "exa mple.com", "example.com:0",
    "example.com:99999", "*.", "*example.com", "example..com", "-example.com", "a.*.com",
    "example.com:", "bücher.de", 42, None, ["example.com"], "example.com:080",
    "*." + "a" * 60 + (".b" * 96),
])
def test_bad_patterns_are_refused(value):
    with pytest.raises(Invalid):
        normalize_domain_pattern(value)


@pytest.mark.parametrize("patterns, origin, allowed", [
    ([], "https://anything.test", True),
    (["example.com"], "https://example.com", True),
    (["example.com"], "http://example.com:8080", True),
    (["example.com"], "https://www.example.com", False),
    (["example.com"], "https://example.com.evil.com", False),
    (["example.com"], "https://evilexample.com", False),
    (["*.example.com"], "https://a.b.example.com", True),
    (["*.example.com"], "https://example.com", False),
    (["*.example.com"], "https://evilexample.com", False),
    (["localhost:3000"], "http://localhost:3000", True),
    (["localhost:3000"], "http://localhost:3001", False),
    (["example.com:443"], "https://example.com", True),
    (["example.com:443"], "http://example.com", False),
    (["xn--bcher-kva.de"], "https://xn--bcher-kva.de", True),
    (["example.com"], "null", False),
    (["example.com"], "chrome-extension://example.com", False),
    (["example.com"], "https://example.com:notaport", False),
    (["example.com"], "https://user@example.com", False),
    (["example.com"], "https://example.com#top", False),
    (["example.com"], "HTTPS://Example.COM", True),
    (["example.com"], "https://example.com/", False),
    (["example.com"], "https://example.com.", False),
    (["example.com"], "https://example.com:0", False),
    (["example.com"], "https://example.com:99999", False),
    (["*.example.com"], "https://evil.com%2f.example.com", False),
    (["*.example.com"], "https://evil.com%2F.example.com", False),
    (["*.example.com"], "https://.example.com", False),
    (["*.example.com"], "https://a..example.com", False),
    (["*.example.com"], "https://-a.example.com", False),
    (["*.example.com"], "https://a_b.example.com", False),
    (["*.example.com"], "https://a b.example.com", False),
    (["*.example.com"], "https://evil.com\\.example.com", False),
    (["*.example.com"], "http://[::1].example.com", False),
    (["*.example.com"], "https://xn--bcher-kva.example.com", True),
    (["127.0.0.1:8080"], "http://127.0.0.1:8080", True),
])
def test_origin_matching(patterns, origin, allowed):
    assert origin_allowed(patterns, origin) is allowed
