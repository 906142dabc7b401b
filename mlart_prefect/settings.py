"""Settings read from ``MLART_*`` environment variables."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mlart_prefect.errors import InvalidSettingError

DEFAULT_STORE_PATH = Path.home() / ".mlart" / "store"


class MlartSettings(BaseSettings):
    """Configuration of mlart_prefect.

    Every field is read from an environment variable named ``MLART_<FIELD>``; for example
    ``MLART_STORE_URL=s3://team-bucket/artifacts`` and
    ``MLART_STORAGE_OPTIONS='{"endpoint_url": "http://127.0.0.1:9000"}'``.
    """

    model_config = SettingsConfigDict(env_prefix="MLART_", extra="ignore")

    store_url: str = Field(
        default=str(DEFAULT_STORE_PATH),
        description="fsspec URL or local folder of the store (default: ~/.mlart/store).",
    )
    project: str = Field(default="default", description="Project used when a reference names none.")
    # NoDecode hands the raw text to the validator below, which names the variable on bad JSON.
    storage_options: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict,
        description="Keyword arguments for the fsspec filesystem, as a JSON object.",
    )
    preview_rows: int = Field(default=20, ge=0, description="Rows kept in a dataset preview.")
    # Statistics scale with cells like the Parquet write. On 2 shared cores they took 21-23 ms
    # per million cells of numbers, dates and low-cardinality text (the write 26-30 ms), but
    # 240-370 ms per million unique text values. The default keeps them near 0.5 s for a
    # typical frame, partly hidden behind the write, and at 5-7 s for a frame made only of
    # unique text. Measured with `python -m benchmarks.bench_kinds --stats-scaling`; see
    # docs/benchmarks.md.
    stats_max_cells: int = Field(
        default=20_000_000,
        ge=0,
        description="Statistics are computed by default when rows x columns is at most this.",
    )
    fsync: bool = Field(
        default=False,
        description=(
            "Flush every body, manifest and tag of a local store to the disk before a save "
            "returns, so it survives an operating-system crash or power loss."
        ),
    )
    publish: bool = Field(default=True, description="Publish summaries as Prefect artifacts.")
    ui_url: str | None = Field(
        default=None, description="Base URL of the mlart web view, linked from Prefect cards."
    )
    prefect_ui_url: str | None = Field(
        default=None, description="Base URL of the Prefect UI, linked from the web view."
    )

    @field_validator("storage_options", mode="before")
    @classmethod
    def _parse_storage_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected a JSON object ({exc})") from exc
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object, such as {\"endpoint_url\": \"...\"}")
        return value


@lru_cache(maxsize=1)
def _cached_settings() -> MlartSettings:
    try:
        return MlartSettings()
    except ValidationError as exc:
        raise InvalidSettingError(_settings_problems(exc)) from None


def _settings_problems(exc: ValidationError) -> str:
    """Describe invalid settings by their variable names, without pydantic's extra text."""
    problems = []
    for error in exc.errors():
        variable = "MLART_" + "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{variable}={error.get('input')!r}: {message}")
    return "Invalid setting " + "; ".join(problems) + "."


def get_settings(*, reload: bool = False) -> MlartSettings:
    """Return the process-wide settings, read from the environment on first use.

    Args:
        reload: Read the environment again (tests and long-lived processes that change it).
    """
    if reload:
        _cached_settings.cache_clear()
    return _cached_settings()
