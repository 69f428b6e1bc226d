"""Component configuration: one frozen dataclass per component.

Every component in :mod:`hw` is driven by a frozen config object.  Its fields
are declared with :func:`param`, which records the allowed range or choices;
``__post_init__`` checks every value and raises :class:`ParamError` (a
``ValueError``) naming the parameter, the value and what is allowed.  The same
metadata drives ``nnloom emit --list`` and the command-line flags, so a range
is typed exactly once.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Any, ClassVar
from .errors import InputError

__all__ = ["ParamError", "param", "Config", "ParamInfo"]


class ParamError(InputError):
    """A parameter value outside its allowed range or set.

    ``name`` is the parameter's field name, ``value`` the offending value and
    ``allowed`` a human-readable description of the allowed values.
    """

    def __init__(self, name: str, value: Any, allowed: str):
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{name}: expected {allowed}, got {value!r}")


@dataclass(frozen=True)
class ParamInfo:
    """What ``nnloom emit --list`` shows for one parameter."""

    name: str
    kind: type
    default: Any
    lo: int | None = None
    hi: int | None = None
    choices: tuple | None = None
    help: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def allowed(self) -> str:
        if self.choices is not None:
            return " | ".join(str(c) for c in self.choices)
        if self.kind is bool:
            return "true | false"
        if self.lo is not None and self.hi is not None:
            return f"{self.lo}..{self.hi}"
        if self.lo is not None:
            return f">= {self.lo}"
        return "any"

    def check(self, value: Any) -> Any:
        """Return ``value`` normalised, or raise :class:`ParamError`."""
        if self.choices is not None:
            if value not in self.choices:
                raise ParamError(self.name, value, f"one of {self.allowed}")
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ParamError(self.name, value, "true or false")
            return value
        if self.kind is int:
            if isinstance(value, bool):
                raise ParamError(self.name, value, f"an integer {self.allowed}")
            try:
                value = operator.index(value)
            except TypeError:
                raise ParamError(self.name, value, f"an integer {self.allowed}") from None
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                raise ParamError(self.name, value, self.allowed)
            return value
        return value

    def parse(self, text: str) -> Any:
        """Parse a command-line string into this parameter's type (unchecked)."""
        if self.kind is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ParamError(self.name, text, "true or false")
        if self.kind is int:
            try:
                return int(text, 0)
            except ValueError:
                raise ParamError(self.name, text, f"an integer {self.allowed}") from None
        return text


def param(default: Any, *, lo: int | None = None, hi: int | None = None,
          choices: tuple | None = None, help: str = "") -> Any:
    """Declare a config field with its allowed values (see :class:`Config`)."""
    return dataclasses.field(default=default, metadata={
        "nnloom": {"lo": lo, "hi": hi, "choices": choices, "help": help}})


@dataclass(frozen=True)
class Config:
    """Base class of the per-component frozen configs.

    Subclasses declare their fields with :func:`param`; ``__post_init__``
    validates them.  Override :meth:`validate` for checks across fields and
    call ``super().validate()`` first.
    """

    #: Short name used by ``nnloom emit`` (set by subclasses).
    component: ClassVar[str] = ""

    def __post_init__(self):
        for info in self.params():
            object.__setattr__(self, info.name, info.check(getattr(self, info.name)))
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; raise :class:`ParamError`."""

    @classmethod
    def params(cls) -> list[ParamInfo]:
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("nnloom")
            if meta is None:
                continue
            kind = bool if isinstance(f.default, bool) else type(f.default)
            out.append(ParamInfo(f.name, kind, f.default, meta["lo"], meta["hi"],
                                 meta["choices"], meta["help"]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {info.name: getattr(self, info.name) for info in self.params()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        known = {info.name for info in cls.params()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParamError(unknown[0], values[unknown[0]],
                             "one of the parameters " + ", ".join(sorted(known)))
        return cls(**values)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
