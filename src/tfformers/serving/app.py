"""The Starlette app: TF Serving's REST routes, request bodies to tensors and back, the error envelope.

    GET  /v1/models/NAME[/versions/N]             status of the model's versions
    GET  /v1/models/NAME[/versions/N]/metadata    its SignatureDefs
    POST /v1/models/NAME[/versions/N]:predict     run a signature on `instances` or `inputs`

Paths are matched case-insensitively, as TF Serving does. Every error is `{"error": "<message>"}` with the
status of its `ServingError` (400 for a request that does not fit, 404 for an unknown model or version, 413,
503, 504), 400 for an error TensorFlow raises on the request's values, and 500 for anything unexpected; the
server goes on answering other requests whatever one request does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from tfformers.serving.batching import QueueFull
from tfformers.serving.errors import (
    TF_ERROR_STATUS,
    BadRequest,
    DeadlineExceeded,
    MethodNotAllowed,
    NotFound,
    NotImplementedByServer,
    PayloadTooLarge,
    ServingError,
    Unavailable,
)
from tfformers.serving.repository import DEFAULT_SIGNATURE
from tfformers.serving.tensors import decode_inputs, decode_instances, encode_outputs

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                   r"(?:/(?P<metadata>metadata)|:(?P<verb>[A-Za-z]+))?/?", re.IGNORECASE)
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _dumps(content):
    """JSON bytes with NaN and Infinity allowed, as TF Serving writes non-finite floats."""
    return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode("utf-8")


def json_response(content, status=200):
    return Response(content if isinstance(content, bytes) else _dumps(content), status_code=status,
                    media_type="application/json")


def _answer(outputs, row_format):
    return _dumps(encode_outputs(outputs, row_format))


def create_app(repository, batcher, *, max_body_bytes=16 << 20, max_string_bytes=64 << 10, request_timeout_s=30.0):
    """The ASGI app serving `repository` with predict calls through `batcher`."""

    async def endpoint(request):
        try:
            return await _dispatch(request)
        except ServingError as error:
            return json_response({"error": str(error)}, error.status)
        except Exception as error:  # a bug or a failure of the machine: 500, and keep serving
            logger.exception("%s %s failed", request.method, request.url.path)
            message = " ".join(str(error).split())
            return json_response({"error": f"internal error: {type(error).__name__}: {message}"}, 500)

    async def _dispatch(request):
        path = request.url.path
        match = _PATH.fullmatch(path)
        if match is None:
            if path.lower().startswith("/v1/"):
                raise BadRequest(f"Malformed request: {request.method} {path}")
            raise NotFound(f"no such endpoint: {path}; the API is /v1/models/NAME[/versions/N][:predict|/metadata]")
        name, verb = match["name"], (match["verb"] or "").lower()
        version = int(match["version"]) if match["version"] else None
        if verb:
            if verb in ("classify", "regress"):
                raise NotImplementedByServer(f":{verb} is not provided by tfformers serve; use :predict.")
            if verb != "predict":
                raise BadRequest(f"Malformed request: {request.method} {path} (unknown method :{verb})")
            if request.method != "POST":
                raise MethodNotAllowed(f"{path} takes POST, not {request.method}.")
            return await _predict(request, name, version)
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{path} takes GET, not {request.method}.")
        if match["metadata"]:
            return json_response(repository.metadata(name, version))
        return json_response(repository.status(name, version))

    async def _predict(request, name, version):
        body = await _read_body(request)
        servable = repository.get(name, version)
        signature_name, inputs, row_format, rows = await run_in_threadpool(_parse_predict, body, servable)
        function = servable.signatures[signature_name]
        specs = servable.inputs[signature_name]
        mergeable = rows is not None and all(spec.shape.rank and spec.shape[0] is None for spec in specs.values())
        # requests merge only with ones of the same version, signature, input dtypes and inner shapes
        key = (servable.name, servable.version, id(servable), signature_name,
               tuple((key, array.dtype.str, array.shape[1:]) for key, array in sorted(inputs.items())))
        try:
            future = batcher.submit(_caller(function, specs), inputs, key=key if mergeable else None, rows=rows)
        except QueueFull as error:
            raise Unavailable(f"{error}; the server is overloaded, retry later.") from None
        try:
            outputs = await asyncio.wait_for(asyncio.wrap_future(future), request_timeout_s)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"the request took more than {request_timeout_s:g} s (--request-timeout-s); "
                                   "the server is overloaded or the model is slow.") from None
        except Exception as error:
            wrapped = _from_tensorflow(error)
            if wrapped.status >= 500:
                logger.error("signature %r of model %r version %d failed", signature_name, servable.name,
                             servable.version, exc_info=error)
            raise wrapped from error
        return json_response(await run_in_threadpool(_answer, outputs, row_format))  # JSON written off the loop

    async def _read_body(request):
        """The body, refused with 413 from its Content-Length before reading, or while streaming it."""
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise BadRequest(f"invalid Content-Length header: {declared!r}")
            if int(declared) > max_body_bytes:
                raise PayloadTooLarge(f"the request body has {declared} bytes, more than the limit of {max_body_bytes} "
                                      "bytes (--max-body-bytes).")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise PayloadTooLarge(f"the request body is longer than the limit of {max_body_bytes} bytes "
                                      "(--max-body-bytes).")
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse_predict(body, servable):
        """(signature name, {input name: array}, row format?, rows shared by every input or None)."""
        try:
            request = json.loads(body)
        except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8
            raise BadRequest(f"JSON Parse error: {error}") from None
        if not isinstance(request, dict):
            raise BadRequest("the request body must be a JSON object with 'instances' (row format) or 'inputs' "
                             "(columnar format).")
        signature_name = request.get("signature_name") or DEFAULT_SIGNATURE
        if not isinstance(signature_name, str):
            raise BadRequest(f"'signature_name' must be a string, got {json.dumps(signature_name)[:40]}.")
        if signature_name not in servable.signatures:
            raise BadRequest(f'Serving signature name: "{signature_name}" not found in signature def; model '
                             f"{servable.name!r} version {servable.version} has {sorted(servable.signatures)}.")
        specs = servable.inputs[signature_name]
        if ("instances" in request) == ("inputs" in request):
            which = "both" if "instances" in request else "neither"
            raise BadRequest(f"the request has {which} 'instances' and 'inputs': give exactly one of them, "
                             "'instances' (row format) or 'inputs' (columnar format).")
        if "instances" in request:
            arrays = decode_instances(request["instances"], specs, max_string_bytes)
            return signature_name, arrays, True, len(request["instances"])
        arrays = decode_inputs(request["inputs"], specs, max_string_bytes)
        firsts = {array.shape[0] if array.ndim else None for array in arrays.values()}
        return signature_name, arrays, False, firsts.pop() if len(firsts) == 1 else None

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)])


def _caller(function, specs):
    """{input name: array} -> {output name: array}, calling the signature function on the worker thread."""
    import tensorflow as tf

    def call(inputs):
        outputs = function(**{name: tf.constant(value, dtype=specs[name].dtype) for name, value in inputs.items()})
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    return call


def _from_tensorflow(error):
    """A ServingError for what the signature raised: TensorFlow's errors keep their first line and TF Serving's
    status for their code (InvalidArgumentError: 400); anything else is unexpected (500)."""
    import tensorflow as tf

    if isinstance(error, ServingError):
        return error
    if isinstance(error, tf.errors.OpError):
        codes = {getattr(tf.errors, name): name for name in TF_ERROR_STATUS if hasattr(tf.errors, name)}
        wrapped = ServingError(f"{type(error).__name__}: {_first_line(error.message or '')}")
        wrapped.status = TF_ERROR_STATUS.get(codes.get(error.error_code), 500)
        return wrapped
    return ServingError(f"internal error: {type(error).__name__}: {' '.join(str(error).split())}")


def _first_line(message):
    """The line of a TensorFlow error message that says what went wrong: not the 'Graph execution error:'
    heading, the 'Detected at node' stack trace or the node names after it."""
    for line in message.splitlines():
        text = line.strip()
        if (not text or line[:1].isspace() or text.endswith("execution error:")
                or text.startswith(("Detected at node", "<stack traces"))):
            continue
        return re.sub(r"\s*(\[\[\{\{.*|\[Op:[^\]]*\])$", "", text)
    return " ".join(message.split())
