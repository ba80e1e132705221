"""The approval policy: who must agree, and the defaults of rollouts and deadlines.

One Policy record per policy id (the lifecycle uses :data:`DEFAULT_POLICY_ID`). It names the
voting organizations and, per severity class, how many distinct organizations must approve a
patch. It also holds the quorums of governance decisions (policy changes, revocations,
exceptions), the longest validity of an approval statement, rollout defaults and remediation
deadlines. A policy has no state machine: it is created once (bootstrap, at chaincode
initialization, endorsed by the channel's MAJORITY) and afterwards replaced only by an adopted
:class:`~chaincode.lifecycle.policy_change.PolicyChange`, each time with ``version + 1``.

Every quorum must be between 1 and the number of voting organizations (:meth:`Policy.validate`,
also when reading). A policy that is written (bootstrap, a proposed change) must also pass
:func:`check_new_policy`: every quorum at least :data:`QUORUM_FLOOR` (2) distinct
organizations whenever the policy names two or more (so no single organization decides
anything alone), each organization named once compared without case (``secopsmsp`` next to
``SecOpsMSP`` is refused), and, when the channel's organizations are known, at least two of
them and no other. These rules apply when a policy is written, not when one is read, so a
ledger holding a policy written before them keeps working and can adopt a compliant one.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchledger.chaincode.lifecycle.errors import ValidationError
from patchledger.chaincode.lifecycle.fields import (
    choice,
    id_tuple,
    identifier,
    int_mapping,
    integer,
)
from patchledger.chaincode.lifecycle.record import Record
from patchledger.chaincode.lifecycle.severity import SEVERITIES

DEFAULT_POLICY_ID = "default"
REJECTION_RULES = ("any", "majority")
#: The smallest quorum of any decision once two or more organizations take part.
QUORUM_FLOOR = 2


@dataclass(frozen=True, kw_only=True)
class Policy(Record):
    """Approval quorums and defaults.

    Attributes:
        organizations: MSP ids of the voting organizations.
        quorum: per severity class, the number of distinct approving organizations needed.
        rejection: ``any`` (one rejection rejects) or ``majority`` (more than half of the
            voting organizations must reject); in both cases a patch is also rejected once
            the quorum can no longer be reached.
        change_quorum / revocation_quorum / exception_quorum: organizations needed to adopt a
            policy change, revoke a patch, grant a risk acceptance.
        max_statement_validity: longest lifetime of an approval statement, seconds.
        max_exception_lifetime: longest time from granting a risk acceptance to its expiry,
            seconds.
        failure_threshold_pct: default share of a wave's hosts allowed to fail.
        soak_seconds: default time a wave must run before the next one starts.
        remediation_days: per severity class, days allowed to remediate.
    """

    RECORD_TYPE = "Policy"
    KEY_FIELDS = ("policy_id",)
    policy_id: str
    version: int
    organizations: tuple[str, ...]
    quorum: dict[str, int]
    rejection: str = "any"
    change_quorum: int
    revocation_quorum: int
    exception_quorum: int
    max_statement_validity: int = 30 * 24 * 3600
    max_exception_lifetime: int = 90 * 24 * 3600
    failure_threshold_pct: int = 10
    soak_seconds: int = 3600
    remediation_days: dict[str, int]

    def validate(self) -> None:
        """Check fields and quorum bounds.

        Raises:
            ValidationError: naming the offending field.
        """
        identifier("policy_id", self.policy_id)
        integer("version", self.version, minimum=1)
        orgs = id_tuple("organizations", self.organizations, non_empty=True)
        count = len(orgs)
        quorum = int_mapping("quorum", self.quorum, SEVERITIES, minimum=1)
        for severity, needed in quorum.items():
            integer(f"quorum.{severity}", needed, minimum=1, maximum=count)
        choice("rejection", self.rejection, REJECTION_RULES)
        for name in ("change_quorum", "revocation_quorum", "exception_quorum"):
            integer(name, getattr(self, name), minimum=1, maximum=count)
        integer("max_statement_validity", self.max_statement_validity, minimum=60)
        integer("max_exception_lifetime", self.max_exception_lifetime, minimum=60)
        integer("failure_threshold_pct", self.failure_threshold_pct, maximum=100)
        integer("soak_seconds", self.soak_seconds)
        int_mapping("remediation_days", self.remediation_days, SEVERITIES, minimum=1)

    @property
    def quorums(self) -> dict[str, int]:
        """Every quorum of the policy by field name (``quorum.<severity>`` and the three
        governance quorums)."""
        out = {f"quorum.{severity}": needed for severity, needed in sorted(self.quorum.items())}
        for name in ("change_quorum", "revocation_quorum", "exception_quorum"):
            out[name] = getattr(self, name)
        return out


def check_new_policy(policy: Policy, channel_orgs: tuple[str, ...] = ()) -> None:
    """The rules a policy must pass to be written (module docstring).

    Args:
        channel_orgs: the channel's organizations, when known (empty: not checked).

    Raises:
        ValidationError: an organization named twice (case-insensitively), a quorum under
            the floor, or a policy naming other or fewer organizations than the channel
            allows, naming the field.
    """
    folded: dict[str, str] = {}
    for org in policy.organizations:
        if org.casefold() in folded:
            raise ValidationError(
                "organizations", f"names {folded[org.casefold()]} twice (as {org})"
            )
        folded[org.casefold()] = org
    count = len(policy.organizations)
    if count >= QUORUM_FLOOR:
        for name, needed in policy.quorums.items():
            integer(name, needed, minimum=QUORUM_FLOOR, maximum=count)
    if not channel_orgs:
        return
    strangers = sorted(set(policy.organizations) - set(channel_orgs))
    if strangers:
        raise ValidationError(
            "organizations", f"{', '.join(strangers)} is not an organization of the channel"
        )
    if len(channel_orgs) >= QUORUM_FLOOR and len(policy.organizations) < QUORUM_FLOOR:
        raise ValidationError(
            "organizations",
            f"must name at least {QUORUM_FLOOR} of the channel's {len(channel_orgs)}"
            " organizations (no organization decides alone)",
        )


def check_voter(policy: Policy, organization: str) -> None:
    """Refuse a vote from an organization that is not a voting member.

    Raises:
        ValidationError: ``organization`` is not in ``policy.organizations``.
    """
    if organization not in policy.organizations:
        raise ValidationError(
            "msp_id", f"{organization} is not a voting organization of policy {policy.policy_id}"
        )
