"""Parsing of the listing filters shared by the ``mlart`` command and the web view."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from mlart_prefect.errors import MlartError

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
TIME_FORMS = (
    "an ISO date (2024-05-01), an ISO date and time (2024-05-01T12:30, 2024-05-01 12:30:00+02:00) "
    "or an age such as 30s, 30m, 12h, 7d, 2w"
)


class InvalidFilterError(MlartError, ValueError):
    """A label or time filter has none of the accepted forms."""


def parse_labels(items: list[str] | tuple[str, ...] | None) -> dict[str, str]:
    """Turn ``["stage=raw", "team=ml"]`` into ``{"stage": "raw", "team": "ml"}``.

    The value may contain ``=``; only the first one splits. Repeating a name keeps the last value.

    Raises:
        InvalidFilterError: An item has no ``=`` or an empty name.
    """
    labels: dict[str, str] = {}
    for item in items or ():
        name, separator, value = item.partition("=")
        name = name.strip()
        if not separator or not name:
            raise InvalidFilterError(
                f"Invalid label filter {item!r}: expected NAME=VALUE, for example stage=raw."
            )
        labels[name] = value.strip()
    return labels


def parse_time(
    text: str | None, *, end_of_day: bool = False, now: datetime | None = None
) -> datetime | None:
    """Turn a time filter into an aware UTC datetime; None and blank text give None.

    Accepted forms: an age such as ``30m``, ``12h``, ``7d`` or ``2w`` (that long before ``now``),
    an ISO date, or an ISO date and time. Times without an offset are taken as UTC, like the
    ``created`` times the store records.

    Args:
        text: The filter as typed.
        end_of_day: Read a bare date as the last microsecond of that day instead of its start,
            so that ``--until 2024-05-01`` includes the whole first of May (default False).
        now: The reference time of ages (default: the current UTC time).

    Raises:
        InvalidFilterError: The text has none of the accepted forms.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()

    relative = _RELATIVE.fullmatch(text.lower())
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return (now or datetime.now(UTC)) - timedelta(seconds=amount * _UNIT_SECONDS[unit])

    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            moment = time.max if end_of_day else time.min
            return datetime.combine(day, moment, tzinfo=UTC)

    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidFilterError(f"Invalid time {text!r}: expected {TIME_FORMS}.") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
