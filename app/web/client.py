"""A small HTTP client of the org app's REST API (for the automation CLI; no Flask here).

The token is sent as ``Authorization: Bearer``; an error answer becomes :class:`ApiError`
carrying the API's own message, field and status.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from patchledger.app.errors import UserError


class ApiError(UserError):
    """The API refused or could not be reached.

    Attributes:
        status: the HTTP status (0 when no answer came).
        field: the field the API named, if any.
    """

    def __init__(self, message: str, *, status: int = 0, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class ApiClient:
    """The API at ``base_url`` (``http://host:port``) with an API token.

    Attributes:
        base_url: scheme, host and port of the app.
        token: the API token (``plt_…``).
        timeout: seconds per request.
    """

    base_url: str
    token: str = field(repr=False)
    timeout: float = 60.0

    def request(self, method: str, path: str, body: Any = None, *,
                query: dict[str, Any] | None = None, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> Any:
        """Call ``/api/v1{path}``; the decoded JSON answer.

        Raises:
            ApiError: an error status (with the API's message) or no answer.
        """
        url = f"{self.base_url.rstrip('/')}/api/v1{path}"
        if query:
            url += "?" + urllib.parse.urlencode(
                {k: v for k, v in query.items() if v not in (None, "")})
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        payload = data
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if not url.startswith(("http://", "https://")):
            raise ApiError(f"the API URL {self.base_url!r} must start with http:// or https://")
        req = urllib.request.Request(url, data=payload, method=method, headers=sent)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(f"{method} {url}: no answer: {exc}") from None
        return json.loads(raw) if raw else None


def _error(exc: urllib.error.HTTPError) -> ApiError:
    try:
        doc = json.loads(exc.read())["error"]
        message, field_name = str(doc["message"]), str(doc.get("field", ""))
    except (ValueError, KeyError, TypeError):
        message, field_name = exc.reason, ""
    where = f" (field {field_name})" if field_name else ""
    return ApiError(f"HTTP {exc.code}: {message}{where}", status=exc.code, field=field_name)
