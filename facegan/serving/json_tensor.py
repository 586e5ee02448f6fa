"""TF Serving's JSON tensors: a REST predict body -> arrays for a signature, and arrays -> the
response's JSON, kept apart from HTTP as TF Serving keeps `json_tensor` apart from its handler.

Row format (`"instances"`: a list, one item per row) and columnar format (`"inputs"`: one value
per alias), the one-input and one-output shorthands, and `{"b64": ...}` for string tensors whose
alias ends in `_bytes`. Malformed values are the client's error: INVALID_ARGUMENT, as on gRPC.
"""

from __future__ import annotations

import base64

import numpy as np

from facegan.client.errors import ServingError
from facegan.client.tensors import DT_STRING, DTYPE_NAMES, DTYPES
from facegan.serving.predictor import INVALID, ArrayInput, names
from facegan.serving.servable import Signature


def invalid(message: str) -> ServingError:
    return ServingError(INVALID, message)


def json_value(array: np.ndarray, alias: str):
    """An output as nested lists; string tensors as text, or `{"b64": ...}` when the alias ends in _bytes."""
    if array.dtype.kind != "O":
        return array.tolist()
    if alias.endswith("_bytes"):
        encode = lambda b: {"b64": base64.b64encode(b).decode("ascii")}
    else:
        encode = lambda b: b.decode("utf-8", "replace")
    flat = [encode(v) for v in array.ravel()]
    return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.ndim > 1 else flat


def json_array(value, alias: str, dtype: int) -> np.ndarray:
    """A JSON value -> an array of the signature's dtype, refusing ragged lists, text or floats where
    numbers or integers belong, and integers out of the dtype's range."""
    if dtype == DT_STRING:

        def text(v):
            if isinstance(v, dict) and set(v) == {"b64"} and isinstance(v["b64"], str):
                return base64.b64decode(v["b64"], validate=True)
            if isinstance(v, str):
                return v.encode("utf-8")
            raise invalid(f"input '{alias}' must hold strings or {{\"b64\": ...}} objects")

        return np.vectorize(text, otypes=[object])(np.asarray(value, dtype=object))
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise invalid(f"input '{alias}' is a ragged list: every row must have the same length") from None
    if array.size == 0:
        return array.astype(DTYPES[dtype][0])
    target = np.dtype(DTYPES[dtype][0])
    allowed = {"i": "iu", "u": "iu", "f": "iuf", "b": "b"}[target.kind]
    if array.dtype.kind not in allowed:
        got = {"f": "floats", "U": "text", "b": "booleans", "O": "mixed values or numbers out of range"}.get(
            array.dtype.kind, str(array.dtype)
        )
        raise invalid(f"input '{alias}' must hold {DTYPE_NAMES[dtype]} values, got {got}")
    if target.kind in "iu":
        info = np.iinfo(target)
        if array.min() < info.min or array.max() > info.max:
            raise invalid(f"input '{alias}' has values outside the {DTYPE_NAMES[dtype]} range")
    return array.astype(target)


def json_inputs(body: dict, signature: Signature) -> dict[str, ArrayInput]:
    """{alias: input} from a predict body (row or columnar format), for this signature."""
    row = "instances" in body
    if row == ("inputs" in body):
        raise invalid('a predict body needs exactly one of "instances" (rows) or "inputs" (columns)')
    aliases = list(signature.inputs)
    values = body["instances" if row else "inputs"]
    if row and not isinstance(values, list):
        raise invalid('"instances" must be a list with one item per row')
    by_alias: dict = {}
    named = isinstance(values, dict) and set(values) != {"b64"}  # a tensor is never an object, but b64 bytes
    if row:
        named = bool(values) and all(isinstance(v, dict) and set(v) != {"b64"} for v in values)
    if len(aliases) == 1 and not named:
        by_alias[aliases[0]] = values
    elif row:
        for i, instance in enumerate(values):
            if not isinstance(instance, dict):
                raise invalid(f"instance {i} must be an object of the inputs {aliases}")
            for alias in set(instance) | set(aliases):
                if alias not in instance or alias not in aliases:
                    raise invalid(f"instance {i} must name exactly the inputs {aliases}")
                by_alias.setdefault(alias, []).append(instance[alias])
    elif isinstance(values, dict):
        by_alias = values
    else:
        raise invalid(f'"inputs" must be an object of the inputs {aliases}')
    unknown = [alias for alias in by_alias if alias not in signature.inputs]
    if unknown:  # before any value is converted: 300,000 invented names once cost 2 s of CPU
        missing = sorted(set(aliases) - set(by_alias))
        raise invalid(f"inputs do not match the signature: missing {names(missing)}, unexpected {names(unknown)}")
    return {alias: ArrayInput(json_array(value, alias, signature.inputs[alias].dtype), signature.inputs[alias].dtype)
            for alias, value in by_alias.items()}  # fmt: skip


def json_outputs(outputs: dict[str, np.ndarray], row: bool) -> dict:
    """TF Serving's shapes: one output -> the bare value; several -> an object per row or per alias."""
    if len(outputs) == 1:
        [(alias, array)] = outputs.items()
        return {"predictions" if row else "outputs": json_value(array, alias)}
    values = {alias: json_value(array, alias) for alias, array in outputs.items()}
    if not row:
        return {"outputs": values}
    batch = len(next(iter(values.values())))
    return {"predictions": [{alias: v[i] for alias, v in values.items()} for i in range(batch)]}
