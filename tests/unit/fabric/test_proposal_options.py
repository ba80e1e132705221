"""One frozen options object for what a proposal carries (fabric-gateway's ProposalOptions),
accepted by every Contract call next to the keyword form."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from patchledger.app.fabric import ProposalOptions
from patchledger.app.fabric._protos import chaincode_pb2, gateway_pb2, proposal_pb2
from patchledger.app.fabric.gateway import Gateway
from patchledger.app.fabric.proposal import ProposalKeywords
from tests.support.fabric.fake_gateway import FakeGateway


def _carried(proposal_bytes: bytes) -> tuple[list[bytes], dict[str, bytes], list[str]]:
    """The arguments, transient data and endorsing organizations a proposal carries."""
    proposed = gateway_pb2.ProposedTransaction.FromString(proposal_bytes)
    inner = proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(inner.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
    return list(spec.input.args), dict(payload.TransientMap), list(proposed.endorsing_organizations)


def test_options_are_frozen_copies() -> None:
    arguments: list[Any] = ["P-1"]
    transient = {"secret": b"s3"}
    orgs = ["SecOpsMSP"]
    options = ProposalOptions(arguments, transient, orgs)
    arguments.append("later")
    transient["other"] = b"x"
    orgs.append("ITOpsMSP")
    assert options == ProposalOptions(("P-1",), {"secret": b"s3"}, ("SecOpsMSP",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.arguments = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.transient_data["secret"] = b"changed"  # type: ignore[index]


def test_the_keyword_form_names_the_same_option_set() -> None:
    fields = {f.name for f in dataclasses.fields(ProposalOptions)}
    assert set(ProposalKeywords.__optional_keys__) == fields - {"arguments"}


def test_an_options_object_and_the_keyword_form_build_the_same_proposal(
    gateway: Gateway,
) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    options = ProposalOptions(["P-1", b"\x00"], {"k": b"v"}, ["ITOpsMSP"])
    from_options = contract.new_proposal("Approve", options)
    from_keywords = contract.new_proposal(
        "Approve", ["P-1", b"\x00"], transient_data={"k": b"v"},
        endorsing_organizations=["ITOpsMSP"],
    )
    expected = ([b"Approve", b"P-1", b"\x00"], {"k": b"v"}, ["ITOpsMSP"])
    assert _carried(from_options.bytes) == _carried(from_keywords.bytes) == expected
    assert from_options.transaction_id != from_keywords.transaction_id  # fresh each call


def test_keywords_replace_the_fields_of_an_options_object(
    gateway: Gateway, fake: FakeGateway
) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    options = ProposalOptions(["x"], endorsing_organizations=["SecOpsMSP"])
    assert contract.evaluate("Get", options, endorsing_organizations=["ITOpsMSP"]) == b"Get:x"
    assert list(fake.captured.evaluate[0].target_organizations) == ["ITOpsMSP"]
    assert options.endorsing_organizations == ("SecOpsMSP",)  # the object is unchanged


def test_one_options_object_serves_every_call(gateway: Gateway, fake: FakeGateway) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    options = ProposalOptions(["P-7"], endorsing_organizations=["SecOpsMSP"])
    assert contract.evaluate("Get", options) == b"Get:P-7"
    assert contract.submit("Propose", options) == b"Propose:P-7"
    submitted = contract.submit_async("Propose", options)
    assert submitted.get_status().successful
    assert [list(r.endorsing_organizations) for r in fake.captured.endorse] == [["SecOpsMSP"]] * 2


def test_an_unknown_option_is_refused(gateway: Gateway, fake: FakeGateway) -> None:
    contract = gateway.get_network("patches").get_contract("patchledger")
    with pytest.raises(TypeError, match=r"unknown proposal option.*endorsing_orgs"):
        contract.submit("Propose", ["P-1"], endorsing_orgs=["SecOpsMSP"])  # type: ignore[call-arg]
    assert not fake.captured.endorse  # nothing was sent
