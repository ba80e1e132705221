"""The document and record bases: canonical JSON, schema versions and forward compatibility.

Every ledger record is a frozen dataclass deriving from :class:`Record`. Its JSON form is a
single object with the record's fields plus ``record_type`` and ``schema_version``, written as
canonical JSON. Reading follows the "accept unrecognised fields" rule: fields this code does not
know are kept in :attr:`Record.extra` and written back unchanged, and a record written by newer
code keeps its ``schema_version``, so older code can read, update and rewrite newer records
without losing anything. Records are validated on construction (``__post_init__``), so an
invalid record cannot exist in memory.

Limits that keep every stored value readable by every query: a document's canonical JSON is
at most :data:`MAX_DOCUMENT_BYTES`, its unknown members together at most
:data:`MAX_EXTRA_BYTES`, and nothing nests deeper than
:data:`~chaincode.lifecycle.canonical.MAX_DEPTH`. Every field must have the JSON type its
annotation names (a string where ``str``, a list where ``tuple``, an object where a mapping,
an integer where ``int``): a ``targets`` given as a string is refused, never stored as one.
A record's key is made of its ``KEY_FIELDS``; :meth:`Record.key_for` builds a key from given
parts and checks each as an identifier, so a lookup by an id holding NUL, U+10FFFF or a
non-string is a ValidationError naming the key field, never an internal error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from patchledger.chaincode.lifecycle.canonical import canonical_json, parse_object
from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.fields import identifier, integer
from patchledger.chaincode.lifecycle.statemachine import StateMachine

SCHEMA_VERSION = 1
_RESERVED = frozenset({"record_type", "extra"})
#: Largest canonical JSON of one document (record, statement, report).
MAX_DOCUMENT_BYTES = 1024 * 1024
#: Largest canonical JSON of a document's unknown members together.
MAX_EXTRA_BYTES = 16 * 1024

_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "tuple": (tuple,),
    "Mapping": (Mapping,),
    "dict": (Mapping,),
}
_TYPE_NAMES = {"str": "a string", "int": "an integer", "bool": "a boolean", "tuple": "a list"}


def _check_type(name: str, annotation: Any, value: Any) -> None:
    """Refuse a field value whose JSON type is not the one its annotation names.

    Raises:
        ValidationError: naming the field and the expected type.
    """
    kind = str(annotation).split("[", 1)[0].strip()
    expected = _TYPE_CHECKS.get(kind)
    if expected is None:
        return
    wrong_bool = kind == "int" and isinstance(value, bool)
    if not isinstance(value, expected) or wrong_bool:
        raise ValidationError(name, f"must be {_TYPE_NAMES.get(kind, 'an object')}")


@dataclass(frozen=True)
class Key:
    """A ledger key: the record type (composite-key object type) and its attributes."""

    record_type: str
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return "/".join(self.parts)


def _encode(value: Any) -> Any:
    if isinstance(value, Document | Nested):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    return value


class Nested:
    """A value object inside a record (a wave, a source): plain dataclass, no extras."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this value."""
        fields_ = dataclasses.fields(self)  # type: ignore[arg-type]
        return {f.name: _encode(getattr(self, f.name)) for f in fields_}


@dataclass(frozen=True, kw_only=True)
class Document:
    """Base of every JSON document of the core: records, signed statements, host reports.

    Attributes:
        schema_version: the schema version the document was written with.
        extra: fields unknown to this code, preserved on round-trip.
    """

    RECORD_TYPE: ClassVar[str] = ""
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        integer("schema_version", self.schema_version, minimum=1)
        for f in dataclasses.fields(self):
            if f.name != "extra":
                _check_type(f.name, f.type, getattr(self, f.name))
        self._check_extra()
        self.validate()

    def _check_extra(self) -> None:
        if not isinstance(self.extra, Mapping):
            raise ValidationError("extra", "must be an object")
        if not self.extra:
            return
        size = len(canonical_json(dict(self.extra)))
        if size > MAX_EXTRA_BYTES:
            raise ValidationError(
                "extra", f"unknown members take {size} bytes, more than {MAX_EXTRA_BYTES}"
            )

    def validate(self) -> None:
        """Check the document's own fields; overridden by each type.

        Raises:
            ValidationError: naming the offending field.
        """

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this record, extras included."""
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[f.name] = _encode(getattr(self, f.name))
        out["record_type"] = self.RECORD_TYPE
        return out

    def to_json(self) -> bytes:
        """Canonical JSON bytes of this record.

        Raises:
            ValidationError: larger than :data:`MAX_DOCUMENT_BYTES` (or not canonical JSON).
        """
        data = canonical_json(self.to_dict())
        if len(data) > MAX_DOCUMENT_BYTES:
            raise ValidationError(
                self.RECORD_TYPE or "document",
                f"is {len(data)} bytes, more than {MAX_DOCUMENT_BYTES}",
            )
        return data

    @classmethod
    def decode_field(cls, name: str, value: Any) -> Any:
        """Turn a JSON value into the field's Python value; overridden for nested fields."""
        if isinstance(value, list):
            return tuple(value)
        return value

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build and validate a record from its JSON object.

        Raises:
            ValidationError: wrong ``record_type``, missing or malformed field.
        """
        if data.get("record_type", cls.RECORD_TYPE) != cls.RECORD_TYPE:
            raise ValidationError("record_type", f"must be {cls.RECORD_TYPE}")
        known = {f.name: f for f in dataclasses.fields(cls) if f.name not in _RESERVED}
        kwargs: dict[str, Any] = {}
        for name, f in known.items():
            if name in data:
                kwargs[name] = cls.decode_field(name, data[name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValidationError(name, "is required")
        extra = {k: v for k, v in data.items() if k not in known and k not in _RESERVED}
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        """Parse canonical (or any) JSON bytes into a validated record.

        Raises:
            ValidationError: not a JSON object, or not a valid record of this type.
        """
        return cls.from_dict(parse_object(data, cls.RECORD_TYPE))

    def evolve(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied, validated again (extras kept)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class Record(Document):
    """Base of all ledger records.

    ``MACHINE`` is the record type's state machine (``None``: the type has no lifecycle, as
    approvals and policies); :meth:`~chaincode.lifecycle.ledger.TxLedger.save` checks every
    write of the record against it.

    Attributes:
        updated_at: transaction time (seconds since the epoch, UTC) of the last change.
        updated_by: MSP id of the organization whose member made the last change.
    """

    MACHINE: ClassVar[StateMachine | None] = None
    KEY_FIELDS: ClassVar[tuple[str, ...]] = ()
    updated_at: int = 0
    updated_by: str = ""

    def __post_init__(self) -> None:
        integer("updated_at", self.updated_at)
        if self.updated_by:
            identifier("updated_by", self.updated_by)
        super().__post_init__()

    @property
    def key(self) -> Key:
        """The ledger key of this record: ``(RECORD_TYPE, <KEY_FIELDS values>)``."""
        return Key(self.RECORD_TYPE, tuple(getattr(self, f) for f in self.KEY_FIELDS))

    @classmethod
    def key_for(cls, *parts: Any) -> Key:
        """The key of the record of this type at ``parts`` (a prefix of them for scans).

        Raises:
            ValidationError: more parts than ``KEY_FIELDS``, or a part that is not an
                identifier (not a string, empty, NUL, U+10FFFF, ``/``...), naming the field.
        """
        if len(parts) > len(cls.KEY_FIELDS):
            raise ValidationError("key", f"{cls.RECORD_TYPE} keys have {len(cls.KEY_FIELDS)} parts")
        return Key(
            cls.RECORD_TYPE,
            tuple(identifier(f, p) for f, p in zip(cls.KEY_FIELDS, parts, strict=False)),
        )

    @property
    def state(self) -> str:
        """The record's lifecycle state, or ``""`` for records without one."""
        return ""
