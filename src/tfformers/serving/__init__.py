"""A server speaking TF Serving's REST API on TF Serving's model layout (`tfformers serve BASE`).

Client code written for TF Serving's REST API works against it unchanged: model status and metadata, and
`:predict` in row (`instances`) and columnar (`inputs`) format, with the same JSON and error envelope. The
modules, one job each:

- `repository`: finds `BASE/NAME/VERSION/saved_model.pb`, loads the newest version, polls for new ones;
- `batching`: merges concurrent predict calls into one signature call on a worker thread, bounded queue;
- `tensors`: JSON values <-> numpy arrays, checked against the signature;
- `app`: the Starlette routes and the `{"error": ...}` envelope;
- `server`: the socket, uvicorn, start and stop.

    from tfformers.serving import ModelServer

    with ModelServer("exports/", port=0) as server:   # answers in a background thread
        print(server.url)
"""

from tfformers.serving.errors import ServingError, StartError
from tfformers.serving.server import ModelServer

__all__ = ["ModelServer", "ServingError", "StartError"]
