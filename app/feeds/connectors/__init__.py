"""One connector per source; each turns a decoded document into :class:`ParseResult`.

Connectors are pure: they receive the decoded document (JSON value or text) and the origin
(file path or URL, for error messages) and never do I/O. Reading files and URLs is
:mod:`app.feeds.loader`'s job.
"""
