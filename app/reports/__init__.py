"""Compliance reports (KEV remediation, SLA, MTTR, exposure, exceptions) as of a date, from
the ledger's history in the read model: pure arithmetic (compliance), the facts' extraction
(source), HTML / CSV / PDF / JSON renderers (render) and ``patchledger report`` (cli)."""
