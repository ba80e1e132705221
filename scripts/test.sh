#!/usr/bin/env bash
# Set up everything (scripts/install.sh), then run the whole test suite: lint, type check, the
# dependency rules between the areas, unit tests, and integration tests against a real Fabric
# network that the test session starts once and always tears down. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install.sh
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== imports"; .venv/bin/lint-imports  # contracts in pyproject.toml, docs/architecture.md
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
