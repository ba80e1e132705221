"""``python -m patchledger.chaincode``: serve the configured contract (see chaincode.main)."""

from patchledger.chaincode.main import main

raise SystemExit(main())
