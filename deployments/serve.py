"""Serve the breast cancer training flow on cron schedules from this process.

Run it from the repository root with ``python deployments/serve.py``. It registers the
deployment with the Prefect API and runs its scheduled runs until you stop it with Ctrl+C, which
pauses the schedules. No work pool or worker is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron, Schedule

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

REPOSITORY = Path(__file__).resolve().parents[1]
ENTRYPOINT = f"{REPOSITORY / 'flows' / 'train_breast_cancer.py'}:train_breast_cancer"
DEPLOYMENT_NAME = "breast-cancer-scheduled"
TAGS = ["mlart", "breast-cancer"]


def schedules() -> list[Schedule]:
    """Return the schedules: every night at 02:00 UTC, and a larger forest on Sundays."""
    return [
        Cron("0 2 * * *", timezone="UTC", slug="nightly"),
        Cron("0 3 * * 0", timezone="UTC", slug="weekly-large-forest",
             parameters={"n_estimators": 500}),
    ]


def load_flow() -> Flow[..., Any]:
    """Import the training flow from its file (``flows`` is a folder of scripts, not a package)."""
    return load_flow_from_entrypoint(ENTRYPOINT)


def build_deployment(*, name: str = DEPLOYMENT_NAME) -> RunnerDeployment:
    """Return the scheduled deployment without registering it (tests register it themselves)."""
    return load_flow().to_deployment(
        name=name,
        schedules=schedules(),
        tags=TAGS,
        description="Train and evaluate the breast cancer classifier; outputs go to the mlart store.",
    )


if __name__ == "__main__":
    # The runner starts each flow run in a child process that imports the flow file, so
    # nothing here may run on import.
    load_flow().serve(
        name=DEPLOYMENT_NAME,
        schedules=schedules(),
        tags=TAGS,
        limit=1,
    )
