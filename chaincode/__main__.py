"""``python -m chaincode``: serve the configured contract (see chaincode.main)."""

from chaincode.main import main

raise SystemExit(main())
