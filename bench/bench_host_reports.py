"""Host-report throughput of the patchledger contract on a real local network (run on purpose;
the test suite runs only its ``--smoke`` mode).

Starts its own network in a temporary state directory (or ``--state-dir``) on port base
``--port-base`` (default 19000, below Linux's ephemeral port range), bootstraps the policy,
proposes, tests and approves a patch with CA-issued identities, enrolls ``--hosts`` hosts of
ITOps and starts one rollout over all of them. It then submits ``ReportDeployments`` batches of
1, 10, 100 and 500 signed reports, one batch at a time, relayed by an ITOps operator, and
prints a table: reports recorded per second (reports / wall time of the batches) and, per
batch, the endorse time (chaincode execution on the endorsing peers, through the gateway) and
the commit latency (submit to commit status on the gateway's peer), and the endorser lag (how
much later the other endorsing peer had committed it), then the CPU each component of the
network spent per report (user + system time of the bench's process tree from ``/proc``,
``bench.rollout_profile.CpuMeter``: chaincode servers, peers, orderers, this client) with the
rate two idle cores would give at that cost and the cores the network actually got, and the
load average. The network is reset (stopped, state deleted) at the end, also on failure.

A batch is submitted only once every endorsing organization's peer (ITOps and SecOps) has
committed the previous one: the gateway's commit status comes from ITOps' peer alone, and a
SecOps peer one block behind reads older host records and endorses a different result
(``ABORTED ... ProposalResponsePayloads do not match``, seen from about 250 reports per batch).
That wait is part of the wall time, hence of reports/s.

Host keys are generated locally and their certificates are signed with ITOps' CA key read from
the network's state, exactly as that CA would issue them (``role=host``, ``host_id``), because
enrolling hundreds of hosts through the CA's REST API would dominate the run.

``--smoke`` runs the smallest scale (10 hosts, batches 1:2 and 10:1): it shows that the bench
still works end to end, in well under a minute with the network start.

    .venv/bin/python bench/bench_host_reports.py [--hosts 500] [--batches 1:30,10:10,100:5,500:2]
        [--port-base 19000] [--state-dir DIR] [--keep-logs DIR] [--smoke]

``--batches`` takes ``size:count[:in_flight]`` entries: ``in_flight`` batches (default 1) are
submitted at once, each by its own stream over its own slice of the hosts, so batches in
flight never name the same host (no endorser reads a record another batch in flight writes);
each stream still waits for every endorser's commit before its next batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchledger.app.fabric import (
    Contract,
    EcdsaSigner,
    EndorseError,
    Gateway,
    GatewayError,
    Identity,
    connect,
    create_channel,
)
from patchledger.chaincode.lifecycle.host_report import HostReport
from patchledger.chaincode.lifecycle.identity import FABRIC_ATTRS_OID
from patchledger.chaincode.lifecycle.signatures import encode_b64, sign
from patchledger.chaincode.lifecycle.statement import ApprovalStatement
from patchledger.network.bootstrap import every_admins_consent
from patchledger.network.config import config_from_env
from patchledger.network.manager import Manager

# Run as a file (bench/<name>.py) the repository root is not on sys.path; the test support this
# bench uses lives in tests/support/ (it is not shipped in the wheel).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from bench.rollout_profile import CpuMeter
from tests.support.network import LocalNetwork

OUTCOMES = ("DISPATCHED", "APPLIED", "VERIFIED", "ROLLED_BACK")
INVENTORY = hashlib.sha256(b"bench inventory").hexdigest()
ORGS = ("SecOpsMSP", "ITOpsMSP", "ComplianceMSP")
POLICY = {
    "organizations": list(ORGS),
    "quorum": {"critical": 2, "high": 2, "medium": 2, "low": 2},  # quorum floor: 2
    "change_quorum": 2, "revocation_quorum": 2, "exception_quorum": 2,
    "failure_threshold_pct": 100, "soak_seconds": 0,
    "remediation_days": {"critical": 7, "high": 30, "medium": 90, "low": 180},
}


@dataclass
class Host:
    host_id: str
    key: ec.EllipticCurvePrivateKey
    cert_pem: str
    sequence: int = 0


@dataclass
class Row:
    batch: int
    batches: int
    in_flight: int
    reports: int
    seconds: float
    endorse: list[float]
    latency: list[float]
    lag: list[float]  # the other endorsers' commit after the gateway peer's
    cpu: dict[str, float]  # CPU seconds of the step per component (by_column)
    load: float  # 1-minute load average at the end of the step


#: Our table's columns, by the component names of :class:`bench.rollout_profile.CpuMeter`.
COMPONENTS = {"chaincode servers": "chaincode", "peers": "peers", "orderers": "orderers",
              "CAs": "ca"}


def by_column(totals: dict[str, float]) -> dict[str, float]:
    """``CpuMeter`` totals (CPU seconds per component of this process's tree) by our table's
    columns; this process and anything unnamed count as "client"."""
    out = dict.fromkeys(["client", *COMPONENTS.values()], 0.0)
    for name, seconds in totals.items():
        out[COMPONENTS.get(name, "client")] += seconds
    return out


def progress(line: str) -> None:
    print(f"[bench] {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Issuer:
    """An organization's CA certificate and signing key, read from the network's state (the
    bench mints host certificates exactly as the CA would, without hundreds of enrollments)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def of(cls, net: LocalNetwork, org: str) -> Issuer:
        cert = x509.load_pem_x509_certificate(net.ca_cert(org).read_bytes())
        wanted = cert.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        keystore = net.layout.ca_home(net.org(org).name) / "msp" / "keystore"
        for path in sorted(keystore.glob("*_sk")):
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, ec.EllipticCurvePrivateKey) and wanted == key.public_key(
                    ).public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo):
                return cls(cert, key)
        raise SystemExit(f"no signing key for {org}'s CA certificate in {keystore}")


def host_certificate(issuer: Issuer, key: ec.EllipticCurvePrivateKey, host_id: str) -> str:
    """A host certificate as the org's Fabric CA issues it: OU=client, role=host, host_id."""
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
                      x509.NameAttribute(NameOID.COMMON_NAME, host_id)])
    now = dt.datetime.now(dt.UTC)
    attrs = json.dumps({"attrs": {"role": "host", "host_id": host_id,
                                  "hf.EnrollmentID": host_id}}).encode()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.UnrecognizedExtension(FABRIC_ATTRS_OID, attrs), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Session:
    """An identity's contract on its own peer, plus gateways on the other peers: each setup
    submit waits until every peer committed it, so the next step's endorsers all see it."""

    contract: Contract
    others: dict[str, Gateway]  # by the MSP id of the peer's organization


def session_of(net: LocalNetwork, identity: Identity, signer: EcdsaSigner) -> Session:
    gateways = {}
    for msp in ORGS:
        org = net.org(msp)
        channel = create_channel(org.peer.address,
                                 tls_root_certificates=net.ca_cert(msp).read_bytes())
        gateways[msp] = connect(identity, signer, channel, endpoint=org.peer.address)
    own = gateways[identity.msp_id].get_network(net.config.topology.channel)
    return Session(own.get_contract("patchledger"),
                   {m: g for m, g in gateways.items() if m != identity.msp_id})


def submit(session: Session, function: str, *args: Any) -> Any:
    submitted = session.contract.submit_async(
        function, [a if isinstance(a, str) else json.dumps(a) for a in args], endorse_timeout=120)
    status = submitted.get_status(120)
    if not status.successful:
        raise SystemExit(f"{function}: committed invalid ({status.code_name})")
    for other in session.others.values():
        other.new_commit(submitted.bytes).get_status(120)
    return json.loads(submitted.result) if submitted.result else None


def wait_for_discovery(net: LocalNetwork, session: Session) -> None:
    consents = every_admins_consent(net.config, POLICY)
    deadline = time.monotonic() + 60
    while True:
        try:
            session.contract.evaluate("GetRecord", ["Policy", "default"])
            return
        except GatewayError as exc:
            if "does not exist" not in str(exc):
                raise
        try:
            submit(session, "InitLedger", POLICY, consents)
            return
        except EndorseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def setup(net: LocalNetwork, n_hosts: int) -> tuple[Session, list[Host], str, str]:
    admin_msp = net.admin_msp("SecOpsMSP")
    admin = session_of(net, Identity.from_msp_dir(admin_msp, "SecOpsMSP"),
                        EcdsaSigner.from_msp_dir(admin_msp))
    wait_for_discovery(net, admin)
    users = {name: net.enroll_user(msp, f"bench-{name}", role) for name, (msp, role) in {
        "feed": ("SecOpsMSP", "feed"), "itops-op": ("ITOpsMSP", "operator"),
        "secops-appr": ("SecOpsMSP", "approver"), "compl-appr": ("ComplianceMSP", "approver"),
    }.items()}
    c = {name: session_of(net, u.identity, u.signer) for name, u in users.items()}
    submit(c["feed"], "RecordVulnerability", {"vuln_id": "CVE-2024-3094", "severity": "critical",
                                             "known_exploited": True})
    digest = hashlib.sha256(b"bench artifact").hexdigest()
    submit(c["feed"], "ProposePatch", {
        "patch_id": "P-bench", "title": "bench", "vendor": "Debian", "artifact_sha256": digest,
        "artifact_size": 1, "artifact_uri": "https://a/b", "fixes": ["CVE-2024-3094"],
        "targets": ["pkg:deb/debian/xz-utils"]})
    submit(c["itops-op"], "AttachTestEvidence", "P-bench",
           {"report_sha256": digest, "uri": "https://ci/1", "passed": True})
    for name in ("secops-appr", "compl-appr"):
        user = users[name]
        body = ApprovalStatement(patch_id="P-bench", artifact_sha256=digest, decision="approve",
                                 msp_id=user.identity.msp_id,
                                 approver=user.identity.enrollment_id,
                                 expires_at=int(time.time()) + 86_400)
        signature = encode_b64(user.signer(hashlib.sha256(body.to_json()).digest()))
        submit(c[name], "Approve", {"statement": body.to_dict(), "signature": signature})
    progress(f"patch approved; enrolling {n_hosts} hosts")
    hosts = []
    issuer = Issuer.of(net, "ITOpsMSP")
    for i in range(n_hosts):
        key = ec.generate_private_key(ec.SECP256R1())
        hid = f"bh{i:04d}"
        hosts.append(Host(hid, key, host_certificate(issuer, key, hid)))
    op = c["itops-op"]

    def enroll(host: Host) -> None:
        submit(op, "EnrollHost", {"host_id": host.host_id, "cert_pem": host.cert_pem,
                                  "groups": ["bench"]})

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(enroll, hosts))
    submit(op, "CreateRollout", {"rollout_id": "R-bench", "patch_id": "P-bench",
                                 "waves": [{"groups": ["bench"]}]})
    submit(op, "AdvanceRollout", "R-bench")
    progress("rollout started: one deployment per host")
    return op, hosts, "R-bench", "P-bench"


def next_reports(hosts: list[Host], cursor: int, count: int, rollout: str,
                 patch: str) -> tuple[list[dict[str, Any]], int]:
    out = []
    for _ in range(count):
        host = hosts[cursor % len(hosts)]
        cursor += 1
        host.sequence += 1
        body = HostReport(host_id=host.host_id, rollout_id=rollout, patch_id=patch,
                          outcome=OUTCOMES[host.sequence - 1], sequence=host.sequence,
                          inventory_sha256=INVENTORY, reported_at=int(time.time()))
        out.append({"report": body.to_dict(), "signature": encode_b64(sign(host.key,
                                                                          body.to_json()))})
    return out, cursor


#: The organizations that endorse ReportDeployments: a majority (the chaincode's policy, which
#: governs deployment records); naming the endorsers spares the gateway a sequential planning
#: round.
ENDORSERS = ("ITOpsMSP", "SecOpsMSP")


@dataclass(frozen=True)
class Step:
    """One row of the plan: ``count`` batches of ``size`` reports, ``in_flight`` at a time."""

    size: int
    count: int
    in_flight: int = 1


def parse_plan(text: str) -> list[Step]:
    """``size:count[:in_flight]`` pairs or triples, comma-separated.

    Raises:
        SystemExit: a malformed entry, or a number below 1.
    """
    steps = []
    for part in text.split(","):
        try:
            numbers = [int(n) for n in part.split(":")]
            step = Step(*numbers)
        except (TypeError, ValueError):
            raise SystemExit(f"--batches: {part!r} is not size:count[:in_flight]") from None
        if min(numbers) < 1:
            raise SystemExit(f"--batches: {part!r} needs numbers of at least 1")
        steps.append(step)
    return steps


def run_stream(op: Session, hosts: list[Host], size: int, count: int, rollout: str,
               patch: str, endorser_peers: list[Gateway]) -> tuple[list[float], ...]:
    """Submit ``count`` batches of ``size`` reports of ``hosts``, one after the other: each
    once the previous one is committed on every endorsing organization's peer.

    Raises:
        SystemExit: a batch was not committed valid, or not every report was accepted.
    """
    endorse, latency, lag = [], [], []
    cursor = 0
    for _ in range(count):
        if cursor % len(hosts) + size > len(hosts):
            cursor += len(hosts) - cursor % len(hosts)  # a batch names each host once
        reports, cursor = next_reports(hosts, cursor, size, rollout, patch)
        arg = json.dumps(reports)
        t0 = time.monotonic()
        submitted = op.contract.submit_async("ReportDeployments", [arg], endorse_timeout=120,
                                             endorsing_organizations=list(ENDORSERS))
        t1 = time.monotonic()
        status = submitted.get_status(120)
        t2 = time.monotonic()
        result = json.loads(submitted.result)
        if not status.successful or result["accepted"] != size:
            raise SystemExit(f"batch of {size}: {status.code_name}, "
                             f"{result['accepted']} accepted: {result['results'][:3]}")
        for gateway in endorser_peers:
            gateway.new_commit(submitted.bytes).get_status(120)
        endorse.append(t1 - t0)
        latency.append(t2 - t0)
        lag.append(time.monotonic() - t2)
    return endorse, latency, lag


def streams_of(sequences: list[int], step: Step) -> list[tuple[list[int], int]]:
    """Split host indices for ``step``: ``in_flight`` disjoint slices of the least-reported
    hosts (``sequences``: reports so far per host), with the batch count of each.

    Raises:
        SystemExit: too few hosts for ``in_flight`` batches of ``size`` at once.
    """
    share = len(sequences) // step.in_flight
    if step.size > share:
        raise SystemExit(f"{step.in_flight} batches of {step.size} in flight need at least "
                         f"{step.size * step.in_flight} hosts")
    fresh = sorted(range(len(sequences)), key=lambda i: sequences[i])
    return [(fresh[i * share:(i + 1) * share],
             step.count // step.in_flight + (i < step.count % step.in_flight))
            for i in range(step.in_flight)]


def check_plan(n_hosts: int, plan: list[Step]) -> None:
    """Refuse, before any network starts, a plan that gives a host more reports than
    :data:`OUTCOMES` has steps (each report moves its deployment forward).

    Raises:
        SystemExit: naming the step that runs out.
    """
    sequences = [0] * n_hosts
    for step in plan:
        for part, count in streams_of(sequences, step):
            cursor = 0  # as run_stream walks its hosts
            for _ in range(count):
                if cursor % len(part) + step.size > len(part):
                    cursor += len(part) - cursor % len(part)
                for _ in range(step.size):
                    sequences[part[cursor % len(part)]] += 1
                    cursor += 1
        if max(sequences) > len(OUTCOMES):
            raise SystemExit(f"{n_hosts} hosts allow at most {len(OUTCOMES)} reports each; "
                             f"the plan runs out at {step.size}:{step.count}:{step.in_flight}")


def measure(op: Session, hosts: list[Host], rollout: str, patch: str,
            plan: list[Step]) -> list[Row]:
    """Submit the batches of ``plan``: per step, ``in_flight`` streams run at once, each over
    its own slice of the hosts (so batches in flight never name the same host, and no
    endorser reads a host record another batch in flight writes), each stream one batch at a
    time.

    Raises:
        SystemExit: a batch was not committed valid, not every report was accepted, or the
            hosts are too few for ``in_flight`` disjoint batches.
    """
    rows = []
    # the other endorsers' peers, where each batch must be committed before the next
    endorser_peers = [g for msp, g in op.others.items() if msp in ENDORSERS]
    for step in plan:
        streams_plan = streams_of([h.sequence for h in hosts], step)
        meter = CpuMeter()
        meter.start()
        started = time.monotonic()
        with ThreadPoolExecutor(step.in_flight) as pool:
            futures = [pool.submit(run_stream, op, [hosts[i] for i in part], step.size, n,
                                   rollout, patch, endorser_peers)
                       for part, n in streams_plan]
            streams = [f.result() for f in futures]
        seconds = time.monotonic() - started
        cpu = by_column(meter.stop())
        endorse, latency, lag = ([x for s in streams for x in s[i]] for i in range(3))
        rows.append(Row(step.size, step.count, step.in_flight, step.size * step.count, seconds,
                        endorse, latency, lag, cpu, os.getloadavg()[0]))
        progress(f"batch {step.size} x{step.in_flight}: done")
    return rows


def table(rows: list[Row]) -> str:
    """The rates table, then the CPU per report table (ms, by component, with the rate two
    idle cores would give at that CPU cost: 2,000 ms / total, and the cores the network got:
    its CPU seconds per wall second, at most 2 on this machine; less when others' work
    competes)."""
    lines = ["| reports/batch | batches | reports/s | in flight | endorse p50 s "
             "| commit latency p50 s | commit latency max s | endorser lag max s | load |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.batch} | {r.batches} | {r.reports / r.seconds:.1f} | {r.in_flight} | "
                     f"{statistics.median(r.endorse):.3f} | {statistics.median(r.latency):.3f} "
                     f"| {max(r.latency):.3f} | {max(r.lag):.3f} | {r.load:.1f} |")
    names = ["chaincode", "peers", "orderers", "client"]
    lines += ["", "| reports/batch x in flight | " + " | ".join(names)
              + " | total CPU ms/report | reports/s on 2 idle cores | cores used |",
              "|---|" + "---:|" * (len(names) + 3)]
    for r in rows:
        per = {name: 1000 * r.cpu.get(name, 0.0) / r.reports for name in names}
        total = 1000 * sum(r.cpu.values()) / r.reports
        lines.append(f"| {r.batch} x {r.in_flight} | "
                     + " | ".join(f"{per[n]:.2f}" for n in names)
                     + f" | {total:.2f} | {2000 / total if total else 0:.0f} "
                     f"| {sum(r.cpu.values()) / r.seconds:.2f} |")
    return "\n".join(lines)


#: Default port base: below Linux's ephemeral port range, apart from the other benches'.
PORT_BASE = 19000
SMOKE_HOSTS, SMOKE_BATCHES = 10, "1:2,10:1"


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the network's reset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--batches", default="1:30,10:10,100:5,500:2",
                        help="size:count[:in_flight] entries, run in order (in_flight: "
                             "batches at once, over disjoint hosts; default 1)")
    parser.add_argument("--port-base", type=int, default=PORT_BASE,
                        help=f"the network's port base (default {PORT_BASE})")
    parser.add_argument("--state-dir", type=Path,
                        help="the network's state directory (default: a new temporary one); "
                             "removed at the end")
    parser.add_argument("--keep-logs", type=Path,
                        help="copy the nodes' logs (peers: 'Validated block [N] in X ms') "
                             "into this directory before the network is reset")
    parser.add_argument("--smoke", action="store_true",
                        help=f"smallest scale ({SMOKE_HOSTS} hosts, batches {SMOKE_BATCHES})")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hosts, args.batches = SMOKE_HOSTS, SMOKE_BATCHES
    plan = parse_plan(args.batches)
    check_plan(args.hosts, plan)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="patchledger-bench-reports-"))
    env = {**os.environ, "PATCHLEDGER_STATE_DIR": str(state / "network"),
           "PATCHLEDGER_PORT_BASE": str(args.port_base)}
    manager = Manager(config_from_env(env), progress)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        manager.up()
        op, hosts, rollout, patch = setup(LocalNetwork(manager), args.hosts)
        rows = measure(op, hosts, rollout, patch, plan)
    finally:
        if args.keep_logs and (state / "network" / "logs").is_dir():
            shutil.copytree(state / "network" / "logs", args.keep_logs, dirs_exist_ok=True)
        if manager.config.state_dir.exists():
            manager.reset()
        shutil.rmtree(state, ignore_errors=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
