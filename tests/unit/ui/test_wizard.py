"""The rollout wizard's planning (pure) and its page: groups and percentages, canary, the
per-wave disruption budget and concurrency, the preview equal to the submitted document and
to the plan handed to the dispatcher, refusals naming the input."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from apiflask import APIFlask

from patchledger.app.dispatch.planner import Quantity, RolloutPlan
from patchledger.app.ui.wizard import HostInfo, PlanError, plan, quantity, rollout_plan
from patchledger.app.web.factory import state
from tests.support.fabric.fake_ca import FakeCA
from tests.support.fabric.fake_gateway import FakeGateway
from tests.support.ui import estate
from tests.unit.ui.conftest import csrf_of, log_in
from tests.unit.webapp import test_ledger_flow as flow
from tests.unit.webapp.conftest import Account, add_user

chaincode = flow.chaincode
fake_ca = flow.fake_ca
fake_peer = flow.fake_peer

HOSTS = [HostInfo(f"h{i:02d}", ("web",) if i % 2 else ("db",)) for i in range(10)]


def test_groups_with_canary() -> None:
    waves = plan(HOSTS, mode="groups", groups_text="web\ndb", canary=2, soak_seconds=600)
    assert [w.hosts for w in waves] == [
        ("h00", "h01"), ("h03", "h05", "h07", "h09"), ("h02", "h04", "h06", "h08")]
    assert [w.starts_after_seconds for w in waves] == [0, 600, 1200]


def test_percentages_cover_every_host_once() -> None:
    waves = plan(HOSTS, mode="percent", percentages="10,30,60")
    assert [len(w.hosts) for w in waves] == [1, 3, 6]
    assert sorted(h for w in waves for h in w.hosts) == [h.host_id for h in HOSTS]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"mode": "percent", "percentages": "50,40"}, "percentages"),
    ({"mode": "percent", "percentages": "a,b"}, "percentages"),
    ({"mode": "groups", "groups_text": "web\nweb"}, "groups"),
    ({"mode": "groups", "groups_text": ""}, "groups"),
    ({"mode": "random"}, "mode"),
    ({"mode": "percent", "percentages": "100", "canary": 10}, "canary"),
])
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PlanError) as caught:
        plan(HOSTS, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_document_lists_the_previewed_hosts() -> None:
    waves = plan(HOSTS, mode="percent", percentages="50,50")
    doc = rollout_plan("r1", "p1", waves, HOSTS, failure_threshold_pct=5,
                       soak_seconds=60).create_rollout_argument()
    assert doc["waves"] == [{"hosts": list(w.hosts)} for w in waves]
    assert (doc["failure_threshold_pct"], doc["soak_seconds"]) == (5, 60)


def test_limits_resolve_per_wave() -> None:
    # canary 2, then 4 web and 4 db hosts: 50% of 2 is 1, of 4 is 2; 3 hosts stays 3 (capped
    # at the wave's size only when larger: 3 <= 4), and never below 1
    waves = plan(HOSTS, mode="groups", groups_text="web\ndb", canary=2,
                 disruption_budget=Quantity(50, percent=True), max_concurrency=Quantity(3))
    assert [(w.disruption_budget, w.max_concurrency) for w in waves] == [(1, 2), (2, 3),
                                                                           (2, 3)]
    low = plan(HOSTS, mode="percent", percentages="100",
               disruption_budget=Quantity(1, percent=True), max_concurrency=Quantity(99))
    assert (low[0].disruption_budget, low[0].max_concurrency) == (1, 10)
    rollout = rollout_plan("r1", "p1", waves, HOSTS, failure_threshold_pct=0, soak_seconds=0,
                           wave_timeout_seconds=120, rollback_on_failure=False)
    # the dispatcher's own plan type, which reads back what was written
    assert RolloutPlan.from_dict(json.loads(json.dumps(rollout.to_dict()))) == rollout
    assert [(w.label, w.disruption_budget, w.max_concurrency) for w in rollout.waves] == [
        ("canary", 1, 2), ("wave 1", 2, 3), ("wave 2", 2, 3)]
    assert rollout.windows["h00"] == "always" and not rollout.rollback_on_failure


@pytest.mark.parametrize("text", ["0", "0%", "101%", "-1", "ten", "", "5 hosts", "1.5"])
def test_bad_limits_name_the_field(text: str) -> None:
    with pytest.raises(PlanError) as caught:
        quantity(text, "max_concurrency")
    assert caught.value.field == "max_concurrency"
    assert "max_concurrency" in str(caught.value)


def test_good_limits_parse() -> None:
    assert quantity(" 25% ", "disruption_budget") == Quantity(25, percent=True)
    assert quantity("3", "disruption_budget") == Quantity(3)


def test_wizard_page_preview(populated: APIFlask, accounts: dict[str, Account]) -> None:
    client = log_in(populated.test_client(), accounts["operator"])
    page = client.get("/ui/rollouts/new")
    assert page.status_code == 200 and "p-0000" in page.text  # APPROVED patches offered
    preview = client.post("/ui/rollouts/new", data={
        "csrf_token": csrf_of(page.text), "rollout_id": "ro-new", "patch_id": "p-0000",
        "mode": "groups", "groups": "web\ndb,batch", "canary": "3", "soak_seconds": "900",
        "failure_threshold_pct": "10", "rollback_on_failure": "yes", "step": "preview"})
    assert preview.status_code == 200, preview.text
    assert 'id="preview"' in preview.text and "900 s after the start" in preview.text
    # the defaults (10 %, 25 %) resolved per wave are shown
    assert '<th scope="col">Disruption budget</th>' in preview.text
    assert 'id="no-dispatcher"' in preview.text  # this app has no dispatcher board
    digest = re.search(r'name="plan_sha256" value="([0-9a-f]{64})"', preview.text)
    assert digest is not None
    form = {"csrf_token": csrf_of(page.text), "rollout_id": "ro-new", "patch_id": "p-0000",
            "mode": "groups", "groups": "web\ndb,batch", "canary": "3", "soak_seconds": "900",
            "failure_threshold_pct": "10", "rollback_on_failure": "yes", "step": "create"}
    # another plan than the previewed one (the form changed): refused, nothing submitted
    changed = client.post("/ui/rollouts/new", data={**form, "canary": "4",
                                                    "plan_sha256": digest.group(1)})
    assert changed.status_code == 409 and "differs from the preview" in changed.text
    # no peer in this app: creating is attempted and answers 503 naming the ledger
    created = client.post("/ui/rollouts/new", data={**form, "plan_sha256": digest.group(1)})
    assert created.status_code == 503
    for name, value in (("disruption_budget", "0"), ("max_concurrency", "150%"),
                        ("wave_timeout_seconds", "0")):
        wrong = client.post("/ui/rollouts/new", data={**form, name: value, "step": "preview"})
        assert wrong.status_code == 400 and name in wrong.text, (name, wrong.status_code)
    bad = client.post("/ui/rollouts/new", data={
        "csrf_token": csrf_of(page.text), "rollout_id": "ro-new", "patch_id": "p-0001",
        "mode": "groups", "groups": "web"})
    assert bad.status_code == 400 and "is not APPROVED or RELEASED" in bad.text
    refused = log_in(populated.test_client(), accounts["approver"]).get("/ui/rollouts/new")
    assert refused.status_code == 403


def test_created_rollout_hands_its_plan_to_the_dispatcher(
        tmp_path: Path, fake_ca: FakeCA, fake_peer: FakeGateway,
        chaincode: flow.Chaincode) -> None:
    board = tmp_path / "dispatch"
    app = flow._ledger_app(tmp_path, fake_ca, fake_peer, dispatch_dir=board)
    with app.app_context(), state().engine.begin() as conn:
        estate(conn, hosts=60, vulns=10, start=int(time.time()))
    client = log_in(app.test_client(), add_user(app, "olga", "operator"))
    csrf = csrf_of(client.get("/ui/rollouts/new").text)
    form = {"csrf_token": csrf, "rollout_id": "ro-ui", "patch_id": "p-0000", "mode": "percent",
            "percentages": "50,50", "canary": "2", "soak_seconds": "60",
            "failure_threshold_pct": "0", "disruption_budget": "2",
            "max_concurrency": "50%", "wave_timeout_seconds": "600", "step": "preview"}
    preview = client.post("/ui/rollouts/new", data=form)
    assert preview.status_code == 200 and 'id="no-dispatcher"' not in preview.text
    digest = re.search(r'name="plan_sha256" value="([0-9a-f]{64})"', preview.text)
    assert digest is not None
    created = client.post("/ui/rollouts/new", data={**form, "step": "create",
                                                   "plan_sha256": digest.group(1)})
    assert created.status_code == 200, created.text
    assert 'id="plan-handed"' in created.text
    function, (argument,) = chaincode.calls[-1]
    document = json.loads(argument)
    stored = RolloutPlan.from_dict(json.loads((board / "plans" / "ro-ui.json").read_text()))
    # the ledger got exactly the plan's hosts, the dispatcher the plan with its limits
    assert function == "CreateRollout" and document == stored.create_rollout_argument()
    # 20 SecOps hosts of 60 (every third): canary 2, then 9 and 9
    assert [len(w.hosts) for w in stored.waves] == [2, 9, 9]
    assert [(w.disruption_budget, w.max_concurrency) for w in stored.waves] == [
        (2, 1), (2, 4), (2, 4)]
    assert stored.wave_timeout_seconds == 600 and not stored.rollback_on_failure
    # the same id again: the dispatcher has a plan for it, refused before the ledger
    calls = len(chaincode.calls)
    again = client.post("/ui/rollouts/new", data={**form, "step": "create",
                                                 "plan_sha256": digest.group(1)})
    assert again.status_code == 409 and "has a plan for rollout" in again.text
    assert len(chaincode.calls) == calls
