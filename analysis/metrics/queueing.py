"""A queueing model of a trial: from rates, event range and VM count to each VM's behaviour.

On a tick with an empty inbox a VM draws r in 1..E and sends to one given peer
with probability p (r = 1 or 2 picks one of the N - 1 peers, r = 3 sends to
all). A VM receives on a share rho_i of its ticks and sends only on the
others, so the messages arriving at VM i per simulated second are

    lambda_i = sum over j != i of mu_j * (1 - rho_j) * p,    rho_i = min(1, lambda_i / mu_i)

and the fixed point of that map is the steady state: VM i's queue grows, at
lambda_i - mu_i messages per second, exactly when lambda_i > mu_i.

A trial is finite, and every inbox starts empty. With `duration`, each VM's
inbox is followed tick by tick as a Markov chain (arrivals from each sender
binomial over the sender's ticks in one of its own tick periods), so the
receive share counts the ticks a VM spent sending before its queue took off,
and the queue that remains at the end. The shares of the senders feed back into
the arrivals, and that finite fixed point is iterated too.

Both fixed points are found by damped Anderson mixing: each step moves from the
latest shares along a blend of the last few steps that best cancels what they
left to move, so a fixed point that plain damping reaches in tens of steps is
reached in a handful, each finite step costing one tick-by-tick chain per VM.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.columns import Floats
from analysis.errors import AnalysisError

DAMPING = 0.5  # each step moves half way: the map is decreasing, undamped it can oscillate
MEMORY = 3  # earlier steps the mixing blends
TOLERANCE = 1e-10
MAX_STEPS = 10_000
FINITE_TOLERANCE = 1e-9
FINITE_STEPS = 200
MAX_TICKS = 100_000  # per VM, for the tick-by-tick chain
SETTLED = 1e-13  # total change in the inbox's distribution below which the chain stops moving
SETTLE_EVERY = 4  # ticks between two looks at that change: a look costs as much as a tick
# Inbox lengths the chain tells apart; longer ones are lumped into the last. A queue
# that long is far from empty: it comes back only at loads within a hair of 1.
MAX_QUEUE = 400


class ModelError(AnalysisError):
    """Inputs the model cannot use."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the model expects of one VM; rates and growth per simulated second."""

    vm: int
    rate: float
    arrival_rate: float  # lambda: messages arriving per second
    receive_share: float  # of the VM's ticks
    send_share: float
    queue_growth: float  # max(0, lambda - mu), messages per second
    queue_grows: bool  # lambda > mu

    @property
    def load(self) -> float:
        """lambda / mu: above 1 the VM cannot keep up."""
        return self.arrival_rate / self.rate

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "receive_share": self.receive_share,
            "send_share": self.send_share,
            "arrival_rate": self.arrival_rate,
            "queue_growth": self.queue_growth,
            "queue_grows": self.queue_grows,
        }


def send_probability(event_range: int, vms: int) -> float:
    """p: the chance that a tick with an empty inbox sends a message to one given peer."""
    if vms < 2:
        return 0.0
    one_peer = min(event_range, 2) / event_range / (vms - 1)  # r = 1 or 2, one peer drawn
    broadcast = (1.0 if event_range >= 3 else 0.0) / event_range  # r = 3, every peer
    return one_peer + broadcast


def sending_share(event_range: int, vms: int) -> float:
    """The share of empty-inbox ticks that send at all (r <= 3)."""
    return min(event_range, 3) / event_range if vms >= 2 else 0.0


def predict(
    rates: Sequence[float], event_range: int, duration: float | None = None
) -> tuple[Prediction, ...]:
    """Each VM's prediction: the steady state, or (with `duration`) a trial that long."""
    mu = _validated(rates, event_range, duration)
    p = send_probability(event_range, len(mu))
    steady = steady_shares(mu, p)
    arrivals = _arrivals(mu, steady, p)  # growth and its sign are long-run properties
    rho = steady if duration is None else _finite_shares(mu, p, duration, steady)
    send = sending_share(event_range, len(mu))
    return tuple(
        Prediction(
            vm=i,
            rate=float(mu[i]),
            arrival_rate=float(arrivals[i]),
            receive_share=float(rho[i]),
            send_share=float((1.0 - rho[i]) * send),
            queue_growth=max(0.0, float(arrivals[i] - mu[i])),
            queue_grows=bool(arrivals[i] > mu[i]),
        )
        for i in range(len(mu))
    )


def steady_shares(mu: Floats, p: float) -> Floats:
    """The fixed point rho_i = min(1, lambda_i / mu_i), from rho = 0."""

    def target(rho: Floats) -> Floats:
        shares: Floats = np.minimum(1.0, _arrivals(mu, rho, p) / mu)
        return shares

    rho, settled = _fixed_point(target, np.zeros_like(mu), TOLERANCE, MAX_STEPS)
    if not settled:
        raise ModelError(f"no fixed point within {MAX_STEPS} steps for rates {mu.tolist()}")
    return rho


def _arrivals(mu: Floats, rho: Floats, p: float) -> Floats:
    """lambda_i: what every other VM sends to i per second from its free ticks."""
    sent: Floats = mu * (1.0 - rho) * p
    arrivals: Floats = sent.sum() - sent
    return arrivals


def _finite_shares(mu: Floats, p: float, duration: float, steady: Floats) -> Floats:
    """The receive shares of a trial `duration` long, iterated from the steady state (the
    last shares reached if they have not settled within FINITE_STEPS)."""

    def target(rho: Floats) -> Floats:
        return np.array([_receive_share_in_trial(i, mu, rho, p, duration) for i in range(len(mu))])

    rho, _ = _fixed_point(target, steady, FINITE_TOLERANCE, FINITE_STEPS)
    return rho


def _fixed_point(
    target: Callable[[Floats], Floats], start: Floats, tolerance: float, steps: int
) -> tuple[Floats, bool]:
    """Shares rho with target(rho) = rho, by damped Anderson mixing from `start`: the
    first target(rho) that moves no share by `tolerance`, and True; or the last shares
    reached, and False, if `steps` do not find it.

    Each step moves DAMPING of the way to the target, less the blend of the last MEMORY
    steps whose changes best cancel the distance still left (least squares)."""
    rho = start
    tried: list[Floats] = []  # the shares of the last steps
    left_by: list[Floats] = []  # and how far each was from its target
    for _ in range(steps):
        goal = target(rho)
        left = goal - rho
        if float(np.max(np.abs(left))) < tolerance:
            return goal, True
        tried, left_by = [*tried[-MEMORY:], rho], [*left_by[-MEMORY:], left]
        step = DAMPING * left
        if len(tried) > 1:
            d_tried = np.diff(np.array(tried), axis=0).T
            d_left = np.diff(np.array(left_by), axis=0).T
            blend = np.linalg.lstsq(d_left, left, rcond=None)[0]
            step -= (d_tried + DAMPING * d_left) @ blend
        rho = np.clip(rho + step, 0.0, 1.0)
    return rho, False


def _receive_share_in_trial(i: int, mu: Floats, rho: Floats, p: float, duration: float) -> float:
    """Expected share of VM i's ticks that find a message, following its inbox tick by tick."""
    ticks = min(MAX_TICKS, max(1, math.ceil(mu[i] * duration - 1e-9)))
    kernel = _arrival_pmf(i, mu, rho, p)
    if len(kernel) == 1:  # nothing ever arrives: every tick finds the inbox empty
        return 0.0
    size = min(ticks, MAX_QUEUE) + len(kernel) + 1
    queue, change = np.zeros(size), np.empty(size)
    queue[0] = 1.0  # the inbox before the first tick: empty, nothing arrived yet
    empty = 1.0  # tick 0 always finds it empty
    # A tick takes one message: after the arrivals of one period (waiting), length k
    # becomes k - 1, which is waiting shifted by one, with 0 staying 0 and lengths beyond
    # the last lumped into it. A view and two in-place sums a tick, add.reduce rather
    # than the slower sum(), and a look at the change only every SETTLE_EVERY ticks: the
    # chain may run for thousands of ticks.
    add, top, overflow = np.add.reduce, size - 1, slice(size + 1, None)
    for tick in range(1, ticks):
        waiting = np.convolve(queue, kernel)  # arrivals during one period
        empty += waiting[0]
        following = waiting[1 : size + 1]
        following[0] += waiting[0]
        following[top] += add(waiting[overflow])
        if tick % SETTLE_EVERY:
            queue = following
            continue
        np.subtract(following, queue, out=change)
        queue = following
        if float(add(np.abs(change, out=change))) < SETTLED:
            # The chain is at its limit: every remaining tick finds it empty as this one did.
            empty += waiting[0] * (ticks - 1 - tick)
            break
    return float(1.0 - empty / ticks)


def _arrival_pmf(i: int, mu: Floats, rho: Floats, p: float) -> Floats:
    """How many messages reach VM i between two of its ticks.

    Sender j ticks mu_j / mu_i times per period (the floor or the ceiling, in the
    right proportion) and each tick sends to i with probability (1 - rho_j) p.
    """
    pmf = np.ones(1)
    for j in range(len(mu)):
        if j == i:
            continue
        per_period = mu[j] / mu[i]
        low = math.floor(per_period)
        high_share = per_period - low
        chance = min(1.0, max(0.0, (1.0 - rho[j]) * p))
        sender = (1 - high_share) * _binomial(low, chance)
        sender = np.concatenate((sender, [0.0])) + high_share * _binomial(low + 1, chance)
        pmf = np.convolve(pmf, sender)
    trimmed: Floats = np.trim_zeros(pmf, "b") if pmf.any() else np.ones(1)
    return trimmed


def _binomial(n: int, chance: float) -> Floats:
    k = np.arange(n + 1)
    coefficients = np.array([math.comb(n, int(x)) for x in k], dtype=np.float64)
    pmf: Floats = coefficients * chance**k * (1.0 - chance) ** (n - k)
    return pmf


def _validated(rates: Sequence[float], event_range: int, duration: float | None) -> Floats:
    if not rates:
        raise ModelError("no rates: the model needs one rate per VM")
    mu = np.array(rates, dtype=np.float64)
    bad = [r for r in rates if not (math.isfinite(r) and r > 0)]
    if bad:
        raise ModelError(f"rates must be finite and > 0, got {bad[0]!r} in {list(rates)}")
    if event_range < 1:
        raise ModelError(f"event_range must be >= 1, got {event_range}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ModelError(f"duration must be > 0 simulated seconds, got {duration!r}")
    return mu


def critical_ratio(event_range: int, vms: int, slow: int) -> float:
    """The slowest / fastest ratio below which the slow VMs' queues grow, by bisection
    (`slow` VMs at the low rate, the others at 1); 0 when they never grow."""
    if vms < 2:
        return 0.0

    def grows(ratio: float) -> bool:
        rates = [ratio] * slow + [1.0] * (vms - slow)
        return predict(rates, event_range)[0].queue_grows

    low, high = 1e-6, 1.0
    if not grows(low):
        return 0.0
    if grows(high):
        return 1.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if grows(middle) else (low, middle)
    return low
