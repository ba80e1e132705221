"""The app's read-model feeder: one :class:`~patchledger.app.readmodel.projector.Projector`
thread per app process, restarted with a bounded back-off when the peer's block stream fails
(it resumes from the database checkpoint), and the lag gauge kept current."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine

from patchledger.app.fabric import FabricError
from patchledger.app.readmodel.projection import ApplyResult, ProjectionError
from patchledger.app.readmodel.projector import Projector, ProjectorSettings, lag
from patchledger.app.web.ledger import Ledger, LedgerError
from patchledger.app.web.metrics import Metrics

log = logging.getLogger("patchledger.app.web.projection")


class ProjectionRunner:
    """Runs the projector in a daemon thread until :meth:`stop`."""

    def __init__(self, engine: Engine, ledger: Ledger, metrics: Metrics, chaincode: str,
                 *, max_backoff: float = 30.0) -> None:
        self._engine = engine
        self._ledger = ledger
        self._metrics = metrics
        self._settings = ProjectorSettings(chaincode=chaincode)
        self._max_backoff = max_backoff
        self._stopped = threading.Event()
        self._projector: Projector | None = None
        self._thread = threading.Thread(target=self._loop, name="readmodel-projector",
                                        daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batch in progress and wait for the thread."""
        self._stopped.set()
        if self._projector is not None:
            self._projector.stop()
        self._thread.join(timeout)

    def refresh_lag(self) -> None:
        """Set the lag gauge from the peer's height (left unchanged when the peer is down)."""
        try:
            height = self._ledger.height()
        except LedgerError:
            return
        behind = lag(self._engine, height, self._settings).behind
        if behind is not None:
            self._metrics.readmodel_lag.set(behind)

    def _on_batch(self, _result: ApplyResult) -> None:
        self.refresh_lag()

    def _loop(self) -> None:
        backoff = 1.0
        while not self._stopped.is_set():
            try:
                self._projector = Projector(self._engine, self._ledger.network(),
                                            self._settings, on_batch=self._on_batch)
                self.refresh_lag()
                self._projector.run()
                backoff = 1.0
            except (FabricError, LedgerError) as exc:
                log.warning("read-model projector stopped; retrying",
                            extra={"error": str(exc), "retry_in": backoff})
            except ProjectionError as exc:
                log.exception("read-model projection refused the peer's blocks",
                              extra={"error": str(exc)})
                return
            except Exception:  # a feeder thread must not die silently: log, back off, retry
                log.exception("read-model projector failed; retrying from the checkpoint",
                              extra={"retry_in": backoff})
            self._stopped.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff)


def start_projection(app: Any) -> ProjectionRunner:
    """Start feeding ``app``'s read model from its peer (call once per database)."""
    from patchledger.app.web.factory import AppState

    st: AppState = app.extensions["patchledger"]
    runner = ProjectionRunner(st.engine, st.ledger, st.metrics, st.config.chaincode)
    runner.start()
    return runner
