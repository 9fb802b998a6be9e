"""Checks of what users hand the package: config values and tensors.

Config fields are checked for type and range when a config section is made (its
``__post_init__``; ``dataclasses.replace`` and :meth:`~vsml_lite.config.Config.override` run it
too). A value of the wrong type is converted where the meaning is plain (``"false"`` for a
bool, ``"1e6"`` or ``1e6`` for an int, ``"none"`` for an optional field, ``"(4.0,1.0)"`` for a
tuple), so ``--set`` on the command line means what it says; anything else raises a
``ValueError`` that names the field, the value and what is allowed.

Each section lists its limits in a ``LIMITS`` class attribute; a field it does not list gets the
default for its type: an int at least 1, a float finite and above 0.

Tensor checks (:func:`check_tensor`, :func:`check_state_clip`) run before compiled code, which
trusts shapes and would otherwise read past the end of a buffer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import typing
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import torch

#: Text accepted for ``True`` / ``False`` by bool fields (case-insensitive).
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
#: Text accepted for ``None`` by optional fields.
NONE_WORDS = ("none", "null")


@dataclass(frozen=True)
class Range:
    """Numbers in ``[lo, hi]`` (``lo_open``: excluding ``lo``), plus the values in ``also``
    (e.g. 0 meaning "the default"); floats must be finite."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    also: Tuple[float, ...] = ()

    def ok(self, v: float) -> bool:
        if v in self.also:
            return True
        if isinstance(v, float) and not math.isfinite(v):
            return False
        return (v > self.lo if self.lo_open else v >= self.lo) and v <= self.hi

    def __str__(self) -> str:
        lo = f"> {self.lo:g}" if self.lo_open else f">= {self.lo:g}"
        if self.lo_open:
            lo += " (and finite)"
        text = lo if self.hi == math.inf else f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"
        if self.lo == -math.inf:
            text = "a finite number"
        return text + "".join(f" or {a:g}" for a in self.also)


@dataclass(frozen=True)
class OneOf:
    """One of the listed values."""

    values: Tuple[Any, ...]

    def ok(self, v: Any) -> bool:
        return v in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


#: Common limits.
AT_LEAST_1 = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, lo_open=True)
FRACTION = Range(0, 1)
ANY_NUMBER = Range()
#: Sides that divide MNIST's 28 pixels (``vsml_lite.data.downsample``).
DIVIDES_28 = OneOf((1, 2, 4, 7, 14, 28))


def check_section(obj: Any) -> None:
    """Convert and check every field of the dataclass ``obj`` in place (frozen or not);
    the limits come from ``type(obj).LIMITS``."""
    cls = type(obj)
    limits = getattr(cls, "LIMITS", {})
    for f in dataclasses.fields(obj):
        name = f"{getattr(cls, 'SECTION', '')}{f.name}"
        tp = _hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            value = getattr(obj, f.name)
            if not isinstance(value, tp):
                raise ValueError(f"config {name} must be a {tp.__name__}, got {type(value).__name__}")
            continue
        value = coerce(getattr(obj, f.name), tp, name)
        rule = limits.get(f.name, _default_rule(tp))
        _check_rule(value, rule, name)
        object.__setattr__(obj, f.name, value)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def _default_rule(tp: Any):
    base = _strip_optional(tp)
    if typing.get_origin(base) is tuple:
        base = typing.get_args(base)[0]
    if base is int:
        return AT_LEAST_1
    if base is float:
        return POSITIVE
    return None


def _check_rule(value: Any, rule: Any, name: str) -> None:
    if rule is None or value is None:
        return
    items = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) and not value:
        raise ValueError(f"config {name}=(): needs at least one value")
    for v in items:
        if not rule.ok(v):
            raise ValueError(f"config {name}={value!r} is not allowed; allowed: {rule}")


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def coerce(value: Any, tp: Any, name: str) -> Any:
    """``value`` as the declared type ``tp`` (``int``, ``float``, ``bool``, ``str``,
    ``Optional[...]`` or ``Tuple[...]``), parsing text; ``ValueError`` when it is not one."""
    if typing.get_origin(tp) is typing.Union:
        if value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS):
            return None
        return coerce(value, _strip_optional(tp), name)
    if typing.get_origin(tp) is tuple:
        return _coerce_tuple(value, tp, name)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise _type_error(name, value, f"true or false ({', '.join(TRUE_WORDS + FALSE_WORDS)})")
    if tp is int:
        number = _number(value)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, int):
            return number
        raise _type_error(name, value, "a whole number")
    if tp is float:
        number = _number(value)
        if number is None:
            raise _type_error(name, value, "a number")
        return float(number)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _type_error(name, value, "text")
    raise TypeError(f"config {name}: no conversion to {tp}")


def _number(value: Any):
    """An int or float from a number or its text; ``None`` for anything else (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
    return None


def _coerce_tuple(value: Any, tp: Any, name: str) -> tuple:
    args = typing.get_args(tp)
    if isinstance(value, str):
        text = value.strip().strip("()[]")
        value = [v for v in (p.strip() for p in text.split(",")) if v]
    if not isinstance(value, (list, tuple)):
        raise _type_error(name, value, "a comma-separated list, e.g. (1.0,2.0)")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ValueError(f"config {name}={tuple(value)!r}: needs exactly {len(args)} values")
    return tuple(coerce(v, t, f"{name}[{i}]") for i, (v, t) in enumerate(zip(value, args)))


def _type_error(name: str, value: Any, wanted: str) -> ValueError:
    return ValueError(f"config {name}={value!r} ({type(value).__name__}): needs {wanted}")


def file_sha256(path) -> str:
    """The SHA-256 of a file's contents (hex), read in blocks: what the integrity checks of
    datasets (:mod:`vsml_lite.data`) and of the cached kernel (:mod:`vsml_lite.fused`) compare."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


# --- tensors -------------------------------------------------------------------------------


def check_state_clip(state_clip: Optional[float]) -> Optional[float]:
    """``None`` (no clip) or a finite positive float; one meaning on every path (eager,
    reference and the compiled kernel)."""
    if state_clip is None:
        return None
    if isinstance(state_clip, torch.Tensor):
        state_clip = state_clip.item()
    if isinstance(state_clip, bool) or not isinstance(state_clip, (int, float)):
        raise TypeError(f"state_clip must be a positive number or None, got {state_clip!r}")
    if not (math.isfinite(state_clip) and state_clip > 0):
        raise ValueError(f"state_clip must be a finite number > 0 or None, got {state_clip!r}")
    return float(state_clip)


def check_tensor(name: str, t: Any, shape: Sequence[Optional[int]], like: Optional[torch.Tensor] = None,
                 dtype: Optional[torch.dtype] = None) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``t`` is a tensor of ``shape`` (``None``
    entries match any size), on ``like``'s device with ``like``'s dtype (or ``dtype``)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
    if t.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        raise ValueError(f"{name} must have shape {want}, got {list(t.shape)}")
    dtype = dtype if dtype is not None else (like.dtype if like is not None else None)
    if dtype is not None and t.dtype != dtype:
        raise ValueError(f"{name} must be {dtype}, got {t.dtype}")
    if like is not None and t.device != like.device:
        raise ValueError(f"{name} is on {t.device}, the other inputs on {like.device}")


def check_count(name: str, value: Any, lo: int = 0) -> int:
    """An int ``>= lo`` (bools refused), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name} must be a whole number >= {lo}, got {value!r}")
    return value
