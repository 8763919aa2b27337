"""The errors of the REST server, each with the HTTP status it answers with.

Every error a request can cause is a `ServingError`: the app turns it into TF Serving's error envelope
`{"error": "<message>"}` with `status`. Status codes follow TF Serving's mapping of its error codes
(INVALID_ARGUMENT 400, NOT_FOUND 404, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, ...).
"""

from __future__ import annotations

from tfformers.errors import ConfigError, InputError, TFFormersError


class ServingError(TFFormersError):
    """A request that cannot be answered; `status` is the HTTP status of the answer."""

    status = 500


class BadRequest(ServingError, InputError):
    """The request is malformed or does not fit the signature (TF Serving's INVALID_ARGUMENT)."""

    status = 400


class NotFound(ServingError):
    """No such model or version is served (TF Serving's NOT_FOUND)."""

    status = 404


class MethodNotAllowed(ServingError):
    """The path exists but not with this HTTP method."""

    status = 405


class PayloadTooLarge(ServingError):
    """The request body is longer than --max-body-bytes."""

    status = 413


class NotImplementedByServer(ServingError):
    """A TF Serving endpoint this server does not provide (:classify, :regress)."""

    status = 501


class Unavailable(ServingError):
    """The request queue is full: the server sheds load instead of growing memory (TF Serving's UNAVAILABLE)."""

    status = 503


class DeadlineExceeded(ServingError):
    """The request waited longer than --request-timeout-s (TF Serving's DEADLINE_EXCEEDED)."""

    status = 504


class StartError(ConfigError):
    """The server cannot start: the base path holds no model, or the address cannot be listened on."""


# TF Serving's HTTP status for each TensorFlow error code (tensorflow_serving/model_servers/http_server.cc)
TF_ERROR_STATUS = {
    "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
    "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503,
    "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
