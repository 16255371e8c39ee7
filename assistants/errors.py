"""Errors the runtime raises, each carrying OpenAI's error shape and HTTP status."""

from __future__ import annotations


class APIError(Exception):
    """Base error: `status`, `type`, `code`, `param` as in OpenAI's `{"error": {...}}` body.

    A subclass names its HTTP status and OpenAI error type in its bases,
    `class NotFound(APIError, status=404, type="invalid_request_error")`, or inherits its parent's.
    """

    status = 500
    type = "server_error"

    def __init_subclass__(cls, *, status: int | None = None, type: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if type is not None:
            cls.type = type

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class BadRequest(APIError, status=400, type="invalid_request_error"):
    """The request is malformed or asks for something invalid."""


class Unauthorized(APIError, status=401, type="invalid_request_error"):
    """No API key, or not one the server accepts."""


class NotFound(APIError, status=404, type="invalid_request_error"):
    """No object with that id (see `not_found`)."""


class Conflict(APIError, status=409, type="invalid_request_error"):
    """The request clashes with the object's current state."""


class RateLimited(APIError, status=429, type="rate_limit_error"):
    """Too many requests for now; try again later."""


class Unsupported(BadRequest):
    """A request the runtime understands but does not support; says so by name."""


def not_found(kind: str, obj_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"No {kind} found with id '{obj_id}'.", param=param, code="not_found")
