"""JSON values <-> numpy arrays, as TF Serving's REST predict API maps them.

Requests come in row format (`instances`: one item per example, stacked along dimension 0) or columnar format
(`inputs`: one tensor per input name). Strings are JSON strings (UTF-8) or `{"b64": "..."}` objects for binary
values; numbers are JSON numbers, including NaN and Infinity for floats. Answers mirror the request's format:
`predictions` (one item per example) or `outputs` (one tensor per output name); a single output is given bare,
without its name. String outputs whose name ends in `_bytes` come back as `{"b64": "..."}`.

Every check raises `BadRequest` naming the input, the instance and what was expected, so a client sees what
to fix; nothing here calls TensorFlow.
"""

from __future__ import annotations

import base64
import binascii
import math

import numpy as np
import tensorflow as tf

from tfformers.serving.errors import BadRequest, ServingError

__all__ = ["decode_instances", "decode_inputs", "encode_outputs", "shape_text", "dtype_name"]


def dtype_name(dtype):
    """TF Serving's name of a dtype, e.g. DT_FLOAT."""
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(tf.as_dtype(dtype).as_datatype_enum)


def shape_text(shape):
    """A shape as TF Serving writes it, unknown sizes as -1: [-1, 128]; unknown rank as '(any shape)'."""
    shape = tf.TensorShape(shape)
    if shape.rank is None:
        return "(any shape)"
    return "[" + ", ".join("-1" if size is None else str(size) for size in shape.as_list()) + "]"


# ------------------------------------------------------------------------------------------------ requests


def decode_instances(instances, specs, max_string_bytes):
    """Row format: {input name: array [instances, *instance shape]} from a list of instances.

    With one input, an instance may be its bare value; otherwise each instance is an object naming every
    input. All instances of an input must have one shape (they are stacked)."""
    names = sorted(specs)
    if not isinstance(instances, list):
        raise BadRequest("'instances' must be a list with one item per example (row format); for a single tensor "
                         "use 'inputs' (columnar format).")
    if not instances:
        raise BadRequest("'instances' is empty: an empty batch has nothing to predict; send at least one instance.")
    named = [isinstance(item, dict) and not _is_b64(item) for item in instances]
    if all(named):
        rows = instances
    elif any(named):
        raise BadRequest(f"instance {named.index(not named[0])} is {'a bare value' if named[0] else 'an object'} "
                         f"but instance 0 is {'an object' if named[0] else 'a bare value'}: give every instance "
                         "the same way.")
    elif len(names) == 1:
        rows = [{names[0]: item} for item in instances]
    else:
        raise BadRequest(f"the signature takes {len(names)} inputs {names}: give each instance as an object "
                         f"naming them, e.g. {{{', '.join(repr(n) + ': ...' for n in names)}}}.")
    for index, row in enumerate(rows):
        _check_names(row, names, f"instance {index}")
    arrays = {}
    for name in names:
        spec = specs[name]
        if spec.shape.rank == 0:
            raise BadRequest(f"input {name!r} is a scalar (shape []), which has no batch dimension for the row "
                             "format: send it with 'inputs' (columnar format).")
        column = [_to_array(row[name], spec.dtype, f"instance {index}, input {name!r}", max_string_bytes, None)
                  for index, row in enumerate(rows)]
        for index, array in enumerate(column):
            if array.shape != column[0].shape:
                raise BadRequest(f"input {name!r}: instance 0 has shape {list(column[0].shape)} but instance {index} "
                                 f"has {list(array.shape)}; every instance must have the same shape (pad them).")
        arrays[name] = np.stack(column)  # [instances, *instance shape]
        _check_shape(arrays[name], spec, name)
    return arrays


def decode_inputs(inputs, specs, max_string_bytes):
    """Columnar format: {input name: array} from an object naming the inputs, or a bare tensor when the
    signature has one input. Inputs need not share dimension 0."""
    names = sorted(specs)
    if isinstance(inputs, dict) and not _is_b64(inputs):
        given = inputs
    elif len(names) == 1:
        given = {names[0]: inputs}
    else:
        raise BadRequest(f"the signature takes {len(names)} inputs {names}: give 'inputs' as an object naming them.")
    _check_names(given, names, "'inputs'")
    arrays = {}
    for name in names:
        spec = specs[name]
        array = _to_array(given[name], spec.dtype, f"input {name!r}", max_string_bytes, "row")
        if array.ndim and array.shape[0] == 0:
            raise BadRequest(f"input {name!r} is empty (shape {list(array.shape)}): an empty batch has nothing to "
                             "predict.")
        _check_shape(array, spec, name)
        arrays[name] = array
    return arrays


def _check_names(given, names, where):
    unknown = sorted(set(given) - set(names))
    missing = sorted(set(names) - set(given))
    if unknown:
        raise BadRequest(f"{where} has unknown input{'s' if len(unknown) > 1 else ''} {unknown}; the signature's "
                         f"inputs are {names}.")
    if missing:
        raise BadRequest(f"{where} lacks input{'s' if len(missing) > 1 else ''} {missing}; the signature's inputs "
                         f"are {names}.")


def _check_shape(array, spec, name):
    if not spec.shape.is_compatible_with(array.shape):
        raise BadRequest(f"input {name!r} takes shape {shape_text(spec.shape)}, got {list(array.shape)}.")


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _to_array(value, dtype, where, max_string_bytes, row_word):
    """One JSON tensor (a value or nested lists) as a numpy array of `dtype`. `row_word` names dimension 0 in
    errors about a string (columnar format: 'row'); None when `where` already names the instance."""
    dtype = tf.as_dtype(dtype)
    if dtype == tf.string:
        return _strings(value, where, max_string_bytes, row_word)
    if not (dtype.is_bool or dtype.is_integer or dtype.is_floating):
        raise BadRequest(f"{where} has dtype {dtype_name(dtype)}, which the JSON API cannot carry.")
    try:
        array = np.array(value)
    except (ValueError, OverflowError):
        _nested_shape(value, where)  # raises the ragged-list error
        raise BadRequest(f"{where}: cannot read {_preview(value)} as {dtype_name(dtype)}.") from None
    kind = array.dtype.kind
    expected = "true or false" if dtype.is_bool else "integers" if dtype.is_integer else "numbers"
    if kind in "OUS":  # a string, null, object or an integer beyond 64 bits somewhere
        bad = next(leaf for leaf in _leaves(value) if isinstance(leaf, bool) or not isinstance(leaf, (int, float)))
        raise BadRequest(f"{where} takes {expected} ({dtype_name(dtype)}), got {_describe(bad)}.")
    if dtype.is_bool:
        if kind != "b":
            raise BadRequest(f"{where} takes true or false (DT_BOOL), got {_describe(array.flat[0].item())}.")
        return array
    if kind == "b":
        raise BadRequest(f"{where} takes {expected} ({dtype_name(dtype)}), got a boolean.")
    if dtype.is_integer:
        if kind == "f":
            fractional = array[~np.isfinite(array) | (array != np.round(array))]
            if fractional.size:
                raise BadRequest(f"{where} takes integers ({dtype_name(dtype)}), got {fractional.flat[0]!r}.")
        info = np.iinfo(dtype.as_numpy_dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            bad = array.flat[np.argmax((array < info.min) | (array > info.max))]
            raise BadRequest(f"{where}: {bad} is out of range for {dtype_name(dtype)} ({info.min} to {info.max}).")
    return array.astype(dtype.as_numpy_dtype)


def _strings(value, where, max_string_bytes, row_word):
    """A string tensor as an object array of bytes: JSON strings are UTF-8, {"b64": ...} is binary."""
    shape = _nested_shape(value, where)
    leaves = list(_leaves(value))
    per_row = math.prod(shape[1:]) if shape else 1
    data = []
    for index, leaf in enumerate(leaves):
        if isinstance(leaf, str):
            item = leaf.encode("utf-8", "surrogatepass")
        elif _is_b64(leaf) and isinstance(leaf["b64"], str):
            try:
                item = base64.b64decode(leaf["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest(f"{where}: {_preview(leaf)} is not valid base64.") from None
        else:
            raise BadRequest(f"{where} takes strings (DT_STRING), got {_describe(leaf)}.")
        if len(item) > max_string_bytes:
            at = f", {row_word} {index // per_row}" if row_word and shape and per_row else ""
            raise BadRequest(f"{where}{at}: a string of {len(item)} bytes is longer than the limit of "
                             f"{max_string_bytes} bytes (--max-string-bytes).")
        data.append(item)
    array = np.empty(len(data), dtype=object)
    array[:] = data
    return array.reshape(shape)


def _nested_shape(value, where):
    """The shape of nested lists, checking that they are rectangular."""
    if not isinstance(value, list):
        return ()
    if not value:
        return (0,)
    inner = _nested_shape(value[0], where)
    for index, item in enumerate(value[1:], 1):
        other = _nested_shape(item, where)
        if other != inner:
            raise BadRequest(f"{where} is a ragged nested list: item 0 has shape {list(inner)} but item {index} has "
                             f"{list(other)}; pad the values to one shape.")
    return (len(value), *inner)


def _leaves(value):
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, (int, float)):
        return f"a number ({value})" if not isinstance(value, int) or abs(value) < 2**63 else f"{value} (too large)"
    if isinstance(value, str):
        return f"a string ({_preview(value)})"
    if _is_b64(value):
        return "a binary {\"b64\": ...} value"
    return f"an object ({_preview(value)})" if isinstance(value, dict) else f"{_preview(value)}"


def _preview(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ------------------------------------------------------------------------------------------------ answers


def encode_outputs(outputs, row_format):
    """The JSON answer for {output name: array}: `predictions` (row format: one item per example; each an
    object of outputs, or the bare value with one output) or `outputs` (columnar: an object of outputs, or
    the bare tensor with one output)."""
    names = sorted(outputs)
    values = {name: _to_json(outputs[name], name) for name in names}
    if not row_format:
        return {"outputs": values[names[0]] if len(names) == 1 else values}
    batch = None
    for name in names:
        shape = np.shape(outputs[name])
        if not shape:
            raise BadRequest(f"output {name!r} is a scalar, which the row format cannot split into predictions; "
                             "send the request with 'inputs' (columnar format).")
        if batch is None:
            batch = shape[0]
        elif shape[0] != batch:
            raise BadRequest(f"output {name!r} has {shape[0]} rows but {names[0]!r} has {batch}: the row format "
                             "needs outputs of one batch size; send the request with 'inputs' (columnar format).")
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    return {"predictions": [{name: values[name][index] for name in names} for index in range(batch)]}


def _to_json(array, name):
    """An output array as nested lists of JSON values."""
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind in "OS":  # tf.string comes back as an object array of bytes
        if name.endswith("_bytes"):
            convert = np.vectorize(lambda item: {"b64": base64.b64encode(item).decode("ascii")}, otypes=[object])
        else:
            convert = np.vectorize(lambda item: item.decode("utf-8", "replace"), otypes=[object])
        return convert(array).tolist() if array.size else array.tolist()
    if kind == "f" and array.dtype.itemsize < 8:
        # float32/float16 in their shortest decimal form (0.1, not 0.10000000149011612), as TF Serving writes them
        return array.astype(str).astype(np.float64).tolist()
    if kind in "biuf":
        return array.tolist()
    raise ServingError(f"output {name!r} has dtype {array.dtype}, which the JSON API cannot carry.")
