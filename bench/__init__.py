"""The benchmark of optout's foundation: a generated workspace of realistic shape (people,
companies, deals, suppressions, a thousand exclusions) and timings of the impact preview,
the eligible set and explain, each against a per-row Python loop and hand-written SQL.

`python -m bench.run --help`; results are written up in BENCHMARKS.md.
"""
