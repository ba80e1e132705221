"""patchledger org app: Fabric client, threat feeds, dispatcher, read model, web UI and API."""
