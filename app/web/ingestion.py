"""Feed imports run by the app: once on request (``POST /api/v1/feeds/import``) or on a
schedule in ``app serve --ingest-as USER`` (one scheduler per deployment: app.ingest's
database lease refuses a second one, and a manual import while it is held)."""

from __future__ import annotations

import secrets
import threading
from typing import Any

from patchledger.app.ingest.ledger import GatewayLedgerWriter
from patchledger.app.ingest.pipeline import (
    IngestionReport,
    IngestionSettings,
    default_holder,
    run_ingestion_loop,
    run_ingestion_once,
)
from patchledger.app.readmodel.projector import lag
from patchledger.app.web import auth
from patchledger.app.web.errors import RequestError
from patchledger.app.web.ledger import Actor, LedgerError


def ingest_once(st: Any, actor: Actor, settings: IngestionSettings) -> IngestionReport:
    """One import of ``settings.sources`` as ``actor`` (a feed identity), with lost
    submissions declared only when the read model has caught up with the peer.

    Raises:
        LedgerError: no peer, or the actor has no identity (503/403).
    """
    writer = GatewayLedgerWriter(st.ledger.contract(actor))
    try:
        height: int | None = st.ledger.height()
    except LedgerError:
        height = None
    caught_up = lag(st.engine, height).behind == 0
    report = run_ingestion_once(st.engine, settings, writer, read_model_caught_up=caught_up)
    for source in settings.sources:
        st.metrics.feed_imports.labels(source, report.status).inc()
    return report


class IngestionScheduler:
    """Imports the configured feeds every ``interval`` seconds as one feed user."""

    def __init__(self, app: Any, username: str, interval: float) -> None:
        """Resolve the feed user (enrolled with the CA now if it is not yet).

        Raises:
            RequestError: no feed sources configured, or the user is not a feed user.
            LedgerError: the CA cannot enroll the user.
        """
        st = app.extensions["patchledger"]
        if not st.config.feed_sources:
            raise RequestError(f"{st.config.organization}'s app has no feed sources "
                               "configured (feeds)", field="feeds")
        db = st.sessions()
        try:
            user = auth.find_user(db, username)
            if user.role != "feed" or user.disabled:
                raise RequestError(f"user {username!r} is not an active feed user",
                                   field="username")
            if not user.enrollment_id:
                user.enrollment_id = st.ledger.enroll(user.username, user.role)
                db.commit()
            self._actor = Actor(user.enrollment_id, user.role)
        finally:
            db.close()
        self._state = st
        self._settings = IngestionSettings(sources=st.config.feed_sources, interval=interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed-ingestion", daemon=True)
        self.error: Exception | None = None
        #: the lease holder: unique per scheduler, so two in one process exclude each other
        self.holder = f"{default_holder()}:scheduler:{secrets.token_hex(4)}"
        self.reports: list[IngestionReport] = []

    def start(self) -> None:
        """Start the loop (it takes the lease first; see :attr:`error` if it could not)."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the run in progress and release the lease."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            run_ingestion_loop(
                self._state.engine, self._settings,
                lambda: ingest_once(self._state, self._actor, self._settings),
                stop=self._stop, holder=self.holder, on_report=self.reports.append)
        except Exception as exc:  # the lease is held elsewhere: recorded for the caller
            self.error = exc
