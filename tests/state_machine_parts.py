"""A hypothesis state machine test split into parts, so that pytest-xdist can run the parts
on several workers at once instead of one long test on one.

In a random run every part makes its own random draws. A run with fixed draws would give
every part the same ones: under `--hypothesis-seed` (as `make soak SOAK_SEED=N` replays a
soak) and in CI, where hypothesis derandomizes (its "ci" profile) from the source of the
state machine runner, which is the same for every part. There each part gets a seed of
its own, from the run's seed and its number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import seed, settings

Machine = TypeVar("Machine")


def runs_of_part(runs: int, parts: int, part: int) -> int:
    """Part `part`'s share (1 to `parts`) of `runs`: the shares add up to `runs`, the first
    parts taking one more each when they do not divide evenly; every part runs at least once."""
    return max(1, runs // parts + (1 if part <= runs % parts else 0))


def seeded_part(
    factory: Callable[[], Machine], request: pytest.FixtureRequest, part: int
) -> Callable[[], Machine]:
    """`factory`, with a seed of part `part`'s own when the run's draws are fixed."""
    forced = request.config.getoption("--hypothesis-seed")
    if forced is None and not settings.default.derandomize:
        return factory

    def machine() -> Machine:  # a new function: `seed` marks the one it is given
        return factory()

    fixed = forced if forced is not None else "derandomized"
    return seed(f"{fixed}, part {part}")(machine)
