"""Random ROS 2 messages of every type of some packages, via rclpy."""

import array
import random
from pathlib import Path

import numpy
from rclpy.serialization import deserialize_message, serialize_message
from rosidl_parser.definition import (
    Array,
    BasicType,
    BoundedSequence,
    BoundedString,
    BoundedWString,
    NamespacedType,
    UnboundedSequence,
    UnboundedString,
    UnboundedWString,
)

PACKAGES = [
    "std_msgs",
    "geometry_msgs",
    "sensor_msgs",
    "nav_msgs",
    "diagnostic_msgs",
    "test_msgs",
]

INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "char": (0, 255),
}

TEXT = "abcxyz _-/\u00e9\u20ac"


def message_class(type_name: str):
    pkg, _, name = type_name.split("/")
    module = __import__(f"{pkg}.msg", fromlist=[name])
    return getattr(module, name)


def type_names(prefix: Path, packages=PACKAGES):
    out = []
    for pkg in packages:
        for f in sorted((prefix / "share" / pkg / "msg").glob("*.msg")):
            out.append(f"{pkg}/msg/{f.stem}")
    return out


def _basic(name: str, rnd: random.Random):
    if name == "boolean":
        return rnd.random() < 0.5
    if name == "octet":
        return bytes([rnd.randint(0, 255)])
    if name == "float":
        return rnd.randint(-(2**20), 2**20) / 8.0
    if name == "double":
        return rnd.uniform(-1e6, 1e6)
    lo, hi = INT_RANGES[name]
    # favour the extremes now and then
    return rnd.choice([lo, hi, rnd.randint(lo, hi), rnd.randint(lo, hi)])


def _text(rnd: random.Random, bound=None, wide=False):
    n = rnd.randint(0, 12 if bound is None else min(bound, 12))
    alphabet = TEXT + ("\u00fc\u4e2d" if wide else "")
    return "".join(rnd.choice(alphabet) for _ in range(n))


def _value(t, rnd: random.Random):
    if isinstance(t, BasicType):
        return _basic(t.typename, rnd)
    if isinstance(t, UnboundedString):
        return _text(rnd)
    if isinstance(t, BoundedString):
        return _text(rnd, t.maximum_size)
    if isinstance(t, UnboundedWString):
        return _text(rnd, wide=True)
    if isinstance(t, BoundedWString):
        return _text(rnd, t.maximum_size, wide=True)
    if isinstance(t, NamespacedType):
        cls = message_class("/".join([*t.namespaces, t.name]))
        return fill(cls(), rnd)
    if isinstance(t, Array):
        return [_value(t.value_type, rnd) for _ in range(t.size)]
    if isinstance(t, BoundedSequence):
        return [_value(t.value_type, rnd) for _ in range(rnd.randint(0, t.maximum_size))]
    if isinstance(t, UnboundedSequence):
        return [_value(t.value_type, rnd) for _ in range(rnd.randint(0, 5))]
    raise TypeError(f"unhandled slot type {t!r}")


def fill(msg, rnd: random.Random):
    names = list(msg.get_fields_and_field_types().keys())
    for name, t in zip(names, type(msg).SLOT_TYPES):
        setattr(msg, name, _value(t, rnd))
    return msg


def to_plain(v):
    """rclpy message -> JSON-like structure, as `motedb cat --format json`
    renders it (byte, char and uint8 as integers)."""
    if hasattr(v, "get_fields_and_field_types"):
        return {k: to_plain(getattr(v, k)) for k in v.get_fields_and_field_types()}
    if isinstance(v, bytes):
        return v[0] if len(v) == 1 else list(v)
    if isinstance(v, (numpy.ndarray, array.array)):
        return [to_plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [to_plain(x) for x in v]
    if isinstance(v, numpy.generic):
        return v.item()
    return v


def samples(type_name: str, count: int, seed: int):
    """(cdr bytes, expected plain value) for a default message and `count`
    random ones; expected comes from rclpy's own deserialization."""
    cls = message_class(type_name)
    rnd = random.Random(f"{seed}:{type_name}")
    msgs = [cls()] + [fill(cls(), rnd) for _ in range(count)]
    out = []
    for m in msgs:
        data = serialize_message(m)
        back = deserialize_message(data, cls)
        out.append((bytes(data), to_plain(back)))
    return out
