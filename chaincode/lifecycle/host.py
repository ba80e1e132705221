"""Host records: an enrolled machine, its certificate, owner, groups and report counter.

State machine (``status``)::

    ENROLLED ──> ENROLLED         inventory digest updated
    ENROLLED ──> DECOMMISSIONED   terminal: the host never reports or deploys again

A host belongs to one organization (``owner_msp``); only that organization's members change
it, and the contract gives its key a key-level endorsement policy requiring that
organization's peer AND a majority. ``last_report_sequence`` was the replay counter of signed
host reports; reports no longer write the Host record (their counter is the Deployment's
``report_sequence``), so it only keeps what ledgers written before recorded, and reports must
still be above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from patchledger.chaincode.lifecycle.fields import id_tuple, identifier, integer, sha256_hex, text
from patchledger.chaincode.lifecycle.record import Record
from patchledger.chaincode.lifecycle.statemachine import StateMachine, machine

MACHINE = machine(
    "Host",
    "ENROLLED",
    {"ENROLLED": {"ENROLLED", "DECOMMISSIONED"}},
)
EMPTY_INVENTORY = "0" * 64


@dataclass(frozen=True, kw_only=True)
class Host(Record):
    """An enrolled host."""

    RECORD_TYPE = "Host"
    KEY_FIELDS = ("host_id",)
    MACHINE: ClassVar[StateMachine] = MACHINE
    host_id: str
    owner_msp: str
    cert_pem: str
    groups: tuple[str, ...] = ()
    maintenance_window: str = ""
    inventory_sha256: str = EMPTY_INVENTORY
    last_report_sequence: int = 0
    status: str = "ENROLLED"

    def validate(self) -> None:
        """Check fields.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("host_id", self.host_id)
        identifier("owner_msp", self.owner_msp)
        text("cert_pem", self.cert_pem, limit=8192)
        id_tuple("groups", self.groups)
        text("maintenance_window", self.maintenance_window, optional=True, limit=256)
        sha256_hex("inventory_sha256", self.inventory_sha256)
        integer("last_report_sequence", self.last_report_sequence)
        MACHINE.validate_state("status", self.status)


    @property
    def state(self) -> str:
        """The ``status``."""
        return self.status
