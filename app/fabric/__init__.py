"""Python Fabric client: identities, Gateway, Fabric CA, events, ledger verification."""
