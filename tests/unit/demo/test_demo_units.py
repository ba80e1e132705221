"""The demo's pure parts: settings from the environment, the credentials file and its TOTP
codes (never one the app saw from the demo), the fleet's plan (the failing host is never the
canary, and the wave's threshold lets exactly that one host fail), bad input refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pyotp
import pytest

from patchledger.app.demo.credentials import Credentials, DemoUser
from patchledger.app.demo.scenario import fleet_plan
from patchledger.app.demo.settings import settings_from_env
from patchledger.app.errors import UserError


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    s = settings_from_env({"PATCHLEDGER_DEMO_DIR": str(tmp_path / "d"),
                           "PATCHLEDGER_DEMO_APP_PORT_BASE": "14850",
                           "PATCHLEDGER_PORT_BASE": "14300",
                           "PATCHLEDGER_API_TOKEN": "secret", "HOME": "/root"})
    assert s.state_dir == (tmp_path / "d").resolve()
    assert [s.app_url(o) for o in ("secops", "itops", "compliance")] == [
        "http://127.0.0.1:14850", "http://127.0.0.1:14851", "http://127.0.0.1:14852"]
    # the network's variables are passed on to the processes, the API client's never
    assert s.network_env == {"PATCHLEDGER_PORT_BASE": "14300"}
    assert s.hosts == 12


@pytest.mark.parametrize(("env", "named"), [
    ({"PATCHLEDGER_DEMO_APP_PORT_BASE": "eighty"}, "PATCHLEDGER_DEMO_APP_PORT_BASE"),
    ({"PATCHLEDGER_DEMO_APP_PORT_BASE": "80"}, "app port base"),
    ({"PATCHLEDGER_DEMO_HOSTS": "2"}, "3 to 1000 hosts"),
])
def test_bad_settings_are_refused_naming_them(env: dict[str, str], named: str) -> None:
    with pytest.raises(UserError, match=named):
        settings_from_env(env)


def test_credentials_are_kept_0600_and_codes_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    creds = Credentials(path)
    secret = pyotp.random_base32()
    creds.add(DemoUser("secops", "sam", "approver", "pw", secret))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Credentials(path)
    sam = again.find("secops/approver")  # by role as well as by name
    assert sam is again.find("secops/sam")
    now = 1_800_000_010.0  # 10 s into a 30 s step
    step = int(now // 30)
    first, second = sam.fresh_code(now), sam.fresh_code(now)
    totp = pyotp.TOTP(secret)
    # the current step's code, then the next step's (the app accepts one step either side)
    assert (first, second) == (totp.at(step * 30), totp.at((step + 1) * 30))
    assert sam.last_step == step + 1
    with pytest.raises(UserError, match="no demo user 'itops/ivy'"):
        again.find("itops/ivy")
    with pytest.raises(UserError, match="no TOTP"):
        DemoUser("secops", "op", "operator", "pw").fresh_code(now)


def test_an_unreadable_credentials_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match="--fresh"):
        Credentials(path)


@pytest.mark.parametrize("hosts", [3, 6, 12, 50])
def test_the_failing_host_is_never_the_canary_and_only_it_may_fail(tmp_path: Path,
                                                                  hosts: int) -> None:
    settings = settings_from_env({"PATCHLEDGER_DEMO_DIR": str(tmp_path)}, hosts=hosts)
    ids, _, plan = fleet_plan(settings)
    assert sorted(h for w in plan.waves for h in w.hosts) == sorted(ids)
    assert plan.waves[0].label == "canary" and len(plan.waves[0].hosts) == 1
    failing = plan.waves[-1].hosts[-1]
    assert failing not in plan.waves[0].hosts
    # the rule of the gates and the chaincode: within when failed * 100 <= threshold * hosts
    for wave in plan.waves[1:]:
        assert plan.failure_threshold_pct * len(wave.hosts) >= 1 * 100
    last = len(plan.waves[-1].hosts)
    assert plan.failure_threshold_pct * last < 2 * 100 or last == 1
    assert fleet_plan(settings)[2] == plan  # the same plan every time (the dispatcher's too)
