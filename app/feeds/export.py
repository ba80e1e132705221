"""JSON views of the model and an atomic file write (nothing is ever half-written).

The write uses :func:`patchledger.common.durable.write_atomic`, the one durable write that the
libraries below the app share.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from patchledger.app.feeds.merge import Vulnerability
from patchledger.common.durable import write_atomic


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples, dates -> plain JSON values (dates as ISO 8601 strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def vulnerability_json(vuln: Vulnerability) -> dict[str, Any]:
    """A merged vulnerability with its merged views and every source advisory."""
    return {
        "id": vuln.id,
        "aliases": list(vuln.aliases),
        "sources": list(vuln.source_names),
        "kev": to_jsonable(vuln.kev),
        "published": to_jsonable(vuln.published),
        "modified": to_jsonable(vuln.modified),
        "advisories": [to_jsonable(a) for a in vuln.advisories],
    }


def write_json_atomic(path: Path, payload: Any, *, mode: int = 0o600) -> None:
    """Write ``payload`` as JSON to ``path`` via a temporary file and a rename.

    ``mode`` is the new file's permission bits (the CLI passes the umask's, see
    :func:`patchledger.app.feeds.cli.run_import`).

    Raises:
        OSError: the directory is not writable (the target is left untouched).
    """
    write_atomic(path, json.dumps(payload, sort_keys=True, separators=(",", ":")), mode)
