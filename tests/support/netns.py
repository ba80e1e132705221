"""Network namespaces for tests: hosts on a real network path (``ip netns`` and veth pairs),
with faults put on their links by ``tc netem`` (delay, loss) and partitions (link down).

Layout of one :class:`NetLab` (``<p>``: a prefix unique to the lab, e.g. ``plrn3fa``)::

    root namespace                      namespace <p>-<i>
    bridge <p>b  10.231.0.1/16  ---  veth <p>h<i> == <p>n<i>  10.231.<i // 250>.<i % 250 + 2>

(``10.231.0.0/16`` is the default ``subnet``; a lab on another subnet, e.g. ``10.232.0.0/16``,
can run beside it.)

Every namespace reaches ``lab.gateway`` (the bridge's address in the root namespace, where a
test binds its servers) over its own veth pair; namespaces reach each other through the
bridge. ``netem`` (where the kernel has it, :func:`netem_available`) acts on both
directions of one host's link (the egress of both ends of its veth pair); ``partition`` sets
the host side of the pair down, ``heal`` sets it up again; ``shape`` is a slow link
(``tc tbf``). One lab at a time per subnet: the bridge's address is the subnet's first.

Everything is created with the lab's prefix and deleted by :meth:`NetLab.close` (also for
what a failed test left), so labs of concurrent test runs never meet. Needs root (or
CAP_NET_ADMIN and CAP_SYS_ADMIN) and the ``ip`` and ``tc`` programs: :func:`open_lab` skips
the test with the reason when a namespace cannot be created.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["Host", "NetLab", "NetnsError", "netem_available", "netns_unavailable", "open_lab"]

SUBNET = ipaddress.IPv4Network("10.231.0.0/16")


class NetnsError(RuntimeError):
    """A namespace, link or qdisc command failed; the message names the command and its
    output."""


def _ip() -> str:
    return shutil.which("ip") or "/usr/sbin/ip"


def _tc() -> str:
    return shutil.which("tc") or "/usr/sbin/tc"


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()}")
    return done


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here (``None``: they can): not root, no ``ip``/``tc``,
    or creating a probe namespace failed (the kernel's answer)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add): not running as root"
    for program in (_ip(), _tc()):
        if not os.access(program, os.X_OK):
            return f"{program} is not installed"
    probe = f"plprobe{secrets.token_hex(3)}"
    done = _run([_ip(), "netns", "add", probe], check=False)
    if done.returncode != 0:
        return f"ip netns add is not permitted here: {done.stderr.strip()}"
    _run([_ip(), "netns", "delete", probe], check=False)
    return None


_NETEM: list[bool] = []


def netem_available() -> bool:
    """Whether ``tc ... netem`` works here (probed once, in a throw-away namespace: some
    kernels, e.g. minimal VM kernels, are built without sch_netem)."""
    if not _NETEM:
        probe = f"plprobe{secrets.token_hex(3)}"
        ok = _run([_ip(), "netns", "add", probe], check=False).returncode == 0
        if ok:
            ok = _run([_ip(), "netns", "exec", probe, _tc(), "qdisc", "add", "dev", "lo",
                       "root", "netem", "delay", "1ms"], check=False).returncode == 0
            _run([_ip(), "netns", "delete", probe], check=False)
        _NETEM.append(ok)
    return _NETEM[0]


@dataclass(frozen=True)
class Host:
    """One namespace of a lab: its name, address and the two ends of its veth pair."""

    index: int
    namespace: str
    address: str
    host_link: str
    ns_link: str


@dataclass
class NetLab:
    """A bridge in the root namespace and hosts in their own namespaces (module docstring)."""

    prefix: str
    subnet: ipaddress.IPv4Network = SUBNET
    hosts: list[Host] = field(default_factory=list)
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}b"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the lab's bridge (bind servers here)."""
        return str(self.subnet.network_address + 1)

    def start(self) -> None:
        """Create the bridge with the gateway address.

        Raises:
            NetnsError: a command failed.
        """
        _run([_ip(), "link", "add", self.bridge, "type", "bridge"])
        _run([_ip(), "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev",
              self.bridge])
        _run([_ip(), "link", "set", self.bridge, "up"])

    def add_host(self) -> Host:
        """A new namespace joined to the bridge by a veth pair, its loopback and link up.

        Raises:
            NetnsError: a command failed (what was created stays listed for :meth:`close`).
        """
        i = len(self.hosts)
        if i >= 250 * 250 or (i // 250 + 1) * 256 > self.subnet.num_addresses:
            raise NetnsError(f"a lab on {self.subnet} holds at most "
                             f"{min(250 * 250, self.subnet.num_addresses // 256 * 250)} hosts")
        address = str(self.subnet.network_address + (i // 250) * 256 + i % 250 + 2)
        host = Host(i, f"{self.prefix}-{i}", address, f"{self.prefix}h{i}", f"{self.prefix}n{i}")
        self.hosts.append(host)
        ns = host.namespace
        _run([_ip(), "netns", "add", ns])
        _run([_ip(), "link", "add", host.host_link, "type", "veth", "peer", "name",
              host.ns_link])
        _run([_ip(), "link", "set", host.ns_link, "netns", ns])
        _run([_ip(), "link", "set", host.host_link, "master", self.bridge])
        _run([_ip(), "link", "set", host.host_link, "up"])
        self.exec_check(host, [_ip(), "addr", "add", f"{address}/{self.subnet.prefixlen}",
                               "dev", host.ns_link])
        self.exec_check(host, [_ip(), "link", "set", host.ns_link, "up"])
        self.exec_check(host, [_ip(), "link", "set", "lo", "up"])
        return host

    # ---------------------------------------------------------------- processes inside

    def command(self, host: Host, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace."""
        return [_ip(), "netns", "exec", host.namespace, *argv]

    def exec_check(self, host: Host, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the namespace and wait for it.

        Raises:
            NetnsError: it exited non-zero.
        """
        return _run(self.command(host, argv))

    def spawn(self, host: Host, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              **popen: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in the namespace (its own process group); :meth:`close` stops it
        if the test did not."""
        process = subprocess.Popen(self.command(host, argv), env=dict(env or os.environ),
                                   start_new_session=True, **popen)
        self.processes.append(process)
        return process

    # ------------------------------------------------------------------------- faults

    def netem(self, host: Host, *, delay_ms: int = 0, jitter_ms: int = 0,
              loss_percent: float = 0.0) -> None:
        """Delay (with jitter) and loss on both directions of ``host``'s link (replaces any
        earlier netem of the link).

        Raises:
            NetnsError: tc refused (e.g. no sch_netem in the kernel).
        """
        if not netem_available():
            raise NetnsError("the kernel has no netem queueing discipline (sch_netem): "
                             "tc qdisc ... netem is refused")
        spec = ["delay", f"{delay_ms}ms"]
        if jitter_ms:
            spec.append(f"{jitter_ms}ms")
        if loss_percent:
            spec += ["loss", f"{loss_percent}%"]
        _run([_tc(), "qdisc", "replace", "dev", host.host_link, "root", "netem", *spec])
        self.exec_check(host, [_tc(), "qdisc", "replace", "dev", host.ns_link, "root", "netem",
                               *spec])

    def shape(self, host: Host, *, rate_kbit: int, latency_ms: int = 400) -> None:
        """A slow link: ``tc tbf`` on both ends of ``host``'s veth pair (a token bucket of
        ``rate_kbit``; packets that would wait over ``latency_ms`` are dropped).

        Raises:
            NetnsError: tc refused.
        """
        spec = ["tbf", "rate", f"{rate_kbit}kbit", "burst", "16kb", "latency",
                f"{latency_ms}ms"]
        _run([_tc(), "qdisc", "replace", "dev", host.host_link, "root", *spec])
        self.exec_check(host, [_tc(), "qdisc", "replace", "dev", host.ns_link, "root", *spec])

    def clear_netem(self, host: Host) -> None:
        """Remove ``host``'s netem (both ends; none present is fine)."""
        _run([_tc(), "qdisc", "del", "dev", host.host_link, "root"], check=False)
        _run(self.command(host, [_tc(), "qdisc", "del", "dev", host.ns_link, "root"]),
             check=False)

    def partition(self, host: Host) -> None:
        """Cut ``host`` off: the host side of its veth pair down (packets are dropped, open
        connections hang until their timeouts).

        Raises:
            NetnsError: the command failed.
        """
        _run([_ip(), "link", "set", host.host_link, "down"])

    def heal(self, host: Host) -> None:
        """Undo :meth:`partition`.

        Raises:
            NetnsError: the command failed.
        """
        _run([_ip(), "link", "set", host.host_link, "up"])

    # ----------------------------------------------------------------------- teardown

    def stop_processes(self) -> None:
        """Stop the processes started with :meth:`spawn` (SIGTERM, then SIGKILL)."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def close(self) -> None:
        """Stop the processes, delete every namespace, link and the bridge of this lab."""
        self.stop_processes()
        for host in self.hosts:
            _run([_ip(), "link", "delete", host.host_link], check=False)
            _run([_ip(), "netns", "delete", host.namespace], check=False)
        _run([_ip(), "link", "delete", self.bridge], check=False)
        self.hosts.clear()


def open_lab(prefix: str = "plrn", subnet: ipaddress.IPv4Network = SUBNET) -> NetLab:
    """A started lab on ``subnet`` (at least a /23) with a fresh prefix (``prefix`` + 3
    random hex digits, so link names stay under 15 characters); the calling test is skipped
    with the reason when namespaces cannot be made here.

    Raises:
        NetnsError: namespaces work but the bridge could not be set up.
    """
    why = netns_unavailable()
    if why is not None:
        pytest.skip(why)
    lab = NetLab(f"{prefix}{secrets.token_hex(2)[:3]}", subnet)
    try:
        lab.start()
    except NetnsError:
        lab.close()
        raise
    return lab
