"""NumPy <-> TensorProto without TensorFlow (works with the official or the light message classes).

TF Serving may answer with either encoding: `tensor_content` (raw little-endian bytes) or the
typed repeated fields (`float_val`, `int_val`, ...), which is what it fills by default. Both
decode here, with TensorFlow's rule that a single typed value fills the whole shape.
"""

from __future__ import annotations

import math

import numpy as np

# DataType enum values from tensorflow/core/framework/types.proto, with the typed field each uses.
DTYPES = {
    1: (np.float32, "float_val"),  # DT_FLOAT
    2: (np.float64, "double_val"),  # DT_DOUBLE
    3: (np.int32, "int_val"),  # DT_INT32
    4: (np.uint8, "int_val"),  # DT_UINT8
    5: (np.int16, "int_val"),  # DT_INT16
    6: (np.int8, "int_val"),  # DT_INT8
    9: (np.int64, "int64_val"),  # DT_INT64
    10: (np.bool_, "bool_val"),  # DT_BOOL
    17: (np.uint16, "int_val"),  # DT_UINT16
    22: (np.uint32, "uint32_val"),  # DT_UINT32
    23: (np.uint64, "uint64_val"),  # DT_UINT64
    7: (np.object_, "string_val"),  # DT_STRING: bytes objects, e.g. the PNGs of from_seed_png
}
DT_STRING = 7
DTYPE_ENUM = {np.dtype(t): enum for enum, (t, _) in DTYPES.items()}
DTYPE_NAMES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    9: "int64",
    10: "bool",
    17: "uint16",
    22: "uint32",
    23: "uint64",
    7: "string",
}


class TensorError(ValueError):
    """A TensorProto that cannot be decoded (unsupported dtype, wrong number of values, ...)."""


def dtype_name(enum: int) -> str:
    return DTYPE_NAMES.get(enum, f"DataType {enum}")


def shape_of(proto) -> list[int]:
    return [d.size for d in proto.tensor_shape.dim]


# A decoder never allocates more than this from what a message claims (1 GiB of float32): a
# 50-byte TensorProto may declare a shape of billions of values with a single typed value that
# "fills" it. The server passes the far smaller bound its signature and --max-batch allow.
MAX_ELEMENTS = 1 << 28


def declared_shape(proto) -> list[int]:
    """The shape a TensorProto claims, checked to be a real shape (known rank, no negative sizes)."""
    if proto.tensor_shape.unknown_rank:
        raise TensorError("tensor has unknown rank")
    shape = shape_of(proto)
    if any(d < 0 for d in shape):
        raise TensorError(f"tensor shape {shape} has a negative dimension")
    return shape


def to_numpy(proto, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """Decode, checking the claimed shape against `max_elements` and against the bytes or values
    actually sent before anything is allocated."""
    if proto.dtype not in DTYPES:
        raise TensorError(f"unsupported tensor dtype {dtype_name(proto.dtype)}")
    dtype, field = DTYPES[proto.dtype]
    shape = declared_shape(proto)
    count = math.prod(shape)  # a Python int: dims whose product overflows int64 are just large
    if count > max_elements:
        raise TensorError(f"tensor shape {shape} claims {count} values; at most {max_elements} are accepted")
    if proto.dtype == DT_STRING:  # only ever typed values (TensorFlow has no tensor_content for strings)
        values = proto.string_val
        if len(values) not in (count, 1):
            raise TensorError(f"tensor has {len(values)} string_val values, shape {shape} needs {count}")
        array = np.empty(count, dtype=object)
        array[:] = list(values) if len(values) == count else [values[0]] * count
        return array.reshape(shape)
    if proto.tensor_content:
        itemsize = np.dtype(dtype).itemsize
        size = len(proto.tensor_content)
        if size % itemsize:
            raise TensorError(
                f"tensor_content holds {size} bytes, not a whole number of {np.dtype(dtype).name} values "
                f"({itemsize} bytes each)"
            )
        if size // itemsize != count:
            raise TensorError(f"tensor_content holds {size // itemsize} values, shape {shape} needs {count}")
        data = np.frombuffer(proto.tensor_content, dtype=np.dtype(dtype).newbyteorder("<"))
        return data.astype(dtype, copy=False).reshape(shape)
    values = getattr(proto, field)
    if len(values) == count:
        return typed_values(values, dtype, field).reshape(shape)
    if len(values) == 1:  # TensorFlow's convention: one value fills the tensor
        return np.full(shape, typed_values(values, dtype, field)[0], dtype=dtype)
    if count == 0 and len(values) == 0:
        return np.zeros(shape, dtype)
    raise TensorError(f"tensor has {len(values)} {field} values, shape {shape} needs {count}")


def typed_values(values, dtype, field: str) -> np.ndarray:
    """A typed repeated field as `dtype`. Narrow integer types share a wider field (uint8 and int16
    travel in int_val), so a value outside the dtype's range is refused, not wrapped or raised as
    NumPy's OverflowError."""
    target = np.dtype(dtype)
    if target.kind not in "iu":
        return np.asarray(values, dtype=target)
    wide = np.asarray(values, dtype=np.uint64 if field == "uint64_val" else np.int64)
    info = np.iinfo(target)
    outside = (wide < info.min) | (wide > info.max)
    if outside.any():
        raise TensorError(
            f"{field} value {wide[outside][0]} is out of range for {target.name} ({info.min}..{info.max})"
        )
    return wide.astype(target)


def from_numpy(array, proto_class, typed_fields: bool = False):
    """Encode as `tensor_content` (compact, the default) or as typed fields like TF Serving's default."""
    array = np.asarray(array)
    enum = DT_STRING if array.dtype.kind in "OS" else DTYPE_ENUM.get(array.dtype)
    if enum is None:
        raise TensorError(f"unsupported array dtype {array.dtype}")
    proto = proto_class(dtype=enum)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if enum == DT_STRING:
        proto.string_val.extend(bytes(v) for v in array.ravel())
    elif typed_fields:
        getattr(proto, DTYPES[enum][1]).extend(array.ravel().tolist())
    else:
        proto.tensor_content = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return proto
