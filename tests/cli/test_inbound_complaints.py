"""A feedback-loop report through `optout inbound process` (R36): the CLI reads the link
keys, so a redacted report finds its person by the CFBL-Feedback-ID alone."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from optout.db import tables as t
from tests.cli.conftest import Cli
from tests.inbound.helpers import KEYS, sent_world
from tests.inbound.test_complaints import FOREIGN_ID, report


def test_R36_process_a_redacted_complaint_report_file(cli: Cli, tmp_path: Path) -> None:
    with cli.seed() as world:
        s = sent_world(world)
        raw = report(s, "cfbl_redacted_headers_only.eml", "ben", message_id=FOREIGN_ID)
    path = tmp_path / "report.eml"
    path.write_bytes(raw)
    done = cli.run("inbound", "process", str(path), "--json", OPTOUT_SECRET_KEYS=",".join(KEYS))
    assert done.exit_code == 0, done.stderr
    assert '"outcome": "complained"' in done.stdout
    assert '"match_by": "cfbl_feedback_id"' in done.stdout
    x = t.suppressions
    assert cli.scalar(sa.select(x.c.email).where(x.c.kind == "complaint")) == "ben@acme.com"
