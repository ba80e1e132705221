"""Hypothesis strategies that mutate real documents: bytes (flips, truncation, insertion,
deletion, duplication) and JSON structure (wrong types, deletions, deep nesting, huge numbers,
lone surrogates) at a drawn place of the decoded document.

A structural mutation is made on a deep copy of the document and serialized again; the values
JSON's encoder cannot write (nesting deeper than the encoder recurses, numbers past Python's
integer-string limit) are written as placeholders and substituted into the text afterwards, so the
parser under test sees the raw hostile text.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

#: Fragments worth inserting: JSON structure, escapes, control bytes, invalid UTF-8, CR/tab.
TOKENS = (
    b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\\u", b"\\ud800", b"\x00", b"\xff",
    b"\xed\xa0\x80", b"\xef\xbb\xbf", b"null", b"-", b"1e999", b"NaN", b"\r\n", b"\t", b"\n\n",
    b"{CVE-", b"[bookworm] - ", b"DSA-", b" - ", b"<", b"(",
)

_DEEP = "\x00patchledger-deep-{}\x00"
_HUGE = "\x00patchledger-huge-{}\x00"
_HOSTILE_TEXT = {
    # deep nesting: far past what a recursive decoder allows
    "deep-array": "[" * 100_000 + "]" * 100_000,
    "deep-object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "deep-mild": "[" * 200 + "]" * 200,
    # numbers past every limit: 5,000 digits (over Python's 4,300-digit int limit), overflow
    "huge-int": "9" * 5000,
    "huge-negative": "-" + "9" * 5000,
    "huge-float": "1e999",
    "tiny-float": "-1e-999",
    "nan": "NaN",
}

#: Wrong-typed and edge values put in place of a drawn value.
ODD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**63, -(2**63) - 1, 10**300, 0.5, -0.0, 1e308,
    "", " ", "x" * 10_000, "\ud800", "\udfff", "a\ud800b", "\x00", "\u202e", "0", "-1",
    "1999-99-99", "9999-12-31T23:59:59Z", "cpe:2.3:a", "pkg:", "pkg:deb/", ":", "::",
    [], [None], [[]], [""], {}, {"": None}, {"id": None},
)


def _placeholder(kind: str) -> str:
    return (_DEEP if kind.startswith("deep") else _HUGE).format(kind)


_NEST = "\x00patchledger-nest-{}\x00"


def render(doc: Any, nests: dict[str, str] | None = None) -> bytes:
    """``doc`` as JSON bytes with the hostile placeholders (and ``nests``, placeholder ->
    text) substituted."""
    text = json.dumps(doc, ensure_ascii=True)
    replacements = {**{_placeholder(k): raw for k, raw in _HOSTILE_TEXT.items()}, **(nests or {})}
    for placeholder, raw in replacements.items():
        quoted = json.dumps(placeholder)
        if quoted in text:
            text = text.replace(quoted, raw)
    return text.encode("utf-8")


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one to four byte-level mutations."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        size = len(out)
        op = draw(st.sampled_from(("flip", "truncate", "insert", "delete", "duplicate", "token")))
        at = draw(st.integers(0, max(size - 1, 0)))
        if op == "flip" and size:
            out[at] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del out[at:]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and size:
            del out[at:at + draw(st.integers(1, 64))]
        elif op == "duplicate" and size:
            out[at:at] = out[at:at + draw(st.integers(1, 256))]
        elif op == "token":
            out[at:at] = draw(st.sampled_from(TOKENS))
    return bytes(out)


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node)
    if isinstance(node, list):
        return list(range(len(node)))
    return []


@st.composite
def json_mutations(draw: st.DrawFn, doc: Any) -> bytes:
    """``doc`` (not changed) with one to three structural mutations, as JSON bytes."""
    mutated = copy.deepcopy(doc)
    nests: dict[str, str] = {}
    for _ in range(draw(st.integers(1, 3))):
        mutated = _mutate_once(draw, mutated, nests)
    return render(mutated, nests)


def _self_nested(key: Any, node: Any, depth: int) -> str:
    """``node`` nested ``depth`` times inside itself under its own key (``children`` in
    ``children``...): deep, yet shallow enough for the decoder, so the parser's own recursion
    is what is tested."""
    inner = json.dumps(node, ensure_ascii=True)
    if isinstance(key, str):
        return ("{" + json.dumps(key) + ":") * depth + inner + "}" * depth
    return "[" * depth + inner + "]" * depth


def _mutate_once(draw: st.DrawFn, doc: Any, nests: dict[str, str]) -> Any:
    # walk down from the root, usually deep (records sit a few levels down)
    path: list[Any] = []
    node = doc
    while _children(node) and draw(st.integers(0, 9)) < 8:
        key = draw(st.sampled_from(_children(node)))
        path.append(key)
        node = node[key]
    op = draw(st.sampled_from(("replace", "delete", "hostile", "wrap", "add-key", "swap",
                               "self-nest")))
    if op == "self-nest":
        placeholder = _NEST.format(len(nests))
        nests[placeholder] = _self_nested(path[-1] if path else 0, node,
                                          draw(st.sampled_from((50, 400, 900))))
        new: Any = placeholder
    elif op == "replace":
        new = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
    elif op == "hostile":
        new = _placeholder(draw(st.sampled_from(sorted(_HOSTILE_TEXT))))
    elif op == "wrap":
        new = [node] if draw(st.booleans()) else {"value": node}
    elif op == "swap":
        new = list(node.values()) if isinstance(node, dict) else (
            {"0": node} if isinstance(node, list) else str(node))
    elif op == "add-key" and isinstance(node, dict):
        node[draw(st.sampled_from(("", "id", "\ud800", "__proto__", "x" * 300)))] = (
            copy.deepcopy(draw(st.sampled_from(ODD_VALUES))))  # never share (or change) them
        return doc
    else:  # delete (or add-key on a non-object: delete it instead)
        if not path:
            return {}
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        return doc
    if not path:
        return new
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return doc
