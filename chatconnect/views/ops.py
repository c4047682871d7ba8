"""Liveness and readiness probes, and the API document."""

import functools
import json
from importlib import resources

import yaml
from flask import Blueprint, Response

from .. import db
from ..errors import ApiError

bp = Blueprint("ops", __name__)


def api_document() -> dict:
    """The OpenAPI document shipped in the package (chatconnect/openapi.yaml)."""
    source = resources.files("chatconnect").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(source)


@functools.cache
def _api_document_json() -> bytes:
    # Parsed once per process: the YAML never changes while the server runs.
    return json.dumps(api_document(), ensure_ascii=False).encode("utf-8")


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    if not db.is_ready():
        raise ApiError(503, "service_unavailable", "the database is not answering")
    return {"status": "ok"}


@bp.get("/api/openapi.json")
def openapi_document():
    response = Response(_api_document_json(), mimetype="application/json")
    # Public and credential-free, so viewers served from any origin may load it.
    response.access_control_allow_origin = "*"
    return response
