#!/usr/bin/env bash
# Set up the project, then run the example training flow with Prefect's embedded server and the
# default local store (~/.mlart/store, or MLART_STORE_URL when set).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python flows/train_breast_cancer.py "$@"
