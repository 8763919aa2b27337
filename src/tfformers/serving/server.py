"""The running server: a socket, the model repository, the batcher and uvicorn, started and stopped together.

The socket is bound first (a port in use fails at once, before minutes of model loading), then the models
are loaded, then uvicorn answers on the socket: in the calling thread (`serve_forever`, the command line:
Ctrl-C stops it) or in a background thread (`start`, for tests and embedding).
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from tfformers.serving.app import create_app
from tfformers.serving.batching import Batcher
from tfformers.serving.errors import StartError
from tfformers.serving.repository import Repository

__all__ = ["ModelServer"]

logger = logging.getLogger(__name__)


class ModelServer:
    """TF Serving's REST API for the models under `base` (see tfformers.serving)."""

    def __init__(self, base, *, host="127.0.0.1", port=8501, model_name=None, poll_seconds=1.0, batching=True,
                 max_batch_size=32, batch_timeout_ms=2.0, max_queue=256, request_timeout_s=30.0,
                 max_body_bytes=16 << 20, max_string_bytes=64 << 10, access_log=False):
        self.host = host
        self.port = port
        self.access_log = access_log
        self.repository = Repository(base, model_name=model_name, poll_seconds=poll_seconds)
        self.batcher = Batcher(enabled=batching, max_batch_size=max_batch_size, timeout_s=batch_timeout_ms / 1000,
                               max_queue=max_queue)
        self.app = create_app(self.repository, self.batcher, max_body_bytes=max_body_bytes,
                              max_string_bytes=max_string_bytes, request_timeout_s=request_timeout_s)
        self._socket = None
        self._uvicorn = None
        self._thread = None

    @property
    def url(self):
        """http://HOST:PORT of the bound socket (the real port when 0 was asked for)."""
        host, port = self._socket.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def prepare(self):
        """Binds the socket, loads the models and starts the poller and the batcher."""
        self.repository.check()  # no model: fail before taking the port
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as error:
            sock.close()
            raise StartError(f"cannot listen on {self.host}:{self.port}: {error.strerror or error} "
                                  "(--host, --port).") from None
        sock.listen(2048)
        sock.set_inheritable(True)
        self._socket = sock
        try:
            self.repository.start()
        except BaseException:
            self.close()
            raise
        self.batcher.start()
        return self

    def _make_uvicorn(self):
        import uvicorn

        config = uvicorn.Config(self.app, log_level="warning", access_log=self.access_log, lifespan="off",
                                log_config=None, timeout_graceful_shutdown=5)
        if self.access_log:
            logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        self._uvicorn = uvicorn.Server(config)
        return self._uvicorn

    def serve_forever(self):
        """Answers requests in this thread until Ctrl-C or SIGTERM, then stops everything."""
        try:
            self._make_uvicorn().run(sockets=[self._socket])
        finally:
            self.close()

    def start(self):
        """prepare(), then answers requests in a background thread; returns once the server accepts them."""
        self.prepare()
        server = self._make_uvicorn()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._socket]},
                                        name="tfformers-serving-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return self

    def close(self):
        """Stops answering, then the poller and the batcher (queued requests are finished first)."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.repository.stop()
        self.batcher.stop()
        if self._socket is not None:
            self._socket.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()
