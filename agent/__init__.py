"""The patchledger host agent and its installer backends (see docs/agent.md).

Public surface: :func:`verify_patch` (pure verification before applying), :func:`run_assignment`
(one assignment end to end) with :class:`AgentConfig` and :class:`Assignment`, and the
file-tree backend in :mod:`agent.backends`. Errors are in :mod:`agent.errors`.
"""

from patchledger.agent.config import AgentConfig
from patchledger.agent.runner import Assignment, Outcome, RunResult, run_assignment
from patchledger.agent.verify import ArtifactFacts, Verdict, verify_patch

__all__ = [
    "AgentConfig",
    "ArtifactFacts",
    "Assignment",
    "Outcome",
    "RunResult",
    "Verdict",
    "run_assignment",
    "verify_patch",
]
