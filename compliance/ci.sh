#!/usr/bin/env bash
# The Autobahn|Testsuite run of CI: install wstest (cached), then every case with the mint
# driver in passive mode, and the core cases again in active mode (the mailbox path).
# Fails when any case is FAILED or UNIMPLEMENTED. Reports: compliance/reports/*/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${MINT_VENV:-$PWD/.venv}/bin/python"
bash compliance/install.sh
"$PY" compliance/run.py --cases '*' --mode passive --outdir compliance/reports/clients
"$PY" compliance/run.py --cases '1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*' --mode active --outdir compliance/reports/active
