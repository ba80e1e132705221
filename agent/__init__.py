"""The patchledger host agent and its installer backends (see docs/agent.md).

Public surface: :func:`verify_deployment` (an endorsed attestation of ledger state, verified
offline), :func:`verify_channel_roots` (the roots to pin at enrollment), :func:`verify_patch`
(pure verification of a patch and its statements), :func:`run_assignment`
(one assignment end to end) with :class:`AgentConfig` and :class:`Assignment`, and the
file-tree backend in :mod:`agent.backends`. Errors are in :mod:`agent.errors`.
"""

from patchledger.agent.attestation import verify_channel_roots, verify_deployment
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
    "verify_channel_roots",
    "verify_deployment",
    "verify_patch",
]
