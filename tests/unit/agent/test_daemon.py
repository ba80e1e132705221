"""The daemon against the local test app over mutual TLS: enrollment, inventory, the cheap
poll and the ETag, download, apply (file tree and dpkg), reports queued and resent until
acknowledged; outages, garbage and replays; backoff and the server's interval; the lock, dry
run and SIGTERM during a change."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from patchledger.agent.backends.dpkg import DpkgBackend
from patchledger.agent.daemon import EXIT_INTERRUPTED, Agent
from patchledger.agent.enroll import Enrolled, attested_roots, enroll
from patchledger.agent.errors import LockError
from patchledger.agent.lock import LockFile
from patchledger.agent.runner import Outcome
from patchledger.agent.settings import DaemonSettings
from patchledger.agent.transport import NONCE_HEADER, ProtocolError, Transport, client_context
from patchledger.chaincode.lifecycle.attestation import roots_fingerprint
from patchledger.chaincode.lifecycle.errors import ReplayError
from patchledger.chaincode.lifecycle.host_report import SignedReport, verify_report
from tests.unit.agent.agent_support import make_tar, sha256
from tests.unit.agent.app_server import AppServer, ledger_pki, roots_attestation, running
from tests.unit.agent.attestation_support import CHAINCODE, CHANNEL, App, ledger, peer
from tests.unit.agent.debs import build_deb
from tests.unit.lifecycle.lifecycle_support import ITOPS, NOW, TRUST

ARTIFACT = make_tar({"VERSION": b"2.0\n", "bin/tool": b"#!/bin/sh\necho 2.0\n"})
CYCLONEDX = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [
    {"type": "library", "name": "tool", "version": "1.0", "purl": "pkg:generic/tool@1.0"}]}


def assignment(artifact: bytes, *, rollout: str = "R-1", patch: str = "P-1") -> dict[str, Any]:
    return {"rollout_id": rollout, "patch_id": patch,
            "artifact": {"sha256": sha256(artifact), "size": len(artifact)}}


@dataclass
class World:
    server: AppServer
    identity: Enrolled
    tmp: Path

    def agent(self, **settings: Any) -> Agent:
        defaults: dict[str, Any] = {
            "server": self.server.url, "state_dir": self.tmp / "state",
            "target": self.tmp / "srv" / "app", "inventory_source": "sbom",
            "inventory_sbom": self.tmp / "sbom.json",
        }
        merged = {**defaults, **settings}
        context = client_context(self.identity.tls_ca_file, self.identity.cert_file,
                                 self.identity.key_file)
        return Agent(DaemonSettings(**merged), self.identity,
                     Transport(self.server.url, context, timeout=10),
                     random_unit=lambda: 0.5, clock=lambda: NOW)

    def publish(self, *artifacts: bytes) -> None:
        """The first artifact is patch P-1 of rollout R-1 on the ledger, approved by SecOps
        and Compliance, h1 in its first wave; the app relays the peers' attestations."""
        self.server.state.desired = {"assignments": [assignment(a) for a in artifacts]}
        for a in artifacts:
            self.server.state.artifacts[sha256(a)] = a
        self.server.state.attest_deployment = App(ledger(artifacts[0]))

    def calls(self) -> list[str]:
        return [f"{m} {p.rsplit('/', 1)[-1]}" for m, p, _, _ in self.server.state.requests]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running(tmp_path, ledger_pki()) as (srv, ca):
        srv.state.tokens["tok"] = time.time() + 600
        srv.state.attest_roots = roots_attestation
        verifier = attested_roots(fingerprint=roots_fingerprint(TRUST), channel=CHANNEL,
                                  chaincode=CHAINCODE, now=int(time.time()))
        identity = enroll(Transport(srv.url, client_context(ca)), host_id="h1", token="tok",
                          state_dir=tmp_path / "state", fingerprints={}, verifier=verifier,
                          tls_ca_pem=ca.read_bytes(), now=int(time.time()))
        (tmp_path / "sbom.json").write_text(json.dumps(CYCLONEDX))
        target = tmp_path / "srv" / "app"
        target.mkdir(parents=True)
        (target / "VERSION").write_bytes(b"1.0\n")
        srv.state.requests.clear()
        yield World(srv, identity, tmp_path)


def test_a_cycle_reports_inventory_applies_and_reports(world: World) -> None:
    world.publish(ARTIFACT)
    agent = world.agent()
    report = agent.cycle()
    assert report.inventory_sent and report.desired_changed
    ((key, result),) = report.results
    assert (key, result.outcome) == ("R-1/P-1", Outcome.APPLIED)
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"2.0\n"
    assert world.calls() == ["GET poll", "PUT inventory", "GET desired-state",
                             f"GET {sha256(ARTIFACT)}", "POST deployment", "POST reports"]
    (stored,) = world.server.state.reports.values()
    signed = SignedReport.from_dict(stored)
    assert (signed.report.host_id, signed.report.outcome) == ("h1", "APPLIED")
    assert report.reports_sent == 1 and agent.outbox.pending() == []
    assert world.server.state.inventories[0]["format"] == "cyclonedx"
    # the next cycle: same ETag, nothing changed: one cheap poll only
    world.server.state.requests.clear()
    again = agent.cycle()
    assert again.results == () and not again.desired_changed
    assert world.calls() == ["GET poll"]


def test_reports_verify_with_the_enrolled_host_certificate(world: World) -> None:
    world.publish(ARTIFACT)
    world.agent().cycle()
    (stored,) = world.server.state.reports.values()
    cert_pem = world.identity.cert_file.read_bytes()
    verify_report(SignedReport.from_dict(stored), cert_pem, last_sequence=0, now=NOW)
    with pytest.raises(ReplayError):  # the ledger's replay rule: the same sequence again
        verify_report(SignedReport.from_dict(stored), cert_pem, last_sequence=1, now=NOW)


def test_etag_and_if_none_match(world: World) -> None:
    world.publish(ARTIFACT)
    agent = world.agent()
    assert agent.refresh_desired()
    etag = agent.state.etag
    assert not agent.refresh_desired()  # 304
    sent = world.server.state.requests[-1][2]
    assert sent["If-None-Match"] == etag
    world.publish(ARTIFACT, make_tar({"other": b"x"}))
    assert agent.refresh_desired() and agent.state.etag != etag


def test_every_request_has_a_fresh_nonce_and_a_replay_is_refused(world: World) -> None:
    world.publish(ARTIFACT)
    world.agent().cycle()
    nonces = [h[NONCE_HEADER] for _, _, h, _ in world.server.state.requests]
    assert len(nonces) == len(set(nonces)) == 6
    transport = world.agent().transport
    with transport.open("GET", "/api/v1/agent/poll", nonce=nonces[0]) as (response, _):
        assert response.status == 409
    assert f"replayed nonce {nonces[0]}" in world.server.state.log


def test_an_answer_without_the_nonce_echo_is_refused(world: World) -> None:
    world.server.state.faults.no_nonce_echo = True
    with pytest.raises(ProtocolError, match="does not echo"):
        world.agent().poll()


def test_outage_backs_off_with_jitter_and_resets_on_success(world: World) -> None:
    world.server.state.faults.outage = 3
    world.server.state.poll_interval = 120
    agent = world.agent(backoff_base=4, backoff_cap=100)
    waits: list[float] = []
    stop = threading.Event()

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return len(waits) >= 5

    assert agent.run(stop, wait=wait) == 0
    # failures 1..3: equal jitter at u=0.5 of ceilings 4, 8, 16 (Retry-After 7 raises the first
    # two); then two successes at the server's interval 120 (jitter at u=0.5 is exact)
    assert waits == [7.0, 7.0, 12.0, 120.0, 120.0]
    assert agent.state.failures == 0 and agent.state.interval == 120


def test_garbage_is_a_failed_cycle_and_nothing_is_applied(world: World) -> None:
    world.publish(ARTIFACT)
    world.server.state.faults.garbage = 1
    agent = world.agent()
    assert agent.run(threading.Event(), once=True) == 1
    assert "answer is not JSON" in agent.state.last_error
    assert agent.state.failures == 1
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"1.0\n"


def test_a_server_that_is_down(world: World, tmp_path: Path) -> None:
    agent = world.agent()
    context = client_context(world.identity.tls_ca_file, world.identity.cert_file,
                             world.identity.key_file)
    agent.transport = Transport("https://127.0.0.1:22998", context, timeout=2)
    assert agent.run(threading.Event(), once=True) == 1
    assert "no answer" in agent.state.last_error


def test_reports_stay_queued_until_acknowledged(world: World) -> None:
    world.publish(ARTIFACT)
    world.server.state.faults.reports_down = True
    agent = world.agent()
    assert agent.run(threading.Event(), once=True) == 1  # applied, then the POST failed
    assert agent.state.settled == {"R-1/P-1": "APPLIED"}
    assert len(agent.outbox.pending()) == 1
    assert agent.status()["reports_queued"] == 1
    world.server.state.faults.reports_down = False
    restarted = world.agent()  # a new process finds the queue on disk
    assert restarted.run(threading.Event(), once=True) == 0
    assert restarted.outbox.pending() == []
    assert len(world.server.state.reports) == 1


def test_a_wrong_artifact_is_skipped_and_nothing_is_applied(world: World, caplog) -> None:
    world.publish(ARTIFACT)
    world.server.state.artifacts[sha256(ARTIFACT)] = ARTIFACT[:-1] + bytes([ARTIFACT[-1] ^ 1])
    agent = world.agent()
    with caplog.at_level(logging.ERROR, logger="patchledger.agent"):
        assert agent.run(threading.Event(), once=True) == 0
    assert agent.state.settled == {}
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"1.0\n"
    assert "host h1 deployment R-1/P-1: artifact refused, nothing applied" in caplog.text


def test_dry_run_changes_nothing_and_only_reads(world: World) -> None:
    world.publish(ARTIFACT)
    agent = world.agent(dry_run=True)
    ((_, result),) = agent.cycle().results
    assert result.outcome == Outcome.PLANNED
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"1.0\n"
    sent = {(m, p.rsplit("/", 1)[-1]) for m, p, _, _ in world.server.state.requests}
    assert {m for m, _ in sent} <= {"GET", "POST"}
    assert {p for m, p in sent if m == "POST"} == {"deployment"}  # the read-only attestation
    assert agent.state.settled == {}


def test_one_run_at_a_time(world: World) -> None:
    agent = world.agent()
    with LockFile(agent.lock_path), pytest.raises(LockError, match="pid"):
        agent.run(threading.Event(), once=True)


def test_sigterm_during_the_change_reverts_it_and_stops(world: World) -> None:
    world.publish(ARTIFACT)
    kill_parent = [sys.executable, "-c", "import os, signal; os.kill(os.getppid(),"
                   " signal.SIGTERM)"]
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        agent = world.agent(health_command=tuple(kill_parent))
        assert agent.run(threading.Event()) == EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"1.0\n"  # rolled back
    assert agent.state.settled == {} and agent.outbox.pending() == []
    assert "interrupted" in agent.state.last_error
    again = world.agent()
    assert again.run(threading.Event(), once=True) == 0
    assert again.state.settled == {"R-1/P-1": "APPLIED"}


def test_the_dpkg_backend_through_the_daemon(world: World) -> None:
    out = world.tmp / "debs"
    out.mkdir()
    deb = build_deb(out, "1.1")
    world.publish(deb)
    root = world.tmp / "root"
    agent = world.agent(backend="dpkg", target=root, dpkg_scripts="chrootless",
                        inventory_source="auto", inventory_root=root)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    ((_, result),) = agent.cycle().results
    assert result.outcome == Outcome.APPLIED, result.detail
    assert (root / "usr/share/plhello/version").read_text() == "hello 1.1\n"
    inventories = world.server.state.inventories
    assert inventories[0]["format"] == "dpkg-query"
    assert "plhello" in inventories[-1]["content"]  # sent again after the change
    (stored,) = world.server.state.reports.values()
    assert stored["report"]["inventory_sha256"] == inventories[-1]["sha256"]


def test_a_failed_health_check_rolls_the_dpkg_upgrade_back(world: World) -> None:
    out = world.tmp / "debs"
    out.mkdir()
    root = world.tmp / "root"
    old = DpkgBackend(root, world.tmp / "state" / "dpkg", scripts="chrootless")
    old.install(build_deb(out, "1.0"), "P-0")
    old.commit()
    world.publish(build_deb(out, "1.1"))
    check = (sys.executable, "-c", "import sys; sys.exit(4)")
    agent = world.agent(backend="dpkg", target=root, dpkg_scripts="chrootless",
                        inventory_source="dpkg", inventory_root=root, health_command=check)
    ((_, result),) = agent.cycle().results
    assert result.outcome == Outcome.ROLLED_BACK, result.detail
    assert (root / "usr/share/plhello/version").read_text() == "hello 1.0\n"
    outcomes = [r["report"]["outcome"] for r in world.server.state.reports.values()]
    assert outcomes == ["FAILED", "ROLLED_BACK"]


def test_status_is_for_a_person(world: World) -> None:
    world.publish(ARTIFACT)
    agent = world.agent()
    agent.run(threading.Event(), once=True)
    status = world.agent().status()
    assert status["host_id"] == "h1"
    assert status["assignments"] == [{"deployment": "R-1/P-1", "state": "APPLIED"}]
    assert status["running"] == ""
    assert status["pinned_organizations"] == ["ComplianceMSP", "ITOpsMSP", "SecOpsMSP"]
    assert os.path.exists(agent.state_path)


def test_a_stop_during_the_download_applies_nothing(world: World) -> None:
    world.publish(ARTIFACT)
    agent = world.agent()
    stop = threading.Event()
    fetch = agent.downloader.fetch

    def fetch_then_sigterm(*args: Any, **kwargs: Any):
        got = fetch(*args, **kwargs)
        stop.set()  # what the CLI's SIGTERM handler does
        return got

    agent.downloader.fetch = fetch_then_sigterm  # type: ignore[method-assign]
    assert agent.cycle(stop).results == ()
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"1.0\n"
    assert agent.state.settled == {}
    assert agent.downloader.path_of(sha256(ARTIFACT)).exists()  # kept for the next run


def test_an_app_attesting_with_its_own_peer_alone_gets_nothing_applied(world: World) -> None:
    world.publish(ARTIFACT)
    world.server.state.attest_deployment = App(ledger(ARTIFACT), endorsers=[peer(ITOPS)])
    ((_, result),) = world.agent().cycle().results
    assert result.outcome == Outcome.REFUSED
    assert "distinct organization" in result.detail
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"1.0\n"
    (stored,) = world.server.state.reports.values()
    assert stored["report"]["outcome"] == "FAILED"


def test_no_attestation_from_the_app_fails_the_cycle_before_any_change(world: World) -> None:
    world.publish(ARTIFACT)
    world.server.state.attest_deployment = None  # 503: the peers are unreachable
    agent = world.agent()
    assert agent.run(threading.Event(), once=True) == 1
    assert "attestations/deployment: HTTP 503" in agent.state.last_error
    assert (world.tmp / "srv/app/VERSION").read_bytes() == b"1.0\n"
    assert agent.state.settled == {}
