"""The organization's host inventories, kept off the ledger in the app database.

An inventory's digest is the SHA-256 of its canonical JSON (host, distribution, packages
sorted): the same packages always give the same digest, whatever order a tool listed them
in. That digest is what ``UpdateInventoryDigest`` puts on the ledger.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from patchledger.app.errors import UserError
from patchledger.app.feeds.inventory import Distro, InstalledPackage, Inventory
from patchledger.app.ingest.tables import inventories
from patchledger.app.readmodel.decode import iso_time
from patchledger.app.readmodel.tables import RECORD_TABLES
from patchledger.chaincode.lifecycle.canonical import canonical_json

CRITICALITIES = ("low", "medium", "high", "critical")


class InventoryError(UserError):
    """An inventory cannot be stored (bad host id or criticality)."""


@dataclass(frozen=True)
class StoredInventory:
    """An inventory as stored: its digest, package count, and the digest last put on the
    ledger ("" when never)."""

    host_id: str
    inventory_sha256: str
    package_count: int
    distro: str
    criticality: str
    origin: str
    updated_at: str
    ledger_digest: str


def _package_doc(package: InstalledPackage) -> dict[str, Any]:
    doc = dataclasses.asdict(package)
    doc["cpes"] = list(package.cpes)
    return {k: v for k, v in doc.items() if v not in (None, [], ())}


def inventory_document(inventory: Inventory) -> dict[str, Any]:
    """The canonical JSON object of an inventory (what the digest covers)."""
    packages = sorted((_package_doc(p) for p in inventory.packages),
                      key=lambda d: json.dumps(d, sort_keys=True))
    distro = dataclasses.asdict(inventory.distro) if inventory.distro else None
    return {"host": inventory.host, "distro": distro, "packages": packages}


def inventory_digest(inventory: Inventory) -> str:
    """SHA-256 (hex) of :func:`inventory_document`."""
    return hashlib.sha256(canonical_json(inventory_document(inventory))).hexdigest()


def store_inventory(
    conn: Connection, inventory: Inventory, *, origin: str = "", now: dt.datetime | None = None
) -> StoredInventory:
    """Store (or replace) the inventory of ``inventory.host``, in the caller's transaction.

    Raises:
        InventoryError: an empty host id, one with ``/`` or spaces (not a ledger id), or an
            unknown criticality.
    """
    host = inventory.host
    if not host or len(host) > 256 or any(c in host for c in "/ \t\n") or not host.isprintable():
        raise InventoryError(
            f"invalid host id {host!r}: 1-256 printable characters without spaces or '/'")
    if inventory.criticality not in CRITICALITIES:
        raise InventoryError(
            f"host {host}: criticality {inventory.criticality!r} is not one of "
            f"{', '.join(CRITICALITIES)}")
    doc = inventory_document(inventory)
    digest = hashlib.sha256(canonical_json(doc)).hexdigest()
    values = {
        "inventory_sha256": digest,
        "origin": origin,
        "distro": inventory.distro.release if inventory.distro else "",
        "package_count": len(inventory.packages),
        "packages_json": json.dumps(doc, sort_keys=True, separators=(",", ":")),
        "criticality": inventory.criticality,
        "updated_at": iso_time(now or dt.datetime.now(dt.UTC)),
    }
    done = conn.execute(update(inventories).where(inventories.c.host_id == host).values(values))
    if done.rowcount == 0:
        conn.execute(insert(inventories).values(host_id=host, ledger_digest="", **values))
    row = conn.execute(select(inventories).where(inventories.c.host_id == host)).mappings().one()
    return _stored(row)


def _stored(row: Any) -> StoredInventory:
    return StoredInventory(
        host_id=row["host_id"],
        inventory_sha256=row["inventory_sha256"],
        package_count=int(row["package_count"]),
        distro=row["distro"],
        criticality=row["criticality"],
        origin=row["origin"],
        updated_at=row["updated_at"],
        ledger_digest=row["ledger_digest"],
    )


def list_inventories(conn: Connection) -> list[StoredInventory]:
    """Every stored inventory, by host id."""
    rows = conn.execute(select(inventories).order_by(inventories.c.host_id)).mappings()
    return [_stored(r) for r in rows]


def load_inventories(conn: Connection, hosts: Sequence[str] | None = None) -> list[Inventory]:
    """The stored inventories (all, or those of ``hosts``) as :class:`Inventory` objects."""
    query = select(inventories.c.packages_json, inventories.c.criticality).order_by(
        inventories.c.host_id)
    if hosts is not None:
        query = query.where(inventories.c.host_id.in_(list(hosts)))
    out = []
    for packages_json, criticality in conn.execute(query):
        doc = json.loads(packages_json)
        distro = Distro(**doc["distro"]) if doc.get("distro") else None
        packages = tuple(
            InstalledPackage(**{**p, "cpes": tuple(p.get("cpes", ()))}) for p in doc["packages"]
        )
        out.append(Inventory(doc["host"], packages, distro, criticality))
    return out


def digests_to_record(conn: Connection) -> list[tuple[str, str]]:
    """``(host_id, inventory_sha256)`` of every stored inventory whose host is enrolled on the
    ledger (in the read model, not decommissioned) with a different inventory digest."""
    hosts = RECORD_TABLES["Host"]
    query = (
        select(inventories.c.host_id, inventories.c.inventory_sha256)
        .join(hosts, hosts.c.record_id == inventories.c.host_id)
        .where(hosts.c.status == "ENROLLED")
        .where(hosts.c.inventory_sha256 != inventories.c.inventory_sha256)
        .order_by(inventories.c.host_id)
    )
    return [(h, d) for h, d in conn.execute(query)]


def mark_digest_recorded(conn: Connection, host_id: str, digest: str) -> None:
    """Remember that ``digest`` was put on the ledger for ``host_id``."""
    conn.execute(update(inventories).where(inventories.c.host_id == host_id)
                 .values(ledger_digest=digest))
