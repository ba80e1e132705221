"""Reading the channel organizations' root certificates at the process edge.

Chaincode cannot read the channel's MSP configuration, so each organization's chaincode server
is given the root CA certificates of the channel's organizations when it is deployed: a
directory named by ``PATCHLEDGER_ORG_ROOTS_DIR`` holding one ``<MSPID>.pem`` file per
organization (one or more PEM certificates each; other files are ignored). They become the
:class:`~chaincode.lifecycle.OrgTrust` the core checks host certificates against.

Only :func:`trust_from_env` reads the environment; it is called once, by
:func:`chaincode.patchledger.contract.from_environment` when the server loads the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from patchledger.chaincode.lifecycle import LifecycleError, OrgTrust
from patchledger.chaincode.runtime import ConfigError

__all__ = ["ORG_ROOTS_ENV", "load_org_roots", "trust_from_env"]

#: The environment variable naming the directory of ``<MSPID>.pem`` files.
ORG_ROOTS_ENV = "PATCHLEDGER_ORG_ROOTS_DIR"


def load_org_roots(directory: Path) -> OrgTrust:
    """The roots of every ``<MSPID>.pem`` file in ``directory``.

    Raises:
        ConfigError: the directory cannot be read, holds no ``.pem`` file, or a file is not a
            bundle of PEM certificates (the message names the file).
    """
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix == ".pem" and p.is_file())
        pems = {p.stem: p.read_bytes() for p in files}
    except OSError as exc:
        raise ConfigError(f"{ORG_ROOTS_ENV}: cannot read {directory}: {exc}") from exc
    if not pems:
        raise ConfigError(f"{ORG_ROOTS_ENV}: {directory} holds no <MSPID>.pem root certificate")
    for msp_id, pem in pems.items():
        try:
            OrgTrust.from_pem({msp_id: pem})
        except LifecycleError as exc:
            raise ConfigError(
                f"{ORG_ROOTS_ENV}: {directory / (msp_id + '.pem')} is not a bundle of PEM"
                " X.509 certificates"
            ) from exc
    return OrgTrust.from_pem(pems)


def trust_from_env(env: Mapping[str, str]) -> OrgTrust:
    """The organizations' roots from the directory named by ``PATCHLEDGER_ORG_ROOTS_DIR``.

    Raises:
        ConfigError: the variable is unset or empty, or :func:`load_org_roots` failed.
    """
    value = env.get(ORG_ROOTS_ENV, "").strip()
    if not value:
        raise ConfigError(
            f"{ORG_ROOTS_ENV} is not set: the directory of the channel organizations'"
            " <MSPID>.pem root certificates is required to verify host certificates"
        )
    return load_org_roots(Path(value))
