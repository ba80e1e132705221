"""The read model: the ledger's records, their every version, blocks and transactions in the
app database, fed only from committed blocks (see docs/readmodel.md). No Flask here: the API,
the dispatcher and the CLI use it as a library."""
