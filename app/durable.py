"""The app's name for :func:`patchledger.common.durable.write_atomic` (moved there so that the
libraries below the app, which may not import app modules, share the one implementation)."""

from __future__ import annotations

from patchledger.common.durable import write_atomic

__all__ = ["write_atomic"]
