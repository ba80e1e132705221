"""The patchledger host agent and its installer backends."""
