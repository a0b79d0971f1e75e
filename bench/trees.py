"""Which code a benchmark runs: the installed optout, or an unpacked commit's `src` put
first on the `PYTHONPATH` of the processes it starts (`--tree LABEL=DIR`, repeatable), so
that two commits can be measured interleaved on the same data."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tree:
    """A label and its `src` folder; None: the installed optout."""

    label: str
    src: Path | None = None


def tree_of(text: str) -> Tree:
    """`LABEL=DIR` of an unpacked commit, as `--tree` takes it."""
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"--tree {text!r}: write it as LABEL=DIR")
    src = Path(folder).resolve() / "src"
    if not (src / "optout").is_dir():
        raise argparse.ArgumentTypeError(f"--tree {text!r}: no src/optout in {folder}")
    return Tree(label, src)
