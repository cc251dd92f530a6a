"""The achieved tick rate: inverse least-squares slope of tick times against tick index."""

from __future__ import annotations

import msgspec


class RateFit(msgspec.Struct, gc=False):
    """Running sums, so a long run needs no list of every tick."""

    n: int = 0
    k_sum: float = 0.0
    t_sum: float = 0.0
    kk_sum: float = 0.0
    kt_sum: float = 0.0
    k0: int = 0  # the first point: the sums are taken from it, small (float precision)
    t0: float = 0.0

    def add(self, k: int, t: float) -> None:
        if not self.n:
            self.k0, self.t0 = k, t
        k -= self.k0
        t -= self.t0
        self.n += 1
        self.k_sum += k
        self.t_sum += t
        self.kk_sum += k * k
        self.kt_sum += k * t

    def ticks_per_second(self) -> float | None:
        denominator = self.n * self.kk_sum - self.k_sum**2
        if self.n < 2 or denominator == 0:
            return None
        slope = (self.n * self.kt_sum - self.k_sum * self.t_sum) / denominator
        return 1.0 / slope if slope > 0 else None
