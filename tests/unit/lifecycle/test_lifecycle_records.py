"""Records: canonical JSON, forward compatibility, validation naming the field, merges."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchledger.chaincode.lifecycle import TransitionError, ValidationError
from patchledger.chaincode.lifecycle.approval import Approval
from patchledger.chaincode.lifecycle.canonical import canonical_json, parse_object
from patchledger.chaincode.lifecycle.deployment import MACHINE as DEPLOYMENT
from patchledger.chaincode.lifecycle.patch import MACHINE as PATCH
from patchledger.chaincode.lifecycle.patch import Patch
from patchledger.chaincode.lifecycle.policy import Policy
from patchledger.chaincode.lifecycle.policy_change import PolicyChange
from patchledger.chaincode.lifecycle.queries import record_class
from patchledger.chaincode.lifecycle.rollout import Rollout
from patchledger.chaincode.lifecycle.vulnerability import Source, Vulnerability, merge, same_content
from tests.unit.lifecycle.lifecycle_support import ARTIFACT, patch_data, policy_data, vuln_data


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": [1, "é"], "a": {"d": 1, "c": True}}) == (
        '{"a":{"c":true,"d":1},"b":[1,"é"]}'.encode()
    )


@pytest.mark.parametrize("value", [{"x": 1.5}, {"x": [0.1]}, {1: "a"}])
def test_canonical_json_refuses_floats_and_non_string_keys(value: Any) -> None:
    with pytest.raises(ValidationError):
        canonical_json(value)


@pytest.mark.parametrize(
    ("value", "field", "where"),
    [
        ({"detail": "a\ud800b"}, "detail", ""),
        ({"x": {"y": ["ok", "\udfff"]}}, "x.y[1]", ""),
        ({"x": {"\ud800": 1}}, "x.\ud800", "the key "),
        ("\ud800", "value", ""),
    ],
)
def test_canonical_json_refuses_lone_surrogates_naming_the_path(
    value: Any, field: str, where: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        canonical_json(value)
    assert excinfo.value.field == field
    assert excinfo.value.problem == f"{where}holds a lone surrogate (U+D800 to U+DFFF), which" + (
        " has no UTF-8 form"
    )
    with pytest.raises(ValidationError, match="lone surrogate"):
        parse_object(json.dumps({"a": "\ud800"}))
    with pytest.raises(ValidationError, match="'title': holds a lone surrogate"):
        Vulnerability.from_dict({**vuln_data(), "title": "\ud83d"})


@pytest.mark.parametrize("data", [b"[1]", b"{", b"\xff", b'{"x": NaN}'])
def test_parse_object_refuses_non_objects(data: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_object(data)


def test_record_json_has_type_and_schema_version() -> None:
    vuln = Vulnerability.from_dict(vuln_data())
    doc = json.loads(vuln.to_json())
    assert doc["record_type"] == "Vulnerability"
    assert doc["schema_version"] == 1
    assert vuln.to_json() == canonical_json(doc)
    assert Vulnerability.from_json(vuln.to_json()) == vuln


def test_unknown_fields_and_newer_schema_survive_a_round_trip_and_an_update() -> None:
    doc = {**vuln_data(), "schema_version": 3, "epss": "0.97", "nested": {"a": [1]}}
    vuln = Vulnerability.from_dict(doc)
    updated = vuln.evolve(status="MITIGATED")
    out = json.loads(updated.to_json())
    assert out["epss"] == "0.97"
    assert out["nested"] == {"a": [1]}
    assert out["schema_version"] == 3
    assert out["status"] == "MITIGATED"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("artifact_sha256", "ABC"),
        ("artifact_size", 0),
        ("artifact_size", True),
        ("fixes", []),
        ("fixes", ["a b"]),
        ("targets", []),
        ("title", ""),
        ("supersedes", "P-1"),
        ("test_evidence", [{"nope": 1}]),
        ("test_evidence", "x"),
        ("test_evidence", [1]),
        ("status", "DONE"),
    ],
)
def test_patch_validation_names_the_field(field: str, value: Any) -> None:
    data = {**patch_data(), "severity": "high", "proposed_by": "SecOpsMSP", field: value}
    with pytest.raises(ValidationError) as info:
        Patch.from_dict(data)
    assert info.value.field.startswith(field)


def test_missing_field_and_wrong_record_type() -> None:
    with pytest.raises(ValidationError, match="'severity'"):
        Vulnerability.from_dict({"vuln_id": "CVE-1"})
    with pytest.raises(ValidationError, match="record_type"):
        Vulnerability.from_dict({**vuln_data(), "record_type": "Patch"})
    with pytest.raises(ValidationError, match="record_type"):
        record_class("Nope")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quorum", {"critical": 4, "high": 2, "medium": 2, "low": 1}),
        ("quorum", {"critical": 2}),
        ("quorum", []),
        ("rejection", "never"),
        ("change_quorum", 0),
        ("organizations", ["A", "A"]),
        ("organizations", []),
        ("failure_threshold_pct", 101),
    ],
)
def test_policy_validation(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        Policy.from_dict({**policy_data(), "policy_id": "default", "version": 1, field: value})
    assert info.value.field.startswith(field)


def test_nested_and_odd_values() -> None:
    with pytest.raises(ValidationError, match="sources"):
        Vulnerability.from_dict({**vuln_data(), "sources": "x"})
    with pytest.raises(ValidationError, match="sources"):
        Vulnerability.from_dict({**vuln_data(), "sources": [1]})
    with pytest.raises(ValidationError, match="cvss_score"):
        Vulnerability.from_dict({**vuln_data(), "cvss_score": "11.0"})
    with pytest.raises(ValidationError, match="kev_due_date"):
        Vulnerability.from_dict({**vuln_data(), "kev_due_date": "soon"})
    with pytest.raises(ValidationError, match="known_exploited"):
        Vulnerability.from_dict({**vuln_data(), "known_exploited": "yes"})
    with pytest.raises(ValidationError, match="sorted"):
        Vulnerability(vuln_id="X", severity="low", sources=(Source("b", "1"), Source("a", "1")))
    with pytest.raises(ValidationError, match="statement"):
        Approval.from_dict(
            {
                "patch_id": "P",
                "msp_id": "M",
                "decision": "approve",
                "approver": "a",
                "statement": "x",
                "signer_cert_pem": "x",
            }
        )
    waves: list[Any] = [{"hosts": ["a"]}, {"hosts": ["a"]}]
    base = {
        "rollout_id": "R",
        "patch_id": "P",
        "owner_msp": "M",
        "failure_threshold_pct": 1,
        "soak_seconds": 0,
    }
    for bad in (waves, [], [1], "x", [{"hosts": 5}]):
        with pytest.raises(ValidationError, match="waves"):
            Rollout.from_dict({**base, "waves": bad})
    with pytest.raises(ValidationError, match="statement"):
        Approval.from_dict(
            {
                "patch_id": "P",
                "msp_id": "M",
                "decision": "approve",
                "approver": "a",
                "statement": {},
                "signer_cert_pem": "x",
            }
        )
    with pytest.raises(ValidationError, match="must be a string"):
        Vulnerability.from_dict({**vuln_data(), "title": 5})
    with pytest.raises(ValidationError, match="at most"):
        Vulnerability.from_dict({**vuln_data(), "title": "x" * 2000})
    with pytest.raises(ValidationError, match="updated_by"):
        Vulnerability.from_dict({**vuln_data(), "updated_by": "a b"})
    with pytest.raises(ValidationError, match="version"):
        PolicyChange.from_dict(
            {
                "proposal_id": "C",
                "policy_id": "default",
                "base_version": 1,
                "proposed": {"policy_id": "default"},
                "proposed_by": "M",
            }
        )


def test_transition_error_names_record_id_and_states() -> None:
    with pytest.raises(TransitionError) as info:
        PATCH.check("P-9", "REJECTED", "APPROVED")
    assert str(info.value) == "Patch 'P-9' is REJECTED: cannot move to APPROVED"
    assert (info.value.record_type, info.value.current, info.value.attempted) == (
        "Patch",
        "REJECTED",
        "APPROVED",
    )
    assert DEPLOYMENT.is_terminal("ROLLED_BACK") and not DEPLOYMENT.is_terminal("FAILED")


severities = st.sampled_from(["low", "medium", "high", "critical"])
sources = st.lists(
    st.builds(Source, st.sampled_from(["kev", "nvd", "osv"]), st.sampled_from(["a", "b"])),
    max_size=3,
)
vulns = st.builds(
    lambda sev, src, kev, score, alias, due: Vulnerability(
        vuln_id="CVE-2024-1",
        severity=sev,
        sources=tuple(sorted(set(src))),
        known_exploited=kev,
        cvss_score=score,
        aliases=tuple(sorted(set(alias))),
        kev_due_date=due,
    ),
    severities,
    sources,
    st.booleans(),
    st.sampled_from(["", "5.0", "9.8"]),
    st.lists(st.sampled_from(["GHSA-1", "DSA-2"]), max_size=2),
    st.sampled_from(["", "2024-04-01", "2024-05-01"]),
)


@settings(max_examples=60, deadline=None)
@given(vulns, vulns, vulns)
def test_merge_is_idempotent_commutative_and_associative(
    a: Vulnerability, b: Vulnerability, c: Vulnerability
) -> None:
    assert same_content(merge(a, a), a)
    assert same_content(merge(merge(a, b), b), merge(a, b))
    assert same_content(merge(a, b).evolve(title=""), merge(b, a).evolve(title=""))
    assert same_content(merge(merge(a, b), c), merge(a, merge(b, c)))
    assert Vulnerability.from_json(merge(a, b).to_json()) == merge(a, b)


def test_merge_refuses_other_ids() -> None:
    with pytest.raises(ValidationError):
        merge(Vulnerability.from_dict(vuln_data()), Vulnerability.from_dict(vuln_data("CVE-1")))


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"x_[a-z]{1,5}", fullmatch=True),
        st.one_of(st.integers(), st.text(max_size=5), st.booleans()),
        max_size=4,
    )
)
def test_any_extra_fields_round_trip(extra: dict[str, Any]) -> None:
    data = {**patch_data(), "severity": "low", "proposed_by": "SecOpsMSP", **extra}
    patch = Patch.from_dict(data)
    again = Patch.from_json(patch.to_json())
    assert again.to_json() == patch.to_json()
    assert dict(again.extra) == extra
    assert again.artifact_sha256 == ARTIFACT
