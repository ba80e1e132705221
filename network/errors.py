"""The root of every error the network package raises for a person to act on.

:class:`NetworkError` is raised as itself for misuse and state problems: ports in use, Fabric
binaries missing, an incomplete or corrupt state directory, another command holding the state
directory's lock, bad ``deploy`` arguments, a network that does not converge (gossip, Raft).
Its subclasses name the step that failed, each defined beside that step:
:class:`~patchledger.network.channel.ChannelError`,
:class:`~patchledger.network.chaincode.ChaincodeError`,
:class:`~patchledger.network.identities.EnrollmentError`,
:class:`~patchledger.network.peercli.PeerCommandError`,
:class:`~patchledger.network.process.ProcessError` and
:class:`~patchledger.network.smoke.SmokeError`. Every message names what a person needs: the
node, organization, port, file or step. ``patchledger network`` prints it as one line and exits
with status 2 (:mod:`patchledger.network.cli`).
"""

from __future__ import annotations


class NetworkError(Exception):
    """Operating the local network failed; the message says what and where."""
