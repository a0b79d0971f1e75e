"""The cyclic garbage collector held off while a command starts.

Starting a command is mostly importing modules (Typer, SQLAlchemy, the command's own),
which allocates hundreds of thousands of objects and none of them garbage: each time the
youngest generation fills, the collector walks them, about a tenth of `optout explain`'s
CPU time. `held()` (around the whole command, `optout.cli.main`) turns the collector off;
`release()`, once the command is loaded and before it runs (`OptoutGroup`), moves
everything start-up made into the permanent generation (`gc.freeze`: later collections
skip it) and turns the collector back on for the command's own work, so a long-running
command (`serve`, `worker`) collects as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_held = False
_was_enabled = True


@contextmanager
def held() -> Iterator[None]:
    """The collector off until `release()`, or until the block ends; then as it was."""
    global _held, _was_enabled
    _was_enabled = gc.isenabled()
    gc.disable()
    _held = True
    try:
        yield
    finally:
        if _held:
            _held = False
            if _was_enabled:
                gc.enable()


def release() -> None:
    """The command is loaded: keep what start-up built out of later collections and
    collect again. Does nothing unless `held()` turned the collector off (a test runner
    invoking the app directly keeps its own collector settings)."""
    global _held
    if not _held:
        return
    _held = False
    gc.freeze()
    if _was_enabled:
        gc.enable()
