"""One JSON error envelope for every failure, raised as ApiError or produced by the framework."""

import logging

import psycopg
from flask import jsonify
from psycopg_pool import PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An expected failure, turned into the error envelope at the HTTP edge."""

    def __init__(self, status, code, message, fields=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}


def not_found(what="resource"):
    return ApiError(404, "not_found", f"{what} not found")


def validation_error(fields, message="the request is invalid"):
    return ApiError(422, "validation_error", message, fields=fields)


def error_response(status, code, message, fields=None, headers=None):
    error = {"code": code, "message": message}
    if code == "validation_error":
        error["fields"] = fields or {}
    response = jsonify({"error": error})
    response.status_code = status
    response.headers.extend(headers or {})
    return response


def _api_error(error: ApiError):
    return error_response(error.status, error.code, error.message, error.fields, error.headers)


def _http_exception(error: HTTPException):
    status = error.code or 500
    code = CODES_BY_STATUS.get(status, "bad_request" if status < 500 else "internal_error")
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return error_response(status, code, error.description or code.replace("_", " "),
                          headers=headers)


def _database_unavailable(error):
    log.warning("database unavailable: %s", error)
    return error_response(503, "service_unavailable", "the database is not available; retry shortly")


def _unexpected(error):
    log.exception("unhandled error")
    return error_response(500, "internal_error", "something went wrong on our side")


def init_app(app) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(PoolTimeout, _database_unavailable)
    app.register_error_handler(psycopg.OperationalError, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
