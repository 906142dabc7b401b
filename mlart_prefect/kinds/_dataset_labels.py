"""Readable, unique column names for dataset labels, and JSON records of labels to restore them."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from mlart_prefect.jsonsafe import to_json_value

if TYPE_CHECKING:
    import pandas as pd

LEVEL_SEPARATOR = "|"
"""Separator of a MultiIndex label's parts in its name: ``("sales", 2023)`` -> ``"sales|2023"``."""

_LABEL_TYPES = (str, int, float, bool, type(None))


def label_text(label: Hashable) -> str:
    """Return the readable name of one column or index label.

    Tuples (MultiIndex labels) are joined with ``LEVEL_SEPARATOR`` after dropping trailing empty
    parts, so ``("sales", "")`` from a flattened aggregation reads ``"sales"``.
    """
    if isinstance(label, tuple):
        parts = [_part_text(part) for part in label]
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
        return LEVEL_SEPARATOR.join(parts)
    return _part_text(label)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    value = to_json_value(part)
    return value if isinstance(value, str) else str(value)


def unique_names(names: Iterable[str], *, taken: Iterable[str] = ()) -> list[str]:
    """Make names unique by appending ``.1``, ``.2``… to repeats, as ``pandas.read_csv`` does.

    Args:
        names: Names in order; the first occurrence keeps its name.
        taken: Names already in use elsewhere (for example data columns, when naming index
            columns); a name equal to one of them is suffixed too.
    """
    used = set(taken)
    result = []
    for name in names:
        candidate = name
        counter = 0
        while candidate in used:
            counter += 1
            candidate = f"{name}.{counter}"
        used.add(candidate)
        result.append(candidate)
    return result


def index_level_names(index: pd.Index, *, taken: Iterable[str] = ()) -> list[str]:
    """Return preview names of an index's levels, as ``DataFrame.reset_index`` would name them.

    An unnamed single level is ``"index"``; unnamed levels of a MultiIndex are ``"level_<i>"``.
    Names that collide with ``taken`` (the data column names) get a ``.1`` suffix.
    """
    names = []
    for position, name in enumerate(index.names):
        if name is not None:
            names.append(label_text(name))
        elif index.nlevels == 1:
            names.append("index")
        else:
            names.append(f"level_{position}")
    return unique_names(names, taken=taken)


def json_label(label: Hashable) -> Any:
    """Return a label as JSON (tuples as lists) when JSON keeps it exactly, else None.

    Exactly means made of str, int, float, bool and None parts, so that ``restore_labels``
    gives back equal labels of the same types.
    """
    import numpy as np

    parts = label if isinstance(label, tuple) else (label,)
    converted = []
    for part in parts:
        if isinstance(part, np.generic):
            part = part.item()
        if not isinstance(part, _LABEL_TYPES):
            return None
        converted.append(part)
    return converted if isinstance(label, tuple) else converted[0]


def labels_record(columns: pd.Index) -> dict[str, Any] | None:
    """Describe a column Index as JSON so it can be rebuilt, or None when a label cannot be kept.

    The record contains ``labels`` (lists for MultiIndex labels), ``names`` (level names) and
    ``dtypes`` (one pandas dtype per level).
    """
    labels = [json_label(label) for label in columns]
    names = [json_label(name) for name in columns.names]
    kept = all(label is not None or original is None for label, original in zip(labels, columns))
    names_kept = all(n is not None or o is None for n, o in zip(names, columns.names))
    if not (kept and names_kept):
        return None
    if columns.nlevels > 1:
        dtypes = [str(columns.levels[i].dtype) for i in range(columns.nlevels)]
    else:
        dtypes = [str(columns.dtype)]
    return {"labels": labels, "names": names, "dtypes": dtypes}


def restore_labels(record: dict[str, Any]) -> pd.Index:
    """Rebuild the column Index described by ``labels_record``."""
    import pandas as pd

    names: Sequence[Any] = record["names"]
    dtypes: Sequence[str] = record["dtypes"]
    if len(names) > 1:
        tuples = [tuple(label) for label in record["labels"]]
        if not tuples:
            return pd.MultiIndex.from_arrays([[] for _ in names], names=names)
        columns = pd.MultiIndex.from_tuples(tuples, names=names)
        levels = [_level_as(columns.levels[i], dtypes[i]) for i in range(columns.nlevels)]
        return columns.set_levels(levels)
    return _level_as(pd.Index(record["labels"], name=names[0], dtype=object), dtypes[0])


def _level_as(level: pd.Index, dtype: str) -> pd.Index:
    try:
        return level.astype(dtype)
    except (TypeError, ValueError):
        return level
