"""A channel (Fabric "network") seen through a gateway."""

from __future__ import annotations

from app.fabric._client import GatewayClient
from app.fabric.contract import Contract


class Network:
    """A Fabric channel: gives access to its contracts and its event streams."""

    def __init__(self, client: GatewayClient, name: str) -> None:
        if not name:
            raise ValueError("a channel name must be non-empty")
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        """The channel name."""
        return self._name

    def get_contract(self, chaincode_name: str, contract_name: str = "") -> Contract:
        """Return the contract ``contract_name`` of chaincode ``chaincode_name``."""
        if not chaincode_name:
            raise ValueError("a chaincode name must be non-empty")
        return Contract(self._client, self._name, chaincode_name, contract_name)
