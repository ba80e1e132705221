"""The real grpc.aio server on 127.0.0.1 with (mutual) TLS, driven by a client playing the peer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest

from patchledger.chaincode import smoke
from patchledger.chaincode.runtime import ChaincodeServer, TLSConfig
from patchledger.chaincode.runtime._protos import (
    Msg,
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
)
from patchledger.chaincode.runtime.server import MAX_MESSAGE_BYTES
from tests.support.chaincode_runtime import (
    IssuedCertificate,
    make_certificate,
    make_signed_proposal,
    parse_response,
)

CC_ID = "smoke_1.0:0123"
CLIENT_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


class PKI:
    def __init__(self) -> None:
        self.ca = make_certificate("tlsca.itops", is_ca=True)
        self.server = make_certificate("cc.itops", issuer=self.ca, sans=["127.0.0.1"])
        self.peer = make_certificate("peer0.itops", issuer=self.ca, ou="peer")
        self.other_ca = make_certificate("tlsca.rogue", is_ca=True)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI()


def _creds(root: IssuedCertificate, client: IssuedCertificate | None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=root.cert_pem)
    return grpc.ssl_channel_credentials(
        root_certificates=root.cert_pem,
        private_key=client.key_pem,
        certificate_chain=client.cert_pem,
    )


async def _handshake(call: Any) -> None:
    register = await call.read()
    assert register.type == Msg.REGISTER
    cc_id = chaincode_pb2.ChaincodeID()
    cc_id.ParseFromString(register.payload)
    assert cc_id.name == CC_ID
    await call.write(Msg(type=Msg.REGISTERED))
    await call.write(Msg(type=Msg.READY))


def _transaction(tx_id: str, *args: bytes) -> Any:
    proposal = make_signed_proposal(channel_id="ch", tx_id=tx_id, args=args, creator=b"")
    return Msg(
        type=Msg.TRANSACTION, txid=tx_id, channel_id="ch", proposal=proposal,
        payload=chaincode_pb2.ChaincodeInput(args=list(args)).SerializeToString(),
    )


async def _put_through_peer(call: Any, tx_id: str, value: bytes) -> Any:
    """Play the peer for one Put transaction and return the COMPLETED message."""
    await call.write(_transaction(tx_id, b"Put", b"big", value))
    put = await call.read()
    assert put.type == Msg.PUT_STATE
    assert put.txid == tx_id
    req = chaincode_shim_pb2.PutState()
    req.ParseFromString(put.payload)
    assert req.value == value
    await call.write(Msg(type=Msg.RESPONSE, txid=tx_id, channel_id="ch"))
    return await call.read()


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_mutual_tls_two_peers_and_a_10mb_value(pki: PKI) -> None:
    async def scenario() -> list[Any]:
        tls = TLSConfig(pki.server.cert_pem, pki.server.key_pem, pki.ca.cert_pem)
        server = ChaincodeServer(CC_ID, "127.0.0.1:0", smoke.contract, tls)
        port = await server.start()
        try:
            creds = _creds(pki.ca, pki.peer)
            async with (
                grpc.aio.secure_channel(f"127.0.0.1:{port}", creds, options=CLIENT_OPTIONS) as a,
                grpc.aio.secure_channel(f"127.0.0.1:{port}", creds, options=CLIENT_OPTIONS) as b,
            ):
                call_a = chaincode_shim_pb2_grpc.ChaincodeStub(a).Connect()
                call_b = chaincode_shim_pb2_grpc.ChaincodeStub(b).Connect()
                await asyncio.gather(_handshake(call_a), _handshake(call_b))
                big = b"0123456789abcdef" * (10 * 1024 * 1024 // 16)
                replies = list(await asyncio.gather(
                    _put_through_peer(call_a, "txA", big),
                    _put_through_peer(call_b, "txB", b"small"),
                ))
                for call in (call_a, call_b):
                    await call.done_writing()
            return replies
        finally:
            await server.stop(grace=1)

    done_a, done_b = _run(scenario())
    assert done_a.type == done_b.type == Msg.COMPLETED
    assert (done_a.txid, done_b.txid) == ("txA", "txB")
    assert parse_response(done_a).status == 200
    assert len(parse_response(done_a).payload) > 10 * 1024 * 1024


async def _try_connect(port: int, creds: grpc.ChannelCredentials) -> grpc.StatusCode | None:
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as channel:
        call = chaincode_shim_pb2_grpc.ChaincodeStub(channel).Connect(timeout=5)
        try:
            await call.read()
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        call.cancel()
        return None


@pytest.mark.parametrize("case", ["no-client-cert", "wrong-root", "client-from-other-ca"])
def test_tls_refusals(pki: PKI, case: str) -> None:
    async def scenario() -> grpc.StatusCode | None:
        tls = TLSConfig(pki.server.cert_pem, pki.server.key_pem, pki.ca.cert_pem)
        server = ChaincodeServer(CC_ID, "127.0.0.1:0", smoke.contract, tls)
        port = await server.start()
        try:
            if case == "no-client-cert":
                creds = _creds(pki.ca, None)
            elif case == "wrong-root":
                creds = _creds(pki.other_ca, pki.peer)
            else:
                rogue_peer = make_certificate("peer0.rogue", issuer=pki.other_ca, ou="peer")
                creds = _creds(pki.ca, rogue_peer)
            return await _try_connect(port, creds)
        finally:
            await server.stop(grace=0)

    assert _run(scenario()) == grpc.StatusCode.UNAVAILABLE


def test_server_tls_without_client_auth_accepts_any_client(pki: PKI) -> None:
    async def scenario() -> grpc.StatusCode | None:
        server = ChaincodeServer(
            CC_ID, "127.0.0.1:0", smoke.contract, TLSConfig(pki.server.cert_pem, pki.server.key_pem)
        )
        port = await server.start()
        try:
            return await _try_connect(port, _creds(pki.ca, None))
        finally:
            await server.stop(grace=0)

    assert _run(scenario()) is None


def _start_and_stop(tls: TLSConfig | None) -> None:
    async def scenario() -> None:
        server = ChaincodeServer(CC_ID, "127.0.0.1:0", smoke.contract, tls)
        await server.start()
        await server.stop(grace=0)

    _run(scenario())


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_plaintext_serving_is_a_warning_naming_the_missing_variables(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="patchledger.chaincode.runtime")
    _start_and_stop(None)
    (warning,) = _warnings(caplog)
    assert "WITHOUT TLS" in warning
    for variable in ("CHAINCODE_TLS_CERT_FILE", "CHAINCODE_TLS_KEY_FILE",
                     "CHAINCODE_TLS_CLIENT_CA_FILE"):
        assert variable in warning


def test_tls_without_client_auth_is_a_warning_and_mutual_tls_is_quiet(
    pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="patchledger.chaincode.runtime")
    _start_and_stop(TLSConfig(pki.server.cert_pem, pki.server.key_pem))
    (warning,) = _warnings(caplog)
    assert "without client authentication" in warning
    assert "CHAINCODE_TLS_CLIENT_CA_FILE is not set" in warning
    caplog.clear()
    _start_and_stop(TLSConfig(pki.server.cert_pem, pki.server.key_pem, pki.ca.cert_pem))
    assert _warnings(caplog) == []
