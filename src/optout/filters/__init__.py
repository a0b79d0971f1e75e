"""The filter language: a typed AST, one field registry, one operator table,
a SQL compiler and a Python evaluator that agree, and a text syntax.

Pure: nothing here opens a database session, serves HTTP or calls out.
"""

from optout.filters.ast import All, AnyOf, Condition, Node, Not, from_json, to_json
from optout.filters.evaluate import Subject, Trace, evaluate
from optout.filters.text import parse, to_text
from optout.filters.validate import Level, validate

__all__ = [
    "All",
    "AnyOf",
    "Condition",
    "Level",
    "Node",
    "Not",
    "Subject",
    "Trace",
    "evaluate",
    "from_json",
    "parse",
    "to_json",
    "to_text",
    "validate",
]
