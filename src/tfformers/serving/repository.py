"""The models on disk: finding them, loading their newest version, and polling for new versions.

TF Serving's layout: `BASE/NAME/VERSION/saved_model.pb` (+ `variables/`), VERSION a whole number. BASE may also
be a single model's folder (`BASE/VERSION/...`). Hidden and non-numeric folders are ignored: exporters write a
version into a hidden folder and rename it, so a visible numeric folder is complete.

As TF Serving's default version policy, each model serves its newest version. A poller thread looks at the
file system every `poll_seconds`: a newer version is loaded while the current one keeps serving, then swapped
in; a version that fails to load is reported in the model's status (state END with the error) and the current
version keeps serving. It is tried again only when its saved_model.pb changes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

from tfformers.serving.errors import NotFound, StartError

__all__ = ["Repository", "Servable", "load_servable"]

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"


@dataclasses.dataclass(frozen=True)
class Servable:
    """One loaded version of a model: its callable signatures, their input specs and their SignatureDefs."""

    name: str
    version: int
    path: str
    loaded: object  # the tf.saved_model.load object; the signatures need it alive
    signatures: dict  # signature name -> ConcreteFunction (keyword arguments only)
    inputs: dict  # signature name -> {input name: tf.TensorSpec}
    signature_defs: dict  # signature name -> SignatureDef as TF Serving's metadata JSON shows it


def load_servable(name, version, path):
    """Loads `path` with tf.saved_model.load, and its SignatureDefs from saved_model.pb for the metadata."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    loaded = tf.saved_model.load(path)
    signatures = dict(loaded.signatures)
    inputs = {key: dict(function.structured_input_signature[1]) for key, function in signatures.items()}
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graphs = [graph for graph in proto.meta_graphs if "serve" in graph.meta_info_def.tags] or proto.meta_graphs[:1]
    defs = {key: json_format.MessageToDict(value, always_print_fields_with_no_presence=True,
                                           preserving_proto_field_name=True)
            for key, value in (graphs[0].signature_def.items() if graphs else ())}
    return Servable(name, version, path, loaded, signatures, inputs, defs)


def _versions(folder):
    """{version: path} of the visible numeric subfolders of `folder`."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    return {int(entry.name): entry.path for entry in entries
            if entry.name.isdigit() and entry.is_dir() and not entry.name.startswith(".")}


def _fingerprint(path):
    """What identifies a version's files: a failed load is retried when this changes."""
    try:
        stat = os.stat(os.path.join(path, "saved_model.pb"))
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@dataclasses.dataclass
class _VersionStatus:
    state: str  # LOADING, AVAILABLE or END (TF Serving's ModelVersionStatus.State)
    error: str = ""
    fingerprint: object = None


class _Model:
    """One model name: its current servable and the status of every version seen."""

    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.servable = None
        self.statuses = {}  # version -> _VersionStatus


class Repository:
    """The served models under `base`, kept at their newest version by a poller thread."""

    def __init__(self, base, *, model_name=None, poll_seconds=1.0, loader=load_servable):
        self.base = os.path.abspath(base)
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self._loader = loader
        self._models = {}  # name -> _Model
        self._lock = threading.Lock()  # guards _models and each model's servable/statuses
        self._stop = threading.Event()
        self._thread = None

    # -------------------------------------------------------------------------------------- discovery

    def _discover(self):
        """{model name: folder}: BASE itself when it has version folders (or --model-name is given), else
        every visible subfolder of BASE that has version folders."""
        if not os.path.isdir(self.base):
            raise StartError(f"no such folder: {self.base!r} (the model base path).")
        if self.model_name or _versions(self.base):
            return {self.model_name or os.path.basename(self.base): self.base}
        found = {}
        for entry in sorted(os.scandir(self.base), key=lambda entry: entry.name):
            if not entry.name.startswith(".") and entry.is_dir() and _versions(entry.path):
                found[entry.name] = entry.path
        return found

    def check(self):
        """Raises StartError if BASE holds no model (a quick look, nothing loaded)."""
        if not self._discover():
            raise StartError(
                f"{self.base!r} holds no model: expected version folders ({self.base}/1/saved_model.pb) or model "
                f"folders ({self.base}/NAME/1/saved_model.pb)."
            )

    def start(self):
        """Loads the newest version of every model, then polls in a background thread. Raises
        StartError if BASE holds no model."""
        self.check()
        self.poll()
        self._thread = threading.Thread(target=self._poll_loop, name="tfformers-serving-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _poll_loop(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # a poll must never stop the poller (e.g. BASE briefly unreadable)
                logger.exception("polling %s failed", self.base)

    def poll(self):
        """One look at the file system: new models are added, each model moves to its newest version."""
        for name, path in self._discover().items():
            with self._lock:
                model = self._models.setdefault(name, _Model(name, path))
            self._update(model)

    def _update(self, model):
        versions = _versions(model.path)
        current = model.servable
        if not versions:
            if current is not None:  # every version folder is gone: unload, as TF Serving does
                with self._lock:
                    model.statuses[current.version].state = "END"
                    model.servable = None
                logger.info("model %r: no version left in %s; unloaded version %d", model.name, model.path,
                            current.version)
            return
        newest = max(versions)
        if current is not None and current.version == newest:
            return
        fingerprint = _fingerprint(versions[newest])
        status = model.statuses.get(newest)
        if status is not None and status.error and status.fingerprint == fingerprint:
            return  # failed before, files unchanged: keep serving the current version
        with self._lock:
            model.statuses[newest] = _VersionStatus("LOADING", fingerprint=fingerprint)
        start = time.perf_counter()
        try:
            servable = self._loader(model.name, newest, versions[newest])
        except Exception as error:  # any load failure is reported in the status, never fatal
            message = " ".join(str(error).split()) or type(error).__name__
            with self._lock:
                model.statuses[newest] = _VersionStatus("END", f"{type(error).__name__}: {message}", fingerprint)
            logger.warning("model %r: version %d failed to load from %s: %s", model.name, newest,
                           versions[newest], message)
            return
        with self._lock:
            model.servable = servable
            model.statuses[newest].state = "AVAILABLE"
            if current is not None:
                model.statuses[current.version].state = "END"
        logger.info("model %r: serving version %d from %s (loaded in %.1f s)", model.name, newest,
                    versions[newest], time.perf_counter() - start)

    # ------------------------------------------------------------------------------------------ lookups

    @property
    def names(self):
        with self._lock:
            return sorted(self._models)

    def get(self, name, version=None):
        """The servable for a request: the model's current version, or `version` if that is the one loaded.
        NotFound otherwise, in TF Serving's words."""
        with self._lock:
            model = self._models.get(name)
            servable = model.servable if model is not None else None
        request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        if model is None:
            raise NotFound(f"Servable not found for request: {request} (served models: {', '.join(self.names)})")
        if servable is None or (version is not None and servable.version != version):
            serving = f"version {servable.version} is served" if servable else "no version is loaded"
            raise NotFound(f"Servable not found for request: {request} ({serving})")
        return servable

    def status(self, name, version=None):
        """TF Serving's GetModelStatusResponse as JSON: every version seen, newest first."""
        with self._lock:
            model = self._models.get(name)
            statuses = dict(model.statuses) if model is not None else {}
        if not statuses:
            raise NotFound(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in statuses:
                raise NotFound(f"Could not find version {version} of model {name}")
            statuses = {version: statuses[version]}
        return {"model_version_status": [
            {"version": str(number), "state": status.state,
             "status": {"error_code": "UNKNOWN" if status.error else "OK", "error_message": status.error}}
            for number, status in sorted(statuses.items(), reverse=True)
        ]}

    def metadata(self, name, version=None):
        """TF Serving's GetModelMetadataResponse as JSON: the model spec and every SignatureDef."""
        servable = self.get(name, version)
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": servable.signature_defs}},
        }
