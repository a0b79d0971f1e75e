"""Real bounces from real mail servers (R7): GNU Mailman's corpus through the inbound path.

Every address the 117 messages name anywhere (failed recipients, list admins, senders,
addresses quoted in returned copies: 513 of them) is a person who was sent step 1, so
a reader that takes the wrong address marks a real person. Each message is processed
by `process_message`, as `optout inbound process` and the SMTP listener do, inside a
savepoint rolled back afterwards, so each is judged alone. What it changed is read back
from the database: hard bounces from the suppressions, soft ones from the counters,
delay warnings and refusals of our own side from the events.

The corpus and its expectations are flufl.bounce's (`corpus/flufl_bounce/`); where its
permanent/temporary verdict differs from our policy, `docs/bounces.md` lists the case
and why, and this test holds the two lists equal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.inbound import Kind, classify, parse_message, process_message
from optout.inbound.newtext import new_text
from optout.normalize import normalize_email
from tests.factories import World
from tests.inbound.helpers import CORPUS, OPTIONS, TWO_EMAILS, send_due

FLUFL = CORPUS / "flufl_bounce"
EXPECTED: dict[str, dict[str, list[str]]] = json.loads((FLUFL / "expected.json").read_text())
DOCS = Path(__file__).resolve().parents[2] / "docs" / "bounces.md"
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?"
)


@dataclass
class Tally:
    caught: list[tuple[str, str]] = field(default_factory=list)
    missed: list[tuple[str, str]] = field(default_factory=list)
    wrong: list[tuple[str, str]] = field(default_factory=list)
    unsubscribes: list[str] = field(default_factory=list)
    # (file, address, the corpus's verdict, ours)
    disagreements: set[tuple[str, str, str, str]] = field(default_factory=set)


def _canonical(address: str) -> str | None:
    try:
        return normalize_email(address).address
    except InvalidInput:
        return None


def _everyone_named() -> list[str]:
    """Every address in the messages, and those the corpus expects (some notices name
    only a local part, like AOL's screen names)."""
    found = {a for want in EXPECTED.values() for a in want["permanent"] + want["temporary"]}
    for path in FLUFL.glob("*.txt"):
        found.update(m.group(0) for m in _ADDRESS.finditer(path.read_bytes().decode("latin-1")))
    return sorted({c for c in map(_canonical, found) if c})


def _what_changed(db: Connection, ws: int, since: int) -> dict[str, str]:
    """Address to what the message did to it: hard, soft, delayed or sending_side."""
    s, sb, e = t.suppressions, t.inbound_soft_bounces, t.events
    done: dict[str, str] = {}
    for (address,) in db.execute(sa.select(sb.c.email).where(sb.c.workspace_id == ws)):
        done[address] = "soft"
    kinds = {"delivery_delayed": "delayed", "sending_refused": "sending_side"}
    rows = db.execute(
        sa.select(e.c.kind, e.c.detail).where(
            e.c.workspace_id == ws, e.c.id > since, e.c.kind.in_(kinds)
        )
    )
    for kind, detail in rows:
        done.setdefault(str(detail["email"]).lower(), kinds[kind])
    hard = sa.select(s.c.email).where(s.c.workspace_id == ws, s.c.kind == "bounce")
    for (address,) in db.execute(hard):
        done[address] = "hard"
    return done


def _run_corpus(world: World) -> Tally:
    db = world.db
    p = t.people
    rows = [  # written directly: 513 people, no company, nothing else to derive
        {"workspace_id": world.ws, "email": a, "email_domain": a.split("@")[1]}
        for a in _everyone_named()
    ]
    db.execute(p.insert().values(created_at=world.now, updated_at=world.now), rows)
    people = list(db.scalars(sa.select(p.c.id).where(p.c.workspace_id == world.ws)))
    world.enroll(world.sequence("Outbound", steps=TWO_EMAILS), people)
    assert len(send_due(db, world.now)) == len(people)
    last_event = db.scalar(sa.select(sa.func.max(t.events.c.id))) or 0
    tally = Tally()
    for path in sorted(FLUFL.glob("*.txt")):
        want = EXPECTED.get(path.name, {"permanent": [], "temporary": []})
        wanted = {_canonical(a): "permanent" for a in want["permanent"]}
        wanted |= {_canonical(a): "temporary" for a in want["temporary"]}
        savepoint = db.begin_nested()
        result = process_message(
            db,
            raw=path.read_bytes(),
            now=world.now + timedelta(hours=1),
            source=f"corpus {path.name}",
            workspace_id=world.ws,
            options=OPTIONS,
        )
        done = _what_changed(db, world.ws, last_event)
        savepoint.rollback()
        if result.kind == "unsubscribe":
            tally.unsubscribes.append(path.name)
        for address, verdict in wanted.items():
            assert address is not None
            ours = done.get(address)
            if ours is None or ours == "sending_side":
                tally.missed.append((path.name, address))
                continue
            tally.caught.append((path.name, address))
            if (verdict == "permanent") != (ours == "hard"):
                tally.disagreements.add((path.name, address, verdict, ours))
        tally.wrong += [(path.name, a) for a, how in done.items() if a not in wanted]
    return tally


def _documented() -> set[tuple[str, str, str, str]]:
    """The disagreements table of docs/bounces.md: | file | address | corpus | ours | why |."""
    rows = set()
    for line in DOCS.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].endswith(".txt"):
            rows.add((cells[0], cells[1], cells[2], cells[3]))
    return rows


def test_R7_real_bounces_from_real_servers_are_caught(world: World) -> None:
    tally = _run_corpus(world)
    print(  # the figures, for whoever runs this with -s
        f"caught {len(tally.caught)} of 133, missed {tally.missed}, wrong {tally.wrong}, "
        f"unsubscribes {tally.unsubscribes}, hard/soft disagreements {len(tally.disagreements)}"
    )
    assert len(tally.caught) + len(tally.missed) == 133
    assert len(tally.caught) >= 130, tally.missed
    assert tally.wrong == []
    assert tally.unsubscribes == []
    assert tally.disagreements == _documented()


def test_R7_a_returned_copy_of_our_headers_is_never_read_as_the_senders_words() -> None:
    """Our emails carry List-Unsubscribe; a notice that returns our headers must not be
    read as someone asking to unsubscribe, even by the rules after the bounce readers."""
    returned = 0
    for path in sorted(FLUFL.glob("*.txt")):
        parsed = parse_message(path.read_bytes())
        if re.search(r"^list-unsubscribe:", path.read_text("latin-1"), re.I | re.M):
            returned += 1
            assert "list-unsubscribe" not in new_text(parsed).text.lower(), path.name
        assert classify(parsed).kind is not Kind.UNSUBSCRIBE, path.name
    assert returned >= 10  # the corpus does return list headers
