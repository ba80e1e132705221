"""Benchmark: import every feed file, then match 1,000 generated inventories of 500 packages.

Run on purpose (the test suite runs only its ``--smoke`` mode)::

    .venv/bin/python bench/bench_feeds.py [--feeds DIR] [--inventories 1000] [--packages 500]
        [--smoke]

The feeds folder is ``--feeds``, else ``$PATCHLEDGER_FEEDS_DIR``, else ``<repo>/../shared/feeds``.
``--smoke`` imports every feed file as usual (about a second) but matches only 20 inventories of
50 packages: it shows that the bench still works, in a few seconds.

Inventories are generated deterministically from the imported data: package names and
versions are taken from the fixed versions the advisories give (so hosts sit below, at or above
real fixes: 9 packages in 10 at their latest fix, 1 in 10 at an older one), spread
over Debian bullseye (DSA), Debian buster (DLA), AlmaLinux 9 (OSV) and a
Maven SBOM (no advisory data: reported as "no data"). Goal: under 10 s in total.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import time
from collections import defaultdict
from pathlib import Path

from patchledger.app.feeds.inventory import Distro, InstalledPackage, Inventory
from patchledger.app.feeds.loader import Loader
from patchledger.app.feeds.matching import Matcher
from patchledger.app.feeds.merge import merge
from patchledger.app.feeds.model import Advisory
from patchledger.app.feeds.versions import compare

_KINDS = (
    ("deb", "debian", "bullseye", 0.4),
    ("deb", "debian", "buster", 0.2),
    ("rpm", "almalinux", "almalinux-9", 0.3),
    ("maven", None, None, 0.1),
)


def _pools(advisories: list[Advisory]) -> dict[tuple[str, str | None], list[tuple[str, str]]]:
    """(type, release) -> [(name, version)]: each package at its latest or an older fix."""
    fixes: dict[tuple[str, str | None], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for advisory in advisories:
        for pkg in advisory.affected:
            for fixed in pkg.fixed:
                fixes[(pkg.type, pkg.distro)][pkg.name].add(fixed)
    rng = random.Random(7)
    pools: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for key, by_name in fixes.items():
        pool = []
        for name, versions in sorted(by_name.items()):
            ptype = key[0]
            ordered = sorted(versions, key=functools.cmp_to_key(functools.partial(compare, ptype)))
            patched = rng.random() >= 0.1 or len(ordered) == 1
            pool.append((name, ordered[-1] if patched else rng.choice(ordered[:-1])))
        pools[key] = pool
    return pools


def _generate(
    pools: dict[tuple[str, str | None], list[tuple[str, str]]], count: int, size: int
) -> list[Inventory]:
    rng = random.Random(20240601)
    maven = [(f"lib{i}", f"1.{i % 17}.{i % 5}") for i in range(2000)]
    inventories = []
    for index in range(count):
        ptype, namespace, release, _ = rng.choices(_KINDS, weights=[k[3] for k in _KINDS])[0]
        pool = pools.get((ptype, release), []) if ptype != "maven" else maven
        chosen = rng.sample(pool, min(size, len(pool)))
        # pad with packages no advisory mentions (most of a real host)
        chosen += [(f"unlisted-{i}", "1.0-1") for i in range(size - len(chosen))]
        packages = tuple(
            InstalledPackage(ptype, name, version, namespace if ptype != "maven" else "org.example")
            for name, version in chosen
        )
        distro = Distro(ptype, namespace, release) if namespace and release else None
        inventories.append(Inventory(f"host-{index:04d}", packages, distro))
    return inventories


def main(argv: list[str] | None = None) -> int:
    default = os.environ.get("PATCHLEDGER_FEEDS_DIR") or str(
        Path(__file__).resolve().parents[1].parent / "shared" / "feeds"
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", default=default)
    parser.add_argument("--inventories", type=int, default=1000)
    parser.add_argument("--packages", type=int, default=500)
    parser.add_argument("--smoke", action="store_true",
                        help="match 20 inventories of 50 packages: shows the bench still works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.inventories, args.packages = 20, 50
    if not Path(args.feeds).is_dir():
        parser.error(f"feeds folder {args.feeds} not found (--feeds or PATCHLEDGER_FEEDS_DIR)")

    rows: list[tuple[str, float, str]] = []
    t0 = time.perf_counter()
    report = Loader().load([args.feeds])
    t1 = time.perf_counter()
    rows.append(
        (
            "import all feeds",
            t1 - t0,
            f"{sum(report.records_by_source().values())} records, {len(report.all_errors)} errors",
        )
    )
    vulns = merge(report.advisories)
    t2 = time.perf_counter()
    rows.append(("merge", t2 - t1, f"{len(vulns)} vulnerabilities"))
    matcher = Matcher(vulns)
    t3 = time.perf_counter()
    rows.append(("build match index", t3 - t2, ""))
    inventories = _generate(_pools(report.advisories), args.inventories, args.packages)
    t4 = time.perf_counter()
    total_packages = sum(len(i.packages) for i in inventories)
    rows.append(
        (
            "generate inventories (not timed in total)",
            t4 - t3,
            f"{len(inventories)} x ~{args.packages} = {total_packages} packages",
        )
    )
    result = matcher.match_all(inventories)
    t5 = time.perf_counter()
    no_data = sum(len(n.packages) for n in result.no_data)
    rows.append(("match", t5 - t4, f"{len(result.findings)} findings, {no_data} packages no data"))
    total = (t3 - t0) + (t5 - t4)
    rows.append(("TOTAL import + merge + index + match", total, "goal < 10 s"))
    print(f"{'step':45} {'seconds':>8}  detail")
    for step, seconds, detail in rows:
        print(f"{step:45} {seconds:8.2f}  {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
