"""A TCP proxy that puts faults on the path between clients and a server, per client address:
delay with jitter on every chunk in both directions, connections lost (accepted and then
black-holed: nothing forwarded, held until the client gives up) or reset, and the whole path
down (new connections refused).

It stands in for ``tc netem`` where the kernel has no netem (:func:`tests.support.netns.
netem_available`): the faults a client sees are those of a lossy, slow link at the
application's level (slow answers, requests that time out, connections that break), not
per-packet loss (which TCP would hide as retransmission delay). Settings change while it
runs; :attr:`FaultProxy.stats` counts what it did.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["FaultProxy", "Faults"]


@dataclass
class Faults:
    """The faults of one client address (all off by default).

    Attributes:
        delay_ms, jitter_ms: each chunk waits ``delay ± jitter`` before it is forwarded.
        lose: the share of new connections black-holed.
        reset: the share of new connections closed at once.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    lose: float = 0.0
    reset: float = 0.0


@dataclass
class FaultProxy:
    """Listen on ``listen``; forward to ``upstream`` with the faults of the client's address
    (:attr:`faults`, else :attr:`default`)."""

    listen: tuple[str, int]
    upstream: tuple[str, int]
    default: Faults = field(default_factory=Faults)
    faults: dict[str, Faults] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    seed: int = 17
    _down: bool = False
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _held: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def start(self) -> None:
        """Bind and accept in a thread.

        Raises:
            OSError: the address cannot be bound.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.listen)
        sock.listen(512)
        sock.settimeout(0.2)
        self._sock = sock
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()

    def set_down(self, down: bool) -> None:
        """Refuse (close at once) every new connection while ``down``."""
        self._down = down

    def _faults(self, address: str) -> Faults:
        return self.faults.get(address, self.default)

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                client, (address, _) = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            faults = self._faults(address)
            with self._lock:
                draw = self._random.random()
            if self._down or draw < faults.reset:
                self.stats["reset"] += 1
                client.close()
                continue
            if draw < faults.reset + faults.lose:
                self.stats["lost"] += 1
                with self._lock:
                    self._held.append(client)  # never answered; closed at stop
                continue
            self.stats["forwarded"] += 1
            threading.Thread(target=self._serve, args=(client, faults), daemon=True).start()

    def _wait(self, faults: Faults) -> None:
        if faults.delay_ms or faults.jitter_ms:
            with self._lock:
                spread = self._random.uniform(-faults.jitter_ms, faults.jitter_ms)
            time.sleep(max(0.0, faults.delay_ms + spread) / 1000)

    def _serve(self, client: socket.socket, faults: Faults) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            self.stats["upstream down"] += 1
            client.close()
            return
        server.settimeout(None)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    self._wait(faults)
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(server, client), daemon=True)
        back.start()
        pump(client, server)
        back.join(timeout=60)
        client.close()
        server.close()

    def stop(self) -> None:
        """Stop accepting; close the black-holed connections."""
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            for held in self._held:
                held.close()
            self._held.clear()
