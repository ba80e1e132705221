"""The demo users' credentials, kept in one 0600 JSON file of the demo's state directory.

A demo convenience so that ``patchledger demo totp --user secops/approver`` can print a code
and a second ``demo up`` can go on where the first stopped: an organization's real users keep
their passwords and TOTP secrets themselves, and the app stores only hashes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyotp

from patchledger.app.errors import UserError
from patchledger.common.durable import write_atomic


@dataclass
class DemoUser:
    """One user of one organization's app.

    Attributes:
        org / username / role: who.
        password: the password the app generated (shown once by the app).
        totp_secret: the TOTP secret (empty for roles without a second factor).
        token: the user's API token (empty until made).
        last_step: the last TOTP time step this demo used for the user (a code is accepted
            once, so the next one must be of a later step).
    """

    org: str
    username: str
    role: str
    password: str
    totp_secret: str = ""
    token: str = ""
    last_step: int = -1

    @property
    def key(self) -> str:
        """``org/username``."""
        return f"{self.org}/{self.username}"

    def current_code(self, now: float | None = None) -> str:
        """The TOTP code of the current time step (what an authenticator app shows).

        Raises:
            UserError: the user has no second factor.
        """
        if not self.totp_secret:
            raise UserError(f"{self.key} ({self.role}) has no TOTP second factor")
        return pyotp.TOTP(self.totp_secret).now() if now is None else \
            pyotp.TOTP(self.totp_secret).at(now)

    def fresh_code(self, now: float | None = None) -> str:
        """A code the app has not seen from this demo: of the current step, or of the next
        (the app accepts one step either side) when the current one was used already.

        Raises:
            UserError: the user has no second factor.
        """
        if not self.totp_secret:
            raise UserError(f"{self.key} ({self.role}) has no TOTP second factor")
        totp = pyotp.TOTP(self.totp_secret)
        moment = time.time() if now is None else now
        step = max(int(moment // totp.interval), self.last_step + 1)
        if step > int(moment // totp.interval) + 1:  # both used: wait for the next step
            time.sleep((step - 1) * totp.interval - moment + 0.2)
        self.last_step = step
        return totp.at(step * totp.interval)


class Credentials:
    """The users in ``path``, saved after each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users: dict[str, DemoUser] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                self.users = {k: DemoUser(**v) for k, v in data["users"].items()}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UserError(f"the demo credentials {path} are unreadable ({exc}); "
                                "start over with `patchledger demo up --fresh`") from exc

    def save(self) -> None:
        """Write the file (0600)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"users": {k: asdict(u) for k, u in
                                                      sorted(self.users.items())}}, indent=1),
                     mode=0o600)

    def add(self, user: DemoUser) -> DemoUser:
        """Record ``user`` and save."""
        self.users[user.key] = user
        self.save()
        return user

    def get(self, key: str) -> DemoUser | None:
        """The user ``org/username``, if the demo made it."""
        return self.users.get(key)

    def find(self, key: str) -> DemoUser:
        """The user ``org/username`` (or ``org/role``: the demo's user of that role).

        Raises:
            UserError: no such demo user (the message lists them).
        """
        found = self.users.get(key) or next(
            (u for u in self.users.values() if f"{u.org}/{u.role}" == key), None)
        if found is None:
            known = ", ".join(sorted(self.users)) or "none yet (run `patchledger demo up`)"
            raise UserError(f"no demo user {key!r}; the demo users are: {known}")
        return found
