"""``app.ui.data.last_reports`` on a real read model (SQLite): a host's last report is that of
its newest reported deployment, not the Host record's ``last_report_sequence`` (reports no
longer write the Host record); the host pages show it."""

from __future__ import annotations

from apiflask import APIFlask

from patchledger.app.ui import data
from patchledger.app.web.factory import state
from tests.support.ui import Writer
from tests.unit.ui.conftest import log_in
from tests.unit.webapp.conftest import Account

T = 1_760_000_000


def _estate(app: APIFlask) -> None:
    def deployment(rollout: str, host: str, status: str, sequence: int, at: int) -> None:
        w.put("Deployment", {"rollout_id": rollout, "host_id": host, "patch_id": "p-1",
                             "owner_msp": "ITOpsMSP", "wave": 0, "status": status,
                             "report_sequence": sequence, "reported_at": at - 1 if sequence
                             else 0, "detail": ""}, at, "ITOpsMSP")

    with app.app_context(), state().engine.begin() as conn:
        w = Writer(conn)
        for host in ("h1", "h2", "h3"):  # the Host records as enrolled: no report on them
            w.put("Host", {"host_id": host, "owner_msp": "ITOpsMSP", "groups": [],
                           "status": "ENROLLED", "last_report_sequence": 0,
                           "inventory_sha256": "0" * 64, "maintenance_window": ""}, T,
                  "ITOpsMSP")
        deployment("R-a", "h1", "APPLIED", 1, T + 10)
        deployment("R-a", "h1", "VERIFIED", 2, T + 20)  # a second version of R-a/h1
        deployment("R-b", "h1", "DISPATCHED", 1, T + 30)  # newest: another rollout
        deployment("R-c", "h1", "SCHEDULED", 0, T + 40)  # later, but no report
        deployment("R-a", "h2", "FAILED", 3, T + 15)
        deployment("R-b", "h3", "SCHEDULED", 0, T + 50)
        w.flush()


def test_the_last_report_is_the_newest_reported_deployments(app: APIFlask) -> None:
    _estate(app)
    with app.app_context(), state().engine.connect() as conn:
        found = data.last_reports(conn, ["h1", "h2", "h3", "h9"])
        assert data.last_reports(conn, []) == {}
    assert found == {"h1": data.LastReport("R-b", 1, "DISPATCHED", T + 30, T + 29),
                     "h2": data.LastReport("R-a", 3, "FAILED", T + 15, T + 14)}


def test_the_host_pages_show_the_deployments_last_report(
        app: APIFlask, accounts: dict[str, Account]) -> None:
    _estate(app)
    client = log_in(app.test_client(), accounts["operator"])
    detail = client.get("/ui/hosts/h1").text
    assert 'href="/ui/rollouts/R-b">R-b</a>, sequence 1' in detail
    listing = client.get("/ui/hosts").text
    assert "DISPATCHED #1 (R-b)" in listing and "FAILED #3 (R-a)" in listing
    assert "#0" not in listing  # the Host record's stale sequence is not shown
    assert "<dt>Last report</dt><dd>none</dd>" in client.get("/ui/hosts/h3").text


def test_a_host_that_reports_is_not_stale(app: APIFlask) -> None:
    _estate(app)  # Host records updated at T; h1's newest report at T + 30, h2's at T + 15
    with app.app_context(), state().engine.connect() as conn:
        count, stale = data.stale_hosts(conn, T + 20 + 86400)
    # h1 reported within the day; h2 (report at T + 15) and h3 (never reported) did not
    assert count == 2
    assert [(row.record_id, last) for row, last in stale] == [("h3", T), ("h2", T + 15)]
