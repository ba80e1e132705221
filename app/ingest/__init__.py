"""Ingestion: configured threat feeds matched against the organization's host inventories;
new or changed vulnerabilities recorded on the ledger in batches, idempotently; findings and
patch candidates kept off the ledger in the app database (see docs/readmodel.md)."""
