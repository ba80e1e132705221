"""Installer backends: how an artifact is applied to a host, rolled back and recovered.

:class:`InstallerBackend` is the interface the runner drives; :class:`FileTreeBackend` is the
file-tree implementation (a dpkg backend will be another).
"""

from patchledger.agent.backends.base import ApplyPlan, InstallerBackend, Recovery
from patchledger.agent.backends.filetree import FileTreeBackend

__all__ = ["ApplyPlan", "FileTreeBackend", "InstallerBackend", "Recovery"]
