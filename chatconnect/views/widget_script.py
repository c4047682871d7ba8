"""/widget.js: the embeddable widget, one dependency-free file served as it is written."""

import functools
import hashlib
from importlib import resources

from flask import Blueprint, Response, request
from werkzeug.http import parse_etags

bp = Blueprint("widget_script", __name__)

CACHE_CONTROL = "public, max-age=300"


@functools.cache
def _script() -> tuple[bytes, str]:
    # Read once per process: the file changes only with a release (and a restart).
    source = resources.files("chatconnect").joinpath("widget/widget.js").read_bytes()
    return source, '"' + hashlib.sha256(source).hexdigest()[:32] + '"'


@bp.get("/widget.js")
def widget_script():
    source, etag = _script()
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL,
               # Pages may load it with crossorigin="anonymous" (e.g. for Subresource Integrity).
               "Access-Control-Allow-Origin": "*"}
    if parse_etags(request.headers.get("If-None-Match")).contains_weak(etag[1:-1]):
        return Response(status=304, headers=headers)
    return Response(source, headers=headers, mimetype="text/javascript")
