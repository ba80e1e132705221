"""The org app's typed configuration (:class:`AppConfig`).

The environment and configuration files are read only by :func:`config_from_env`,
:func:`config_from_file` and :func:`config_for_local_network`, which the CLI calls at the
process edge; everything below the application factory receives an :class:`AppConfig`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from patchledger.app.errors import UserError
from patchledger.app.fabric import Timeouts
from patchledger.app.fabric.config import CAConfig, IdentitySource, PeerConfig

#: The organizations of the demo consortium, by the short name the CLI takes.
ORGANIZATIONS = {"secops": "SecOpsMSP", "itops": "ITOpsMSP", "compliance": "ComplianceMSP"}


@dataclass(frozen=True)
class SecurityConfig:
    """Authentication settings.

    Attributes:
        lockout_threshold: failed logins in a row that lock an account.
        lockout_seconds: how long a locked account stays locked.
        argon2_time_cost / argon2_memory_kib: argon2id parameters (tests use cheap ones;
            hashes made with other parameters are re-hashed at the next login).
        session_idle_seconds: a browser session expires after this much inactivity.
        totp_valid_window: TOTP time steps accepted before and after the current one.
    """

    lockout_threshold: int = 5
    lockout_seconds: int = 900
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    session_idle_seconds: int = 3600
    totp_valid_window: int = 1


@dataclass(frozen=True)
class AppConfig:
    """Everything one organization's app needs.

    Attributes:
        organization: the short name (``secops``).
        msp_id: its MSP id (``SecOpsMSP``).
        database_url: SQLAlchemy URL of the app's database (users, tokens, read model).
        artifact_dir: where the artifact store keeps its files.
        wallet_dir: the app's encrypted wallet (its users' Fabric identities).
        wallet_passphrase: the wallet's passphrase.
        secret_key: Flask's session-signing key.
        peer: the organization's gateway peer (``None``: ledger endpoints answer 503).
        ca: the organization's Fabric CA (``None``: users cannot be enrolled; 503).
        registrar: the identity that registers users with the CA (the organization admin).
        channel / chaincode: where the contract lives.
        listen_host / listen_port: the HTTP listen address.
        feed_sources: files, directories or URLs of threat feeds.
        timeouts: deadlines of ledger calls (bounded: a peer that is down gives a 503).
        security: authentication settings.
        max_upload_bytes: largest request body (artifact uploads).
        trust_msp_dirs: (MSP id, MSP directory) of every organization, the trust anchors of
            ledger verification.
        orderer_msp_ids: the MSPs whose members sign blocks.
        agent_cert_header: the request header in which the TLS-terminating proxy in front
            of the app passes the client certificate it verified (PEM, URL-encoded, as
            nginx's ``$ssl_client_escaped_cert``); ``""``: the agent endpoints that need a
            host certificate answer 503 (docs/agent.md "The org app's side").
        dispatch_dir: the dispatcher's state directory: its board (orders, report inbox)
            the agent endpoints serve from (``None``: they answer 503), and ``plans/``, where
            the UI's rollout wizard hands it the plans it creates (their wave limits).
        agent_poll_interval: the poll interval (seconds) the app tells its agents.
        run_projector: ``app serve`` feeds the read model from the peer's blocks (one
            projector per database: turn off in all apps but one that share a database).
    """

    organization: str
    msp_id: str
    database_url: str
    artifact_dir: Path
    wallet_dir: Path
    wallet_passphrase: str = field(repr=False)
    secret_key: str = field(repr=False)
    peer: PeerConfig | None = None
    ca: CAConfig | None = None
    registrar: IdentitySource | None = None
    channel: str = "patchledger"
    chaincode: str = "patchledger"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    feed_sources: tuple[str, ...] = ()
    timeouts: Timeouts = field(
        default_factory=lambda: Timeouts(evaluate=5.0, endorse=15.0, submit=5.0,
                                         commit_status=30.0)
    )
    security: SecurityConfig = field(default_factory=SecurityConfig)
    max_upload_bytes: int = 512 * 1024 * 1024
    trust_msp_dirs: tuple[tuple[str, Path], ...] = ()
    orderer_msp_ids: tuple[str, ...] = ()
    run_projector: bool = True
    agent_cert_header: str = ""
    dispatch_dir: Path | None = None
    agent_poll_interval: int = 60

    def with_port(self, port: int | None) -> AppConfig:
        """This configuration listening on ``port`` (unchanged when ``None``)."""
        return self if port is None else replace(self, listen_port=port)


def _org(name: str) -> tuple[str, str]:
    key = name.lower()
    if key not in ORGANIZATIONS:
        raise UserError(f"unknown organization {name!r}: choose one of {', '.join(ORGANIZATIONS)}")
    return key, ORGANIZATIONS[key]


def _path(value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise UserError(f"configuration {key!r} must be a non-empty path")
    return Path(value)


def _secret_file(home: Path, name: str) -> str:
    """A random secret kept in ``home/name`` (created 0600 on first use)."""
    path = home / name
    if path.is_file():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def config_from_mapping(values: Mapping[str, Any], org: str | None = None) -> AppConfig:
    """Build the configuration from a flat mapping (a JSON file's content, or the
    environment's ``PATCHLEDGER_APP_*`` variables lower-cased without the prefix).

    Keys: ``org``, ``home`` (default ``.state/app/<org>``; database, wallet, artifacts and
    secrets live under it unless given), ``database_url``, ``artifact_dir``, ``wallet_dir``,
    ``wallet_passphrase``, ``secret_key``, ``peer``, ``peer_tls_ca``, ``ca_url``, ``ca_tls_ca``,
    ``registrar_msp_dir``, ``channel``, ``chaincode``, ``host``, ``port``, ``feeds``
    (comma-separated in the environment, a list in a file), ``trust``
    (``MSP=DIR,MSP=DIR``), ``orderer_msp``, ``projector`` (``0`` to turn it off),
    ``agent_cert_header``, ``dispatch_dir``, ``agent_poll_interval``.

    Raises:
        UserError: a missing or malformed value, naming the key.
    """
    short, msp_id = _org(str(org or values.get("org") or ""))
    home = Path(str(values.get("home") or Path(".state") / "app" / short))
    peer = None
    if values.get("peer"):
        tls = values.get("peer_tls_ca")
        peer = PeerConfig(str(values["peer"]), tls_ca_cert=_path(tls, "peer_tls_ca")
                          if tls else None, insecure=not tls)
    ca = None
    if values.get("ca_url"):
        ca_tls = values.get("ca_tls_ca")
        ca = CAConfig(str(values["ca_url"]), tls_ca_cert=_path(ca_tls, "ca_tls_ca")
                      if ca_tls else None)
    registrar = None
    if values.get("registrar_msp_dir"):
        registrar = IdentitySource(msp_id, msp_dir=_path(values["registrar_msp_dir"],
                                                         "registrar_msp_dir"))
    feeds_value = values.get("feeds") or ()
    feeds = tuple(f for f in (feeds_value.split(",") if isinstance(feeds_value, str)
                              else feeds_value) if f)
    trust: list[tuple[str, Path]] = []
    for item in str(values.get("trust") or "").split(","):
        if not item.strip():
            continue
        msp, sep, directory = item.partition("=")
        if not sep or not msp.strip() or not directory.strip():
            raise UserError(f"configuration 'trust' entry {item!r} must be MSP=DIRECTORY")
        trust.append((msp.strip(), Path(directory.strip())))
    orderers = tuple(m for m in str(values.get("orderer_msp") or "").split(",") if m)
    try:
        port = int(values.get("port") or 8080)
    except ValueError as exc:
        raise UserError(f"configuration 'port' must be a number, not {values['port']!r}") from exc
    if not 0 <= port <= 65535:
        raise UserError(f"configuration 'port' {port} is out of range 0-65535")
    try:
        interval = int(values.get("agent_poll_interval") or 60)
    except ValueError as exc:
        raise UserError("configuration 'agent_poll_interval' must be a number of seconds, "
                        f"not {values['agent_poll_interval']!r}") from exc
    if interval < 1:
        raise UserError(f"configuration 'agent_poll_interval' {interval} must be positive")
    return AppConfig(
        organization=short,
        msp_id=msp_id,
        database_url=str(values.get("database_url") or f"sqlite:///{home / 'app.db'}"),
        artifact_dir=Path(str(values.get("artifact_dir") or home / "artifacts")),
        wallet_dir=Path(str(values.get("wallet_dir") or home / "wallet")),
        wallet_passphrase=str(values.get("wallet_passphrase")
                              or _secret_file(home, "wallet.passphrase")),
        secret_key=str(values.get("secret_key") or _secret_file(home, "session.key")),
        peer=peer,
        ca=ca,
        registrar=registrar,
        channel=str(values.get("channel") or "patchledger"),
        chaincode=str(values.get("chaincode") or "patchledger"),
        listen_host=str(values.get("host") or "127.0.0.1"),
        listen_port=port,
        feed_sources=feeds,
        trust_msp_dirs=tuple(trust),
        orderer_msp_ids=orderers,
        run_projector=str(values.get("projector", "1")).lower() not in ("0", "false", "no"),
        agent_cert_header=str(values.get("agent_cert_header") or ""),
        dispatch_dir=Path(str(values["dispatch_dir"])) if values.get("dispatch_dir") else None,
        agent_poll_interval=interval,
    )


def config_from_env(env: Mapping[str, str], org: str | None = None) -> AppConfig:
    """:func:`config_from_mapping` over the ``PATCHLEDGER_APP_<KEY>`` variables of ``env``.

    Raises:
        UserError: a missing or malformed variable.
    """
    prefix = "PATCHLEDGER_APP_"
    values = {k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)}
    return config_from_mapping(values, org)


def config_from_file(path: Path, org: str | None = None) -> AppConfig:
    """:func:`config_from_mapping` over a JSON object in ``path``.

    Raises:
        UserError: the file cannot be read, is not a JSON object, or a value is malformed.
    """
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the app configuration {path}: {exc}") from exc
    if not isinstance(values, dict):
        raise UserError(f"the app configuration {path} must be a JSON object")
    return config_from_mapping(values, org)


def local_network_values(org: str, env: Mapping[str, str]) -> dict[str, str]:
    """The peer, CA and registrar of ``org`` on the local network (``patchledger network
    up``), as :func:`config_from_mapping` keys; what ``patchledger network env`` prints.

    Raises:
        UserError: the organization is unknown or the network has no admin identity yet.
    """
    from patchledger.network.config import StateLayout
    from patchledger.network.config import config_from_env as network_config_from_env

    short, _ = _org(org)
    config = network_config_from_env(dict(env))
    node = config.topology.org(short)
    layout = StateLayout(config.state_dir)
    admin = layout.user_dir(node.name, "admin") / "msp"
    if not admin.is_dir():
        raise UserError(f"no admin identity for {node.name} in {config.state_dir}; "
                        "run `patchledger network up`")
    tls = str(layout.ca_cert(node.name))
    return {
        "peer": node.peer.address,
        "peer_tls_ca": tls,
        "ca_url": f"https://{node.ca.address}",
        "ca_tls_ca": tls,
        "registrar_msp_dir": str(admin),
        "channel": config.topology.channel,
        "trust": ",".join(f"{o.msp_id}={layout.org_msp(o.name)}" for o in config.topology.orgs),
        "orderer_msp": config.topology.orderer_org.msp_id,
    }
