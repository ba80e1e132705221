"""The org app: a Flask application per organization (REST API, users, access)."""
