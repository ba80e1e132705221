"""Evidence bundles: malformed input is refused naming what is wrong; the export's refusals
are in tests/unit/ui/test_actions.py. The full export and offline verification (real
signatures, a forged and a cut bundle) run on the real network: tests/e2e/test_ui_network.py.
"""

from __future__ import annotations

import pytest

from patchledger.app.cli import main
from patchledger.app.reports.evidence import FORMAT, EvidenceError, load_bundle, verify_bundle


def test_not_a_bundle() -> None:
    with pytest.raises(EvidenceError, match="not JSON"):
        load_bundle(b"{")
    with pytest.raises(EvidenceError, match=f"not a {FORMAT} bundle"):
        load_bundle(b'{"format": "other"}')


def test_malformed_parts() -> None:
    with pytest.raises(EvidenceError, match="trust roots are malformed"):
        verify_bundle({"format": FORMAT, "trust": {"msp_cas": {"A": ["not a pem"]},
                                                   "orderer_msp_ids": []}, "blocks": []})
    with pytest.raises(EvidenceError, match="blocks are malformed"):
        verify_bundle({"format": FORMAT, "trust": {"msp_cas": {}, "orderer_msp_ids": []},
                       "blocks": ["!!"]})


def test_cli_refuses_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "verify-evidence", "/nonexistent/bundle.json"]) != 0
    assert "cannot read the evidence bundle" in capsys.readouterr().err
