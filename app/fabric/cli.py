"""``patchledger`` sub-commands of the Fabric client: identity, invoke, query, events, ledger.

Settings come from flags, falling back to environment variables (read only here):

=============================  ==============================================================
``PATCHLEDGER_PEER``           gateway peer ``host:port``
``PATCHLEDGER_PEER_TLS_CA``    the peer's TLS CA certificate file
``PATCHLEDGER_PEER_HOST``      TLS server name override
``PATCHLEDGER_MSP_ID``         MSP id of the client identity
``PATCHLEDGER_MSP_DIR``        MSP directory of the client identity
``PATCHLEDGER_WALLET``         wallet directory (with ``--label``)
``PATCHLEDGER_WALLET_PASSPHRASE``  wallet passphrase
``PATCHLEDGER_CHANNEL``        channel (default ``patchledger``)
``PATCHLEDGER_CHAINCODE``      chaincode (default ``patchledger``)
``PATCHLEDGER_CA_URL``         Fabric CA URL
``PATCHLEDGER_CA_TLS_CA``      the CA's TLS certificate file (its ca-cert.pem)
``PATCHLEDGER_CA_NAME``        CA name (``--caname``)
``PATCHLEDGER_TRUST``          ``ledger verify`` trust: ``MSPID=MSP_DIR`` items, comma-separated
``PATCHLEDGER_ORDERER_MSP``    ``ledger verify``: orderer MSP ids, comma-separated
=============================  ==============================================================

A missing or malformed setting raises :class:`~patchledger.app.fabric.errors.UsageError`; it and
every other :class:`~patchledger.app.fabric.errors.FabricError` are printed as one line on
standard error and end the command with exit status 2 (:data:`EXIT_ERROR`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from patchledger.app.fabric.blocks import ParsedBlock, ParsedTransaction
from patchledger.app.fabric.ca_models import Attribute, AttributeRequest, RegistrationRequest
from patchledger.app.fabric.checkpoint import FileCheckpointer, InMemoryCheckpointer
from patchledger.app.fabric.config import CAConfig, FabricConfig, IdentitySource, PeerConfig
from patchledger.app.fabric.contract import Contract
from patchledger.app.fabric.errors import CommitError, FabricError, UsageError
from patchledger.app.fabric.event_stream import EventStream
from patchledger.app.fabric.event_types import ChaincodeEvent
from patchledger.app.fabric.ledger import LedgerVerifier
from patchledger.app.fabric.network import Network
from patchledger.app.fabric.proposal import ProposalOptions
from patchledger.app.fabric.trust import TrustAnchors
from patchledger.app.fabric.wallet import Wallet

#: Exit status of a command that failed with a :class:`FabricError`.
EXIT_ERROR = 2

_Item = TypeVar("_Item")


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _path(value: str) -> Path | None:
    return Path(value) if value else None


# --- shared options ---------------------------------------------------------------------------


def _identity_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("client identity")
    group.add_argument("--msp-id", default=_env("PATCHLEDGER_MSP_ID"), help="MSP id")
    group.add_argument("--msp-dir", default=_env("PATCHLEDGER_MSP_DIR"), help="MSP directory")
    group.add_argument("--wallet", default=_env("PATCHLEDGER_WALLET"), help="wallet directory")
    group.add_argument("--label", default="", help="wallet entry (instead of --msp-dir)")


def _peer_options(parser: argparse.ArgumentParser) -> None:
    _identity_options(parser)
    group = parser.add_argument_group("peer")
    group.add_argument("--peer", default=_env("PATCHLEDGER_PEER"), help="gateway peer host:port")
    group.add_argument("--tls-ca", default=_env("PATCHLEDGER_PEER_TLS_CA"), help="peer TLS CA")
    group.add_argument("--tls-host", default=_env("PATCHLEDGER_PEER_HOST"), help="TLS name")
    group.add_argument("--tls-client-cert", default="", help="client TLS certificate (mTLS)")
    group.add_argument("--tls-client-key", default="", help="client TLS key (mTLS)")
    group.add_argument("--insecure", action="store_true", help="no TLS (dev networks only)")
    group.add_argument(
        "--channel", default=_env("PATCHLEDGER_CHANNEL", "patchledger"), help="channel"
    )
    group.add_argument(
        "--chaincode", default=_env("PATCHLEDGER_CHAINCODE", "patchledger"), help="chaincode"
    )


def _ca_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("certificate authority")
    group.add_argument("--ca-url", default=_env("PATCHLEDGER_CA_URL"), help="Fabric CA URL")
    group.add_argument("--ca-tls", default=_env("PATCHLEDGER_CA_TLS_CA"), help="CA TLS cert")
    group.add_argument("--ca-name", default=_env("PATCHLEDGER_CA_NAME"), help="CA name")


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def identity_source(args: argparse.Namespace) -> IdentitySource:
    """The identity settings from parsed arguments.

    Raises:
        UsageError: no MSP id, or neither an MSP directory nor a wallet label.
    """
    if not args.msp_id:
        raise UsageError("the MSP id is required (--msp-id or PATCHLEDGER_MSP_ID)")
    if not args.msp_dir and not (args.wallet and args.label):
        raise UsageError("give --msp-dir (PATCHLEDGER_MSP_DIR) or --wallet with --label")
    return IdentitySource(
        args.msp_id,
        msp_dir=_path(args.msp_dir) if not args.label else None,
        wallet_dir=_path(args.wallet),
        wallet_label=args.label,
        wallet_passphrase=_env("PATCHLEDGER_WALLET_PASSPHRASE"),
    )


def fabric_config(args: argparse.Namespace) -> FabricConfig:
    """The connection settings from parsed arguments.

    Raises:
        UsageError: missing peer endpoint or TLS settings.
    """
    if not args.peer:
        raise UsageError("the peer endpoint is required (--peer or PATCHLEDGER_PEER)")
    if not args.tls_ca and not args.insecure:
        raise UsageError("the peer's TLS CA certificate is required (--tls-ca), or --insecure")
    peer = PeerConfig(
        args.peer,
        tls_ca_cert=_path(args.tls_ca),
        server_name_override=args.tls_host,
        tls_client_cert=_path(args.tls_client_cert),
        tls_client_key=_path(args.tls_client_key),
        insecure=args.insecure,
    )
    return FabricConfig(peer, identity_source(args), channel=args.channel, chaincode=args.chaincode)


def ca_config(args: argparse.Namespace) -> CAConfig:
    """The CA settings from parsed arguments.

    Raises:
        UsageError: no CA URL.
    """
    if not args.ca_url:
        raise UsageError("the CA URL is required (--ca-url or PATCHLEDGER_CA_URL)")
    return CAConfig(args.ca_url, tls_ca_cert=_path(args.ca_tls), ca_name=args.ca_name)


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Map a :class:`FabricError` to one line on standard error and :data:`EXIT_ERROR`."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except FabricError as exc:
            one_line = str(exc).replace("\n", " ")
            print(f"patchledger {args.command}: error: {one_line}", file=sys.stderr)
            return EXIT_ERROR

    return run


@contextlib.contextmanager
def _network(args: argparse.Namespace) -> Iterator[tuple[FabricConfig, Network]]:
    """Connect as the identity the flags name; yield the settings and their channel.

    Raises:
        UsageError: missing peer, TLS or identity settings.
        FabricError: unreadable TLS files or identity.
    """
    config = fabric_config(args)
    with config.connect() as gateway:
        yield config, gateway.get_network(config.channel)


@contextlib.contextmanager
def _transaction(args: argparse.Namespace) -> Iterator[tuple[Contract, ProposalOptions]]:
    """``invoke`` and ``query``: the chaincode the flags name and the proposal they describe
    (checked before anything is sent).

    Raises:
        UsageError: a malformed ``--transient``, or missing settings.
        FabricError: unreadable TLS files or identity.
    """
    options = ProposalOptions(args.args, _transient(args.transient), args.endorsing_org)
    with _network(args) as (config, network):
        yield network.get_contract(config.chaincode), options


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, sort_keys=True) if args.json else text)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


# --- identity ---------------------------------------------------------------------------------


def _cmd_enroll(args: argparse.Namespace) -> int:
    client = ca_config(args).client()
    secret = args.secret or _env("PATCHLEDGER_ENROLL_SECRET")
    if not secret:
        raise UsageError("the enrolment secret is required (--secret or PATCHLEDGER_ENROLL_SECRET)")
    enrollment = client.enroll(
        args.id,
        secret,
        attr_reqs=[AttributeRequest(name) for name in args.attr],
        profile=args.profile,
        hosts=args.host,
    )
    identity = enrollment.identity(args.msp_id or "unknown")
    if args.label:
        if not args.wallet or not args.msp_id:
            raise UsageError("--label needs --wallet and --msp-id")
        passphrase = _env("PATCHLEDGER_WALLET_PASSPHRASE")
        if not passphrase:
            raise UsageError("set PATCHLEDGER_WALLET_PASSPHRASE to store into a wallet")
        Wallet(args.wallet, passphrase).put(args.label, identity, enrollment.signer)
        where = f"wallet {args.wallet} entry {args.label}"
    elif args.out:
        enrollment.write_msp_dir(args.out)
        where = f"MSP directory {args.out}"
    else:
        raise UsageError("give --out MSP_DIR or --wallet/--label to store the enrolment")
    data = {
        "enrollment_id": args.id,
        "stored": where,
        "attributes": identity.attributes,
        "serial": f"{identity.certificate.serial_number:x}",
    }
    _emit(args, data, f"enrolled {args.id} into {where}")
    return 0


def _parse_attr(text: str) -> Attribute:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"attribute {text!r} must be NAME=VALUE[:ecert]")
    ecert = value.endswith(":ecert")
    return Attribute(name, value.removesuffix(":ecert"), ecert)


def _cmd_register(args: argparse.Namespace) -> int:
    client = ca_config(args).client()
    registrar, signer = identity_source(args).load()
    request = RegistrationRequest(
        args.id,
        type=args.type,
        secret=args.secret,
        affiliation=args.affiliation,
        max_enrollments=args.max_enrollments,
        attributes=[_parse_attr(a) for a in args.attr],
    )
    secret = client.register(registrar, signer, request)
    _emit(
        args,
        {"enrollment_id": args.id, "secret": secret},
        f"registered {args.id}; secret: {secret}",
    )
    return 0


# --- invoke / query ---------------------------------------------------------------------------


def _transient(items: list[str]) -> dict[str, bytes]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"transient entry {item!r} must be KEY=VALUE")
        out[key] = value.encode()
    return out


def _cmd_invoke(args: argparse.Namespace) -> int:
    with _transaction(args) as (contract, options):
        submitted = contract.submit_async(args.function, options)
        status = submitted.get_status()
    if not status.successful:
        raise CommitError(
            status.transaction_id, status.code, status.code_name, status.block_number
        )
    result = _decode(submitted.result)
    data = {
        "transaction_id": status.transaction_id,
        "block_number": status.block_number,
        "result": result,
    }
    _emit(
        args, data, f"{result}\n(transaction {status.transaction_id}, block {status.block_number})"
    )
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    with _transaction(args) as (contract, options):
        result = contract.evaluate(args.function, options)
    _emit(args, {"result": _decode(result)}, _decode(result))
    return 0


# --- events -----------------------------------------------------------------------------------


def _event_json(event: ChaincodeEvent) -> dict[str, Any]:
    return {
        "block_number": event.block_number,
        "transaction_id": event.transaction_id,
        "chaincode": event.chaincode_name,
        "event": event.event_name,
        "payload": _decode(event.payload),
    }


def _tx_json(tx: ParsedTransaction) -> dict[str, Any]:
    return {
        "block_number": tx.block_number,
        "index": tx.index,
        "transaction_id": tx.transaction_id,
        "type": tx.header_type,
        "creator_msp_id": tx.creator_msp_id,
        "validation": tx.validation_code_name,
        "chaincode": tx.chaincode_name,
        "function": tx.function,
        "event": tx.event.event_name if tx.event else "",
    }


def _tx_line(tx: ParsedTransaction) -> str:
    return (
        f"block {tx.block_number} tx {tx.index} {tx.transaction_id or '-'} {tx.header_type} "
        f"{tx.creator_msp_id} {tx.validation_code_name} {tx.chaincode_name} {tx.function}"
    )


def _event_line(event: ChaincodeEvent) -> str:
    return (
        f"block {event.block_number} "
        f"{event.transaction_id} {event.event_name} {_decode(event.payload)}"
    )


def _follow(
    args: argparse.Namespace,
    stream: EventStream[_Item],
    as_json: Callable[[_Item], dict[str, Any]],
    as_text: Callable[[_Item], str],
    checkpoint: Callable[[_Item], None],
) -> None:
    """Print each item of ``stream`` and checkpoint it after printing; stop after
    ``--count`` items (never when it is 0)."""
    with stream:
        for count, item in enumerate(stream, start=1):
            _emit(args, as_json(item), as_text(item))
            checkpoint(item)
            if args.count and count >= args.count:
                break


def _cmd_events(args: argparse.Namespace) -> int:
    checkpointer = FileCheckpointer(args.checkpoint) if args.checkpoint else InMemoryCheckpointer()
    with _network(args) as (config, network):
        if args.blocks:
            transactions = network.get_transaction_events(
                start_block=args.start_block, checkpoint=checkpointer
            )
            _follow(args, transactions, _tx_json, _tx_line,
                    checkpointer.checkpoint_parsed_transaction)
        else:
            events = network.get_chaincode_events(
                config.chaincode, start_block=args.start_block, checkpoint=checkpointer
            )
            _follow(args, events, _event_json, _event_line,
                    checkpointer.checkpoint_chaincode_event)
        sys.stdout.flush()
    return 0


# --- ledger verify ----------------------------------------------------------------------------


def _env_list(name: str) -> list[str]:
    """A comma-separated environment variable as a list (empty when unset)."""
    return [item for item in (_env(name) or "").split(",") if item]


def _msp_dirs(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        msp_id, sep, directory = item.partition("=")
        if not sep:
            raise UsageError(f"--trust {item!r} must be MSPID=MSP_DIR")
        out[msp_id] = Path(directory)
    return out


def _cmd_verify(args: argparse.Namespace) -> int:
    trust = args.trust or _env_list("PATCHLEDGER_TRUST")
    orderer_msps = args.orderer_msp or _env_list("PATCHLEDGER_ORDERER_MSP")
    if not trust or not orderer_msps:
        raise UsageError("give --trust MSPID=DIR for every organization and --orderer-msp")
    anchors = TrustAnchors.from_msp_dirs(
        _msp_dirs(trust), orderer_msps, min_orderer_signatures=args.min_signatures
    )
    verifier = LedgerVerifier(anchors)
    found = None
    last: ParsedBlock | None = None
    with _network(args) as (_, network), network.read_blocks(0, args.stop_block) as blocks:
        for block in blocks:
            found = verifier.verify_block(block.raw)
            if found is not None:
                break
            last = block
    data = {
        "ok": found is None,
        "blocks_checked": verifier.blocks_checked,
        "transactions_checked": verifier.transactions_checked,
        "last_block": last.number if last else None,
        "last_block_hash": verifier.last_block_hash.hex(),
        "inconsistency": None
        if found is None
        else {
            "block_number": found.block_number,
            "check": found.check,
            "message": found.message,
            "transaction_index": found.transaction_index,
            "transaction_id": found.transaction_id,
        },
    }
    if found is None:
        text = (
            f"ledger OK: {verifier.blocks_checked} blocks, "
            f"{verifier.transactions_checked} transactions, last block hash "
            f"{verifier.last_block_hash.hex()}"
        )
    else:
        text = f"ledger INCONSISTENT at {found}"
    _emit(args, data, text)
    return 0 if found is None else 1


# --- registration -----------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``identity``, ``invoke``, ``query``, ``events`` and ``ledger``."""
    identity = subparsers.add_parser("identity", help="register and enroll identities (Fabric CA)")
    sub = identity.add_subparsers(dest="identity_command", metavar="ACTION", required=True)

    enroll = sub.add_parser("enroll", help="enroll an identity: key and CSR made locally")
    enroll.add_argument("--id", required=True, help="enrolment id")
    enroll.add_argument(
        "--secret", default="", help="enrolment secret (or PATCHLEDGER_ENROLL_SECRET)"
    )
    enroll.add_argument("--attr", action="append", default=[], help="attribute to request")
    enroll.add_argument("--profile", default="", help='signing profile, e.g. "tls"')
    enroll.add_argument("--host", action="append", default=[], help="SAN host (TLS profile)")
    enroll.add_argument("--out", default="", help="write an MSP directory here")
    _identity_options(enroll)
    _ca_options(enroll)
    _json_option(enroll)
    enroll.set_defaults(func=_guard(_cmd_enroll))

    register = sub.add_parser("register", help="register an identity (as a registrar)")
    register.add_argument("--id", required=True, help="enrolment id to register")
    register.add_argument("--type", default="client", help="client, peer, admin, ...")
    register.add_argument("--secret", default="", help="secret (generated by the CA if empty)")
    register.add_argument("--affiliation", default="", help="affiliation")
    register.add_argument("--max-enrollments", type=int, default=None)
    register.add_argument("--attr", action="append", default=[], help="NAME=VALUE[:ecert]")
    _identity_options(register)
    _ca_options(register)
    _json_option(register)
    register.set_defaults(func=_guard(_cmd_register))

    for name, func, text in (
        ("invoke", _cmd_invoke, "submit a transaction and wait for its commit"),
        ("query", _cmd_query, "evaluate a transaction (no ledger update)"),
    ):
        cmd = subparsers.add_parser(name, help=text)
        cmd.add_argument("function", help="transaction function, e.g. Contract:Method")
        cmd.add_argument("args", nargs="*", help="arguments (strings)")
        cmd.add_argument("--transient", action="append", default=[], help="KEY=VALUE")
        cmd.add_argument("--endorsing-org", action="append", default=[], help="MSP id")
        _peer_options(cmd)
        _json_option(cmd)
        cmd.set_defaults(func=_guard(func))

    events = subparsers.add_parser("events", help="follow chaincode or block events")
    events_sub = events.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    tail = events_sub.add_parser("tail", help="print events as they are committed")
    tail.add_argument("--blocks", action="store_true", help="every transaction of every block")
    tail.add_argument("--start-block", type=int, default=None, help="first block")
    tail.add_argument("--checkpoint", default="", help="checkpoint file (resume after restart)")
    tail.add_argument("--count", type=int, default=0, help="stop after N events")
    _peer_options(tail)
    _json_option(tail)
    tail.set_defaults(func=_guard(_cmd_events))

    ledger = subparsers.add_parser("ledger", help="audit the ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    verify = ledger_sub.add_parser("verify", help="verify hash chain and signatures from genesis")
    verify.add_argument("--trust", action="append", default=[],
                        help="MSPID=MSP_DIR (cacerts/), repeatable (default $PATCHLEDGER_TRUST)")
    verify.add_argument("--orderer-msp", action="append", default=[],
                        help="orderer MSP id, repeatable (default $PATCHLEDGER_ORDERER_MSP)")
    verify.add_argument("--min-signatures", type=int, default=1, help="orderer signatures/block")
    verify.add_argument("--stop-block", type=int, default=None, help="last block (newest)")
    _peer_options(verify)
    _json_option(verify)
    verify.set_defaults(func=_guard(_cmd_verify))
