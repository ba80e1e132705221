"""Version ordering checked against the distributions' own code: ``dpkg --compare-versions``
and rpm's ``labelCompare`` (python3-rpm, Debian's package of rpm's library).

Pairs are generated from the fixed versions of the shared feeds (the Debian DSA/DLA lists for
deb, the AlmaLinux OSV and Red Hat CSAF advisories for rpm): random pairs, neighbours on one
package's fix ladder, and each version against small edits of itself (a ``~`` pre-release,
a ``+``/``^`` suffix, a bumped or dropped number, an epoch) where orderings are easiest to
get wrong. The library must agree with the oracle on every pair (zero disagreements).

``scripts/install.sh`` installs python3-rpm with apt-get when it is missing; where it cannot
be installed the rpm test is skipped with that message. dpkg is part of every Debian system.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from patchledger.app.feeds.loader import ImportReport
from patchledger.app.feeds.versions import UnsupportedVersion, compare

_SEED = 20240601
_DEB_PAIRS = 2400
_RPM_PAIRS = 24000
_SYSTEM_PYTHONS = ("/usr/bin/python3",)

_DPKG_SCRIPT = r"""
while IFS=$'\t' read -r a b; do
  if dpkg --compare-versions "$a" lt "$b"; then echo -1
  elif dpkg --compare-versions "$a" eq "$b"; then echo 0
  else echo 1; fi
done
"""

_RPM_SCRIPT = r"""
import json, sys
import rpm

def evr(text):
    epoch, _, rest = text.rpartition(":")
    version, sep, release = rest.rpartition("-")
    if not sep:
        version, release = rest, None
    return (epoch or "0", version, release)

pairs = json.load(sys.stdin)
json.dump([rpm.labelCompare(evr(a), evr(b)) for a, b in pairs], sys.stdout)
"""


def _versions(report: ImportReport, ptype: str) -> dict[str, set[str]]:
    """package name -> every fixed version and range bound the feeds give for it."""
    found: dict[str, set[str]] = defaultdict(set)
    for advisory in report.advisories:
        for pkg in advisory.affected:
            if pkg.type != ptype:
                continue
            found[pkg.name].update(pkg.fixed)
            found[pkg.name].update(e.version for r in pkg.ranges for e in r if e.version != "0")
    return found


def _bump_last_number(version: str, by: int) -> str | None:
    match = list(re.finditer(r"\d+", version))
    if not match:
        return None
    last = match[-1]
    value = int(last.group()) + by
    if value < 0:
        return None
    return version[: last.start()] + str(value) + version[last.end() :]


def _deb_edits(v: str) -> list[str]:
    edits = [v + "~1", v + "~", v + "+b1", v + ".1", v + "a", "1:" + v if ":" not in v else v]
    for by in (1, -1, 9):
        bumped = _bump_last_number(v, by)
        if bumped:
            edits.append(bumped)
    if "-" in v:
        upstream, _, revision = v.rpartition("-")
        edits += [f"{upstream}~rc1-{revision}", f"{upstream}+dfsg-{revision}", upstream]
    return edits


def _rpm_edits(v: str) -> list[str]:
    epoch, colon, rest = v.rpartition(":")
    head = f"{epoch}{colon}"
    version, _, release = rest.rpartition("-")
    if not version:
        version, release = rest, ""
    tail = f"-{release}" if release else ""
    edits = [
        f"{head}{version}~rc1{tail}",
        f"{head}{version}^20240101{tail}",
        f"{head}{version}.1{tail}",
        f"{head}{version}a{tail}",
        f"{head}{version}{tail}.1",
        f"{head}{version}{tail}_1",
        f"{head}{version}",
        f"{int(epoch or 0) + 1}:{rest}",
        rest,
    ]
    for by in (1, -1, 10):
        bumped = _bump_last_number(v, by)
        if bumped:
            edits.append(bumped)
    return edits


def _pairs(
    ladders: dict[str, set[str]],
    edits: Callable[[str], list[str]],
    count: int,
    ptype: str,
) -> list[tuple[str, str]]:
    rng = random.Random(_SEED)
    pool = sorted({v for vs in ladders.values() for v in vs})
    names = sorted(n for n, vs in ladders.items() if len(vs) >= 2)
    pairs: list[tuple[str, str]] = []
    third = count // 3
    while len(pairs) < third:
        pairs.append((rng.choice(pool), rng.choice(pool)))
    while len(pairs) < 2 * third:
        ladder = sorted(ladders[rng.choice(names)])
        i = rng.randrange(len(ladder) - 1)
        pairs.append((ladder[i], ladder[i + 1]))
    while len(pairs) < count:
        v = rng.choice(pool)
        pair = (v, rng.choice(edits(v)))
        pairs.append(pair if rng.random() < 0.5 else (pair[1], pair[0]))
    return [p for p in pairs if _parses(ptype, p)]


def _parses(ptype: str, pair: tuple[str, str]) -> bool:
    try:
        compare(ptype, pair[0], pair[0])
        compare(ptype, pair[1], pair[1])
    except UnsupportedVersion:
        return False
    return True


def _disagreements(
    ptype: str, pairs: list[tuple[str, str]], oracle: list[int]
) -> list[tuple[str, str, int, int | str]]:
    assert len(oracle) == len(pairs)
    wrong: list[tuple[str, str, int, int | str]] = []
    for (a, b), expected in zip(pairs, oracle, strict=True):
        try:
            ours: int | str = compare(ptype, a, b)
        except UnsupportedVersion as exc:
            ours = str(exc)
        if ours != expected:
            wrong.append((a, b, expected, ours))
    return wrong


def test_debian_order_agrees_with_dpkg(full_import: ImportReport) -> None:
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not installed (not a Debian system): no oracle for Debian versions")
    ladders = _versions(full_import, "deb")
    pairs = _pairs(ladders, _deb_edits, _DEB_PAIRS, "deb")
    # versions dpkg refuses (it warns on stderr) are not pairs to judge
    pairs = [p for p in pairs if not any(" " in v or not v[:1].isdigit() for v in p)]
    assert len(pairs) > _DEB_PAIRS * 0.9
    done = subprocess.run(
        ["bash", "-c", _DPKG_SCRIPT],
        input="".join(f"{a}\t{b}\n" for a, b in pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert done.stderr == "", done.stderr[:2000]
    oracle = [int(line) for line in done.stdout.split()]
    wrong = _disagreements("deb", pairs, oracle)
    assert wrong == [], f"{len(wrong)} of {len(pairs)} pairs disagree with dpkg: {wrong[:20]}"


def _rpm_python() -> str:
    for python in _SYSTEM_PYTHONS:
        if not Path(python).is_file():
            continue
        probe = subprocess.run(
            [python, "-c", "import rpm"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return python
    pytest.skip(
        "rpm's version comparison is not available: python3-rpm is not installed for "
        f"{' or '.join(_SYSTEM_PYTHONS)} (scripts/install.sh installs it with "
        "'apt-get install python3-rpm' when run as root)"
    )


def test_rpm_order_agrees_with_rpm_label_compare(full_import: ImportReport) -> None:
    python = _rpm_python()
    ladders = _versions(full_import, "rpm")
    pairs = _pairs(ladders, _rpm_edits, _RPM_PAIRS, "rpm")
    assert len(pairs) > _RPM_PAIRS * 0.9
    done = subprocess.run(
        [python, "-c", _RPM_SCRIPT],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    oracle = json.loads(done.stdout)
    wrong = _disagreements("rpm", pairs, oracle)
    assert wrong == [], f"{len(wrong)} of {len(pairs)} pairs disagree with rpm: {wrong[:20]}"
