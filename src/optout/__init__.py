"""optout: decide, explain and enforce who may be enrolled in or emailed by a sequence."""

__version__ = "0.1.0"
