"""Minimum, maximum, exact quartiles and a histogram of numeric values in a few numpy passes.

Quartiles are exact order statistics with linear interpolation (numpy's and pyarrow's
"linear" method), but found without sorting or partitioning the whole column: the histogram's
counts tell which bin contains each wanted rank, and only that bin's values are partitioned. For
values spread over several bins this costs a few comparisons per value instead of a full
selection over a copy of the column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Distribution:
    """Summary of numeric values; every field is None when there are no values.

    ``quantiles`` and the histogram edges (``base + offsets``) are exact Python numbers relative
    to ``base``, which is 0 unless the values were shifted to keep precision.
    """

    minimum: Any
    maximum: Any
    quantiles: list[Any]
    base: Any
    offsets: list[float] | None
    counts: list[int] | None


def describe_distribution(
    values: np.ndarray,
    *,
    quantiles: Sequence[float],
    bins: int,
    infinities: bool = False,
    shift: bool = False,
) -> Distribution:
    """Summarise values that hold no missing values (NaN and nulls already removed).

    Args:
        values: A 1-D numpy array of numbers; floats may include +inf and -inf.
        quantiles: Fractions between 0 and 1.
        bins: Number of equal histogram bins between the finite minimum and maximum.
        infinities: Whether ``values`` may hold infinities; they are ranked in the quantiles
            but left out of the histogram.
        shift: Bin and select values as distances from their minimum, exactly in integers,
            for types whose values are large next to their spread (timestamps). Also used as a
            fallback when float64 cannot split a narrow range.
    """
    import numpy as np

    if values.size == 0:
        return Distribution(None, None, [None] * len(quantiles), 0, None, None)
    minimum, maximum = values.min(), values.max()
    finite = values[np.isfinite(values)] if infinities else values
    below = int(np.count_nonzero(values == -np.inf)) if infinities else 0
    above = values.size - finite.size - below
    if finite.size == 0:
        ranks = _Ranks(finite, np.zeros(bins, dtype=np.int64), np.zeros(bins + 1), below, above)
        return Distribution(minimum, maximum, ranks.quantiles(quantiles), 0, None, None)

    low, high = (finite.min(), finite.max()) if infinities else (minimum, maximum)
    try:
        base, binned, counts, edges = _bin(values, low, high, bins, shift=shift)
    except ValueError:  # numpy cannot make equal float64 bins over a narrow range
        base, binned, counts, edges = _bin(values, low, high, bins, shift=True)
    ranks = _Ranks(binned, counts, edges, below, above)
    return Distribution(
        minimum, maximum, ranks.quantiles(quantiles), base, edges.tolist(), counts.tolist()
    )


def _bin(
    values: np.ndarray, low: Any, high: Any, bins: int, *, shift: bool
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    if shift:
        base = low.item()
        binned = values - values.dtype.type(base)
        first, last = float(low - base), float(high - base)
    else:
        base, binned = 0, values
        first, last = float(low), float(high)
    if first == last:
        first, last = first - 0.5, last + 0.5
    # np.histogram skips NaN, infinities and values outside [first, last].
    counts, edges = np.histogram(binned, bins=bins, range=(first, last))
    return base, binned, counts, edges


class _Ranks:
    """Order statistics of binned values, read from the histogram bin that contains each rank."""

    def __init__(self, values: np.ndarray, counts: np.ndarray, edges: np.ndarray, below: int,
                 above: int) -> None:
        import numpy as np

        self.values = values
        self.counts = counts
        self.edges = edges
        self.below = below
        self.finite = int(counts.sum())
        self.total = below + self.finite + above
        self.ends = np.cumsum(counts)

    def quantiles(self, fractions: Sequence[float]) -> list[Any]:
        """Return each quantile with linear interpolation between neighbouring ranks."""
        positions = [(self.total - 1) * fraction for fraction in fractions]
        wanted = set()
        for position in positions:
            lower = math.floor(position)
            wanted.add(lower)
            if position > lower:
                wanted.add(lower + 1)
        found = self._order_statistics(sorted(wanted))

        result = []
        for position in positions:
            lower = math.floor(position)
            fraction = position - lower
            low_value = found[lower]
            if fraction == 0 or found[lower + 1] == low_value:
                result.append(low_value)
            else:
                high_value = found[lower + 1]
                result.append(float(low_value) + (float(high_value) - float(low_value)) * fraction)
        return result

    def _order_statistics(self, ranks: list[int]) -> dict[int, Any]:
        import numpy as np

        found: dict[int, Any] = {}
        by_bin: dict[int, list[int]] = {}
        for rank in ranks:
            if rank < self.below:
                found[rank] = -math.inf
            elif rank >= self.below + self.finite:
                found[rank] = math.inf
            else:
                local = rank - self.below
                bin_index = int(np.searchsorted(self.ends, local, side="right"))
                by_bin.setdefault(bin_index, []).append(local)

        # Two mask buffers serve every bin: fresh allocations of this size cost page faults.
        inside = np.empty(self.values.shape, dtype=bool)
        scratch = np.empty(self.values.shape, dtype=bool)
        for bin_index, locals_ in by_bin.items():
            start = int(self.ends[bin_index] - self.counts[bin_index])
            members = self._members(bin_index, inside, scratch)
            if members.size != self.counts[bin_index]:
                # Rounding put a value on the other side of an edge than np.histogram did: use
                # the finite values as a whole, which is exact but slower.
                members, start = self._finite_values(), 0
            members.partition([local - start for local in locals_])
            for local in locals_:
                found[local + self.below] = members[local - start].item()
        return found

    def _members(self, bin_index: int, inside: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """Return a copy of the values in one bin, by np.histogram's rule: [edge, next edge),
        the last bin closed on the right."""
        import numpy as np

        values, edges = self.values, self.edges
        np.greater_equal(values, edges[bin_index], out=inside)
        if bin_index == len(self.counts) - 1:
            np.less_equal(values, edges[bin_index + 1], out=scratch)
        else:
            np.less(values, edges[bin_index + 1], out=scratch)
        np.logical_and(inside, scratch, out=inside)
        return values[inside]

    def _finite_values(self) -> np.ndarray:
        import numpy as np

        return self.values[np.isfinite(self.values)]
