"""Public answers that browsers and shared caches may keep: a strong ETag, revalidated with
If-None-Match, and Cache-Control."""

import hashlib

from flask import Response, request
from werkzeug.http import parse_etags

PUBLIC_CACHE_CONTROL = "public, max-age=60"


def cacheable_json(body: str, tag_salt: str) -> Response:
    """`body` (JSON text) with its ETag, or 304 when the request already holds that tag.

    `tag_salt` goes into the tag too: the public key, so that rotating it changes every tag."""
    digest = hashlib.sha256(f"{tag_salt}\n{body}".encode()).hexdigest()[:32]
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": PUBLIC_CACHE_CONTROL}
    # If-None-Match uses the weak comparison (RFC 9110, 13.1.2), and `*` matches.
    if parse_etags(request.headers.get("If-None-Match")).contains_weak(digest):
        return Response(status=304, headers=headers)
    return Response(body, headers=headers, mimetype="application/json")
