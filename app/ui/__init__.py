"""The org app's web UI: server-rendered pages (Jinja) under ``/ui`` with progressive
enhancement (htmx) and charts (Chart.js), both vendored in ``static/vendor`` (no CDN), sent
with a strict Content-Security-Policy (no inline script or style). See docs/ui.md.

Authentication, CSRF and authorization are the app's own (app.web.factory's request hook and
app.web.rbac's table): every page declares its permission with
:func:`patchledger.app.web.rbac.requires`, exactly like the API's views.
"""
