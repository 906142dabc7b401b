#!/usr/bin/env bash
# Set up the project, then run the example training flow with Prefect's embedded server and the
# default local store (~/.mlart/store, or MLART_STORE_URL when set).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Keep the run on this machine: no usage reports from Prefect's embedded server.
export DO_NOT_TRACK="${DO_NOT_TRACK:-1}"
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
exec .venv/bin/python flows/train_breast_cancer.py "$@"
