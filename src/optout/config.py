"""Settings read from the environment, once, at the edge."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("var") / "optout.sqlite3"


@dataclass(frozen=True)
class Settings:
    database_url: str

    @classmethod
    def from_env(cls) -> Settings:
        url = os.environ.get("OPTOUT_DATABASE_URL", "").strip()
        if not url:
            url = f"sqlite:///{DEFAULT_SQLITE_PATH}"
        return cls(database_url=url)
