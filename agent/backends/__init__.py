"""Installer backends: how an artifact is applied to a host, rolled back and recovered."""

from patchledger.agent.backends.filetree import ApplyPlan, FileTreeBackend, Recovery

__all__ = ["ApplyPlan", "FileTreeBackend", "Recovery"]
