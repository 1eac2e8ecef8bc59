"""Turn pydantic validation errors into ConfigError messages people can act on."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ingest.errors import ConfigError
from ingest.redact import redact_text

_SECRET_KEYS = frozenset({"url"})
_MAX_FOUND = 80


@dataclass(frozen=True, slots=True)
class Problem:
    """One wrong key in a config file."""

    key: str
    expected: str
    found: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.key}: expected {self.expected}, found {self.found}"
        return f"{text}; {self.hint}" if self.hint else text


class ConfigFileError(ConfigError):
    """A config file is invalid; `problems` lists each key that is wrong."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = tuple(problems)
        lines = [f"{file}: {p.line()}" for p in self.problems]
        super().__init__("\n".join(lines))


def key_path(loc: Sequence[int | str]) -> str:
    """`("connection", "ping_intervl")` -> `connection.ping_intervl`; list indexes as `[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `X`, `X | None`, `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType, list, dict) or origin is not None:
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model whose keys live at `loc` (list indexes skipped)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _model_in(field.annotation)
    return model


def _show(value: Any) -> str:
    text = redact_text(repr(value))
    return text if len(text) <= _MAX_FOUND else text[: _MAX_FOUND - 3] + "..."


def problem_of(root: type[BaseModel], error: ErrorDetails) -> Problem:
    """One pydantic error as a Problem: the key, what it expects, what was found."""
    loc = [p for p in error["loc"] if isinstance(p, int | str)]
    key = key_path(loc)
    kind = error["type"]
    secret = any(p in _SECRET_KEYS for p in loc if isinstance(p, str))
    found = "(hidden: it may hold a password)" if secret else _show(error.get("input"))
    if kind == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        valid = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else ""
        if valid:
            hint = (hint + " " if hint else "") + f"valid keys here: {', '.join(valid)}"
        return Problem(key, "a known key", f"an unknown key (value {found})", hint)
    if kind == "missing":
        return Problem(key, "a value (this key is required)", "nothing", "add it to the file")
    message = error["msg"]
    for prefix in ("Value error, ", "Input should be "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return Problem(key, redact_text(message), found)


def from_validation_error(file: str, root: type[BaseModel], exc: ValidationError) -> ConfigFileError:
    """One ConfigFileError listing every problem pydantic found."""
    return ConfigFileError(file, [problem_of(root, e) for e in exc.errors()])
