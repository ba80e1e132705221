"""The rollout wizard's planning (pure) and its page: groups and percentages, canary, the
preview equal to the submitted document, refusals naming the input."""

from __future__ import annotations

import pytest
from apiflask import APIFlask

from patchledger.app.ui.wizard import HostInfo, PlanError, plan, rollout_document
from tests.unit.ui.conftest import csrf_of, log_in
from tests.unit.webapp.conftest import Account

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
    doc = rollout_document("r1", "p1", waves, failure_threshold_pct=5, soak_seconds=60)
    assert doc["waves"] == [{"hosts": list(w.hosts)} for w in waves]


def test_wizard_page_preview(populated: APIFlask, accounts: dict[str, Account]) -> None:
    client = log_in(populated.test_client(), accounts["operator"])
    page = client.get("/ui/rollouts/new")
    assert page.status_code == 200 and "p-0000" in page.text  # APPROVED patches offered
    preview = client.post("/ui/rollouts/new", data={
        "csrf_token": csrf_of(page.text), "rollout_id": "ro-new", "patch_id": "p-0000",
        "mode": "groups", "groups": "web\ndb,batch", "canary": "3", "soak_seconds": "900",
        "failure_threshold_pct": "10", "step": "preview"})
    assert preview.status_code == 200, preview.text
    assert 'id="preview"' in preview.text and "900 s after the start" in preview.text
    # no peer in this app: creating is attempted and answers 503 naming the ledger
    created = client.post("/ui/rollouts/new", data={
        "csrf_token": csrf_of(page.text), "rollout_id": "ro-new", "patch_id": "p-0000",
        "mode": "groups", "groups": "web", "canary": "0", "step": "create"})
    assert created.status_code == 503
    bad = client.post("/ui/rollouts/new", data={
        "csrf_token": csrf_of(page.text), "rollout_id": "ro-new", "patch_id": "p-0001",
        "mode": "groups", "groups": "web"})
    assert bad.status_code == 400 and "is not APPROVED or RELEASED" in bad.text
    refused = log_in(populated.test_client(), accounts["approver"]).get("/ui/rollouts/new")
    assert refused.status_code == 403
