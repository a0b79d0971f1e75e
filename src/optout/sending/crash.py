"""Named points of the send path where a test can make the worker die (SIGKILL).

`OPTOUT_CRASH_POINT=<point>` in the environment makes the process kill itself the
first time it reaches that point, as a power cut or an OOM kill would: no cleanup,
no rollback, no flushing; `<point>@<n>`, the n-th time (a later email of the batch).
Unset (always, in production), `reached` only reads the environment and returns.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "OPTOUT_CRASH_POINT"

POINTS = (
    "after_claim",  # the batch is claimed (committed), nothing composed
    "after_compose",  # the message is built, its hand-over not yet recorded
    "after_handover",  # the hand-over is recorded, nothing sent to the server yet
    "after_answer",  # the server answered 250, the answer not yet recorded
    "before_mark_sent",  # every answer of the batch recorded, the batch not yet marked sent
    "after_mark_sent",  # the batch is marked sent (committed)
)


_times: dict[str, int] = {}  # how often each named point was reached in this process


def reached(point: str) -> None:
    """Die here with SIGKILL when the environment names this point (and this time)."""
    wanted = os.environ.get(ENVIRONMENT_VARIABLE)
    if wanted is None:
        return
    name, _, nth = wanted.partition("@")
    if name != point:
        return
    _times[point] = _times.get(point, 0) + 1
    if _times[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
