"""The dispatcher (docs/dispatch.md): the pure planner and wave gates, and the process that
drives rollouts on the ledger and batches the agents' signed reports."""
