"""Liveness and readiness probes."""

from flask import Blueprint

from .. import db
from ..errors import ApiError

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    if not db.is_ready():
        raise ApiError(503, "service_unavailable", "the database is not answering")
    return {"status": "ok"}
