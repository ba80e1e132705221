"""CVSS v3.x base score from a vector string (FIRST CVSS v3.1 specification, section 7).

OSV records carry vectors without scores; NVD and CSAF carry both. Only v3.0/v3.1 vectors are
computed here; other versions return ``None`` (the vector is still kept on the advisory).
"""

from __future__ import annotations

import math

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_UNCHANGED = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}


def base_score(vector: str) -> float | None:
    """Return the CVSS v3.x base score of ``vector``, or ``None`` if it is not a valid v3 vector.

    >>> base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    9.8
    """
    parts = vector.split("/")
    if parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    try:
        metrics = dict(p.split(":", 1) for p in parts[1:])
        changed = metrics["S"] == "C"
        pr_table = _PR_CHANGED if changed else _PR_UNCHANGED
        exploitability = (
            8.22
            * _AV[metrics["AV"]]
            * _AC[metrics["AC"]]
            * pr_table[metrics["PR"]]
            * _UI[metrics["UI"]]
        )
        iss = 1 - (1 - _CIA[metrics["C"]]) * (1 - _CIA[metrics["I"]]) * (1 - _CIA[metrics["A"]])
    except (KeyError, ValueError):
        return None
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    raw = impact + exploitability
    return _round_up(min(1.08 * raw, 10.0) if changed else min(raw, 10.0))


def _round_up(value: float) -> float:
    """CVSS v3.1 ``Roundup``: smallest number with one decimal that is >= ``value``."""
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (math.floor(scaled / 10000) + 1) / 10.0
