"""Finance's resource-based throttling (Priority-based throttling; platform-and-peers.md §4).

Since 10.0.19 Finance throttles on resource use, environment-wide, rather than by fixed per-user
counts: when the environment is busy it answers 429 "high resource utilization" with `Retry-After`.
How Finance weighs a request is not published; here (inferred) a request costs one unit per row it
reads or writes and the environment has `units_per_second` to spend, with `burst` in reserve, a token
bucket, so a caller that pushes past the budget meets the 429 the way it would meet it in Finance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ResourceBudget:
    units_per_second: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    refused: int = 0
    _tokens: float = field(default=-1.0, repr=False)
    _at: float = field(default=0.0, repr=False)

    def spend(self, units: float) -> float | None:
        """Spend the units, or return the seconds to wait (Retry-After) when the budget is spent."""
        now = self.clock()
        if self._tokens < 0:
            self._tokens, self._at = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.units_per_second)
        self._at = now
        if self._tokens >= units:
            self._tokens -= units
            return None
        self.refused += 1
        return max(1, math.ceil((units - self._tokens) / self.units_per_second))
