"""Values and keys from YAML or ``--set`` made into the schema's fields, with one-line errors.

Values are coerced to the field's type: PyYAML reads ``1e-3`` as a string, so strings are
parsed as numbers where a number is due, and booleans are refused where a number is due.
A ``source`` argument names where a value came from ("preset awd-lstm", "--set nhid=3").
"""
from __future__ import annotations

import difflib
import math
import typing
from enum import Enum
from typing import Any, Iterable, Union

from sparseseq_cli.config.schema import SECTIONS
from sparseseq_cli.errors import SparseseqError

_NULLS = ("null", "none", "~", "")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def coerce_enum(enum: type[Enum], value: Any, key: str, source: str) -> Enum:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise SparseseqError(f"{key}={value!r} ({source}) is not a valid choice: use one of {choices}") from None


def coerce(value: Any, kind: Any, key: str, source: str) -> Any:
    """``value`` as the field type ``kind`` (int, float, bool, str, an Enum, or Optional of one)."""
    optional = typing.get_origin(kind) is Union
    if optional:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS):
            return None
    elif value is None:
        raise SparseseqError(f"{key} ({source}) needs a value, got null")
    if isinstance(kind, type) and issubclass(kind, Enum):
        return coerce_enum(kind, value.strip() if isinstance(value, str) else value, key, source)
    names = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."   # a hostile value may be huge
    bad = SparseseqError(f"{key} ({source}) must be {names[kind]}, got {shown}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad
    if kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if isinstance(value, bool):  # YAML's yes/no/on/off: never a number
        raise bad
    if isinstance(value, str):
        try:
            value = kind(value.strip()) if kind is float else int(value.strip(), 10)
        except ValueError:
            raise bad from None
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise bad
        if not isinstance(value, (int, float)):
            raise bad
        return int(value)
    if not isinstance(value, (int, float)):
        raise bad
    try:
        number = float(value)
    except OverflowError:   # an integer beyond any float
        raise bad from None
    if not math.isfinite(number):   # inf and nan would only surface as a diverged run
        raise bad
    return number


def field_types(schema: type) -> dict[str, dict[str, Any]]:
    """Section -> key -> the field's type, for a config schema (LMConfig, POSConfig)."""
    hints = typing.get_type_hints(schema)
    return {s: typing.get_type_hints(hints[s]) for s in SECTIONS}


def unknown_key(key: str, known: Iterable[str], source: str) -> SparseseqError:
    known = list(known)
    # match on the bare names, so the shared "model." prefix does not make everything close
    bare = {k.rsplit(".", 1)[-1]: k for k in known}
    close = [bare[k] for k in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(bare), n=3)]
    hint = f"did you mean {' or '.join(close)}?" if close else f"valid keys: {', '.join(known)}"
    return SparseseqError(f"unknown key {key!r} ({source}): {hint}")


def resolve_key(key: str, types: dict[str, dict[str, Any]], source: str) -> tuple[str, str]:
    """``section.key`` or a bare key found in exactly one section."""
    if "." in key:
        section, name = key.split(".", 1)
        if section not in types:
            raise SparseseqError(f"unknown section {section!r} in {key!r} ({source}): "
                                 f"use one of {', '.join(SECTIONS)}")
        if name not in types[section]:
            raise unknown_key(key, [f"{section}.{k}" for k in types[section]], source)
        return section, name
    owners = [s for s in SECTIONS if key in types[s]]
    if not owners:
        raise unknown_key(key, [k for s in SECTIONS for k in types[s]], source)
    if len(owners) > 1:
        raise SparseseqError(f"key {key!r} ({source}) is in several sections: write "
                             f"{' or '.join(f'{s}.{key}' for s in owners)}")
    return owners[0], key


def parse_override(text: str) -> tuple[str, str]:
    """``key=value`` split on the first ``=``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SparseseqError(f"--set {text!r} must look like key=value (e.g. --set nhid=1725)")
    return key.strip(), value
