"""Errors shared across the app's areas."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can act on (bad input, wrong state); printed as one line by the CLI."""
