"""Server-side batching: concurrent predict requests merged into one signature call.

Requests wait in one bounded queue served by one worker thread, so TensorFlow runs off the event loop (it
releases the GIL while it computes) and one call at a time uses every core. The worker takes the oldest
request and, for up to `timeout_s` after it arrived, adds queued requests with the same key (model version,
signature, input dtypes and shapes after dimension 0) until `max_batch_size` rows; their inputs are
concatenated along dimension 0, the signature is called once, and its outputs are split back by rows.

A merged call that raises is retried request by request, so one bad request fails alone; so are outputs
that do not have one row per input row. A full queue refuses new requests (QueueFull) instead of growing.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time

import numpy as np

__all__ = ["Batcher", "QueueFull"]

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """The batcher's queue holds max_queue requests already."""


@dataclasses.dataclass(eq=False)
class _Task:
    function: object  # {input name: array} -> {output name: array}
    inputs: dict  # input name -> array [rows, ...]
    rows: int | None  # dimension 0 shared by every input; None: cannot be merged
    key: object  # requests with equal keys can be merged; None: never
    future: concurrent.futures.Future
    arrived: float


class Batcher:
    """Runs predict calls on a worker thread, merging concurrent ones when `enabled`.

    `calls` counts signature calls and `requests` the requests answered, so `calls < requests` shows that
    requests were merged."""

    def __init__(self, *, enabled=True, max_batch_size=32, timeout_s=0.002, max_queue=256):
        self.enabled = enabled
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.max_queue = max_queue
        self.calls = 0
        self.requests = 0
        self._pending = collections.deque()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._work, name="tfformers-serving-batcher", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Finishes the queued requests, then ends the worker."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def queued(self):
        with self._condition:
            return len(self._pending)

    def submit(self, function, inputs, *, key=None, rows=None):
        """Queues `function(inputs)`; returns a concurrent.futures.Future of its outputs. Raises QueueFull.
        Cancelling the future before the worker takes it drops the request."""
        future = concurrent.futures.Future()
        task = _Task(function, inputs, rows, key if self.enabled and rows else None, future, time.monotonic())
        with self._condition:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            if len(self._pending) >= self.max_queue:
                raise QueueFull(f"the request queue is full ({self.max_queue} requests waiting, --max-queue)")
            self._pending.append(task)
            self._condition.notify()
        return future

    # -------------------------------------------------------------------------------------- the worker

    def _work(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            batch = [task for task in batch if task.future.set_running_or_notify_cancel()]  # drop cancelled
            if batch:
                try:
                    self._run(batch)
                except BaseException as error:  # never leave a request waiting, never end the worker
                    for task in batch:
                        if not task.future.done():
                            task.future.set_exception(error)

    def _next_batch(self):
        """The oldest request and, within its time window, queued requests with its key (up to
        max_batch_size rows); None when stopping with nothing queued."""
        with self._condition:
            while not self._pending:
                if self._stopping:
                    return None
                self._condition.wait()
            first = self._pending.popleft()
            batch, rows = [first], first.rows or 0
            if first.key is None:
                return batch
            deadline = first.arrived + self.timeout_s
            while rows < self.max_batch_size:
                for task in list(self._pending):
                    if task.key == first.key and rows + task.rows <= self.max_batch_size:
                        self._pending.remove(task)
                        batch.append(task)
                        rows += task.rows
                remaining = deadline - time.monotonic()
                if rows >= self.max_batch_size or remaining <= 0 or self._stopping:
                    break
                self._condition.wait(remaining)
            return batch

    def _run(self, batch):
        if len(batch) == 1:
            self._run_alone(batch[0])
            return
        names = list(batch[0].inputs)
        merged = {name: np.concatenate([task.inputs[name] for task in batch]) for name in names}  # [all rows, ...]
        try:
            outputs = self._call(batch[0].function, merged)
        except Exception:  # one request may be at fault: each gets its own answer
            for task in batch:
                self._run_alone(task)
            return
        total = sum(task.rows for task in batch)
        if not all(np.ndim(value) and np.shape(value)[0] == total for value in outputs.values()):
            for task in batch:  # outputs not split by rows (e.g. a scalar): answer each request on its own
                self._run_alone(task)
            return
        start = 0
        for task in batch:
            task.future.set_result({name: value[start:start + task.rows] for name, value in outputs.items()})
            start += task.rows
        self.requests += len(batch)
        logger.debug("merged %d requests (%d rows) into one call", len(batch), total)

    def _run_alone(self, task):
        try:
            result = self._call(task.function, task.inputs)
        except Exception as error:
            task.future.set_exception(error)
        else:
            task.future.set_result(result)
        self.requests += 1

    def _call(self, function, inputs):
        self.calls += 1
        return function(inputs)
