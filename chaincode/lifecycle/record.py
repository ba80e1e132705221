"""The document and record bases: canonical JSON, schema versions and forward compatibility.

Every ledger record is a frozen dataclass deriving from :class:`Record`. Its JSON form is a
single object with the record's fields plus ``record_type`` and ``schema_version``, written as
canonical JSON. Reading follows the "accept unrecognised fields" rule: fields this code does not
know are kept in :attr:`Record.extra` and written back unchanged, and a record written by newer
code keeps its ``schema_version``, so older code can read, update and rewrite newer records
without losing anything. Records are validated on construction (``__post_init__``), so an
invalid record cannot exist in memory.
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
        self.validate()

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
        """Canonical JSON bytes of this record."""
        return canonical_json(self.to_dict())

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
    updated_at: int = 0
    updated_by: str = ""

    def __post_init__(self) -> None:
        integer("updated_at", self.updated_at)
        if self.updated_by:
            identifier("updated_by", self.updated_by)
        super().__post_init__()

    @property
    def key(self) -> Key:
        """The ledger key of this record."""
        raise NotImplementedError

    @property
    def state(self) -> str:
        """The record's lifecycle state, or ``""`` for records without one."""
        return ""
