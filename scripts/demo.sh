#!/usr/bin/env bash
# The main job: set up everything, start the Fabric network (or find it running), deploy the
# chaincode, run a smoke transaction through it, and print the network's status.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install.sh
.venv/bin/patchledger network up
.venv/bin/patchledger network smoke
.venv/bin/patchledger network status
cat <<'TXT'

The network keeps running. To stop it:   .venv/bin/patchledger network down
To delete its state:                      .venv/bin/patchledger network reset
TXT
