"""Threat-intelligence feed connectors, advisory model, inventory matching, prioritization."""
