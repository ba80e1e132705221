#!/usr/bin/env bash
# The product on one machine: set up everything (scripts/install.sh), then `patchledger demo up`:
# the Fabric network, the three organizations' apps, ITOps' dispatcher and a simulated fleet, and
# the scripted scenario (a KEV vulnerability matched, a patch proposed, tested, approved by two
# organizations, rolled out canary-then-waves, one failing host rolled back, compliance facts).
# Safe to run again; `./scripts/demo.sh --fresh` starts over. Stop: .venv/bin/patchledger demo down
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install.sh
exec .venv/bin/patchledger demo up "$@"
