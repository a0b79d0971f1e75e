"""The hosted unsubscribe page over real HTTP (R1, R3, R35).

GET shows a confirm page and changes nothing; POST, form-encoded or multipart,
with no cookie or login, opts the person out at once, answers 200 without a
redirect, is idempotent, and leaves a pending CRM write-back and history.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services import events
from optout.services.suppression import optouts, writebacks
from optout.web.unsubscribe import mask_email
from tests.factories import World
from tests.web.conftest import KEYS, Web, web_client

Committed = Callable[[], AbstractContextManager[World]]
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
NEW_KEY = "rotated-in-secret-key-987654321"


def _opted_out(engine: Engine, world: World, email: str) -> bool:
    with engine.connect() as db:
        return any(
            row["kind"] == "opt_out" and row["action"] == "added"
            for row in optouts.ledger(db, workspace_id=world.ws, email=email)
        )


def _status(engine: Engine, sequence_id: int, person_id: int) -> str | None:
    e = t.enrollments
    with engine.connect() as db:
        return db.scalar(
            sa.select(e.c.status)
            .where(e.c.sequence_id == sequence_id, e.c.person_id == person_id)
            .order_by(e.c.id.desc())
            .limit(1)
        )


def _email_statuses(engine: Engine, person_id: int) -> list[str]:
    o = t.outbound_emails
    with engine.connect() as db:
        return list(db.scalars(sa.select(o.c.status).where(o.c.person_id == person_id)))


def _assert_private_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-robots-tag"] == "noindex"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers


def test_R3_get_shows_confirm_page_and_changes_nothing(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
        outbound = world.sequence()
        world.enroll(outbound, [anna])
    link = web.link(world, anna, "anna@acme.com")

    for _ in range(3):  # scanners and previews may fetch it many times
        page = web.http.get(link)
        assert page.status_code == 200
        _assert_private_page(page)

    assert world.workspace.name in page.text
    assert "a***@acme.com" in page.text
    assert "anna@acme.com" not in page.text
    assert '<form method="post">' in page.text
    assert ">Unsubscribe</button>" in page.text
    assert "<script" not in page.text
    assert not _opted_out(web.engine, world, "anna@acme.com")
    assert _status(web.engine, outbound, anna) == "not_started"
    assert _email_statuses(web.engine, anna) == ["queued"]
    with web.engine.connect() as db:
        assert writebacks.pending_writebacks(db, workspace_id=world.ws) == []
        kinds = {e.kind for e in events.history(db, workspace_id=world.ws, person_id=anna)}
    assert not kinds & {"opted_out", "enrollment_ended", "email_cancelled"}


def test_R3_one_click_post_opts_out_without_redirect(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")

    # What a mail provider sends for RFC 8058: form-encoded, no cookie, no login.
    response = web.http.post(web.link(world, anna, "anna@acme.com"), data=ONE_CLICK)

    assert response.status_code == 200
    _assert_private_page(response)
    assert "You are unsubscribed" in response.text
    assert "a***@acme.com" in response.text
    with web.engine.connect() as db:
        [entry] = optouts.ledger(db, workspace_id=world.ws, email="anna@acme.com")
    assert entry["action"] == "added"
    assert entry["actor"] == "recipient"
    assert entry["channel"] == "unsubscribe_link"
    assert entry["reason"] == "one-click unsubscribe"
    assert entry["evidence"] == "RFC 8058 one-click POST"


def test_R3_multipart_post_works(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")

    request = web.http.build_request(
        "POST",
        web.link(world, anna, "anna@acme.com"),
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    response = web.http.send(request)

    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert _opted_out(web.engine, world, "anna@acme.com")


def test_R3_post_is_idempotent(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
    link = web.link(world, anna, "anna@acme.com")

    first = web.http.post(link, data=ONE_CLICK)
    second = web.http.post(link)  # the page's own button: an empty form
    third = web.http.post(link, data=ONE_CLICK)

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert first.text == second.text == third.text
    with web.engine.connect() as db:
        ledger = optouts.ledger(db, workspace_id=world.ws, email="anna@acme.com")
        history = events.history(db, workspace_id=world.ws, person_id=anna)
        pending = writebacks.pending_writebacks(db, workspace_id=world.ws)
    assert [row["action"] for row in ledger] == ["added", "repeated", "repeated"]
    assert ledger[1]["evidence"] == "unsubscribe page POST"
    assert [e.kind for e in history].count("opted_out") == 1
    assert len(pending) == 1
    # Once unsubscribed, the link's page says so and offers no button.
    page = web.http.get(link)
    assert page.status_code == 200
    assert "already unsubscribed" in page.text
    assert "<form" not in page.text


def test_R3_simultaneous_first_clicks_all_succeed(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
    link = web.link(world, anna, "anna@acme.com")

    # A mail provider's one-click and the person's own click can arrive together.
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(
            pool.map(lambda _: web.http.post(link, data=ONE_CLICK).status_code, range(6))
        )

    assert statuses == [200] * 6
    with web.engine.connect() as db:
        ledger = optouts.ledger(db, workspace_id=world.ws, email="anna@acme.com")
        assert len(writebacks.pending_writebacks(db, workspace_id=world.ws)) == 1
    assert sorted(row["action"] for row in ledger) == ["added"] + ["repeated"] * 5


def test_R3_token_cannot_be_forged_or_replayed_into_another_person(
    web: Web, committed: Committed
) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
        bob = world.person("bob@acme.com", company="acme.com")
    with committed() as other:
        carla = other.person("carla@globex.io", company="globex.io")
    link = web.link(world, anna, "anna@acme.com")
    token = link.removeprefix("/u/")

    # Altered, truncated or foreign tokens: a 404 page with a clear sentence, nothing changes.
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    with web_client(web.engine, keys=("somebody-elses-secret-key-42",)) as foreign:
        forged = foreign.link(world, bob, "bob@acme.com")
    for bad in (f"/u/{flipped}", f"/u/{token[:-6]}", forged, "/u/" + "A" * 600):
        for method in ("GET", "POST"):
            response = web.http.request(method, bad, data=ONE_CLICK if method == "POST" else None)
            assert response.status_code == 404
            _assert_private_page(response)
            assert "This unsubscribe link is not valid" in response.text

    # Anna's genuine link opts out Anna, and only Anna.
    assert web.http.post(link, data=ONE_CLICK).status_code == 200
    assert _opted_out(web.engine, world, "anna@acme.com")
    assert not _opted_out(web.engine, world, "bob@acme.com")

    # A validly signed token cannot reach a person of another workspace.
    cross = web.tokens.issue(workspace_id=world.ws, person_id=carla, email="carla@globex.io")
    response = web.http.post(f"/u/{cross}", data=ONE_CLICK)
    assert response.status_code == 404
    assert "no longer on file" in response.text
    assert not _opted_out(web.engine, other, "carla@globex.io")

    # Bob's address changes (say, a CRM sync); his old link then opts out nobody.
    bobs_link = web.link(world, bob, "bob@acme.com")
    with web.engine.begin() as db:
        p = t.people
        db.execute(
            p.update().where(p.c.id == bob).values(email="robert@acme.com", email_domain="acme.com")
        )
    for method in ("GET", "POST"):
        response = web.http.request(method, bobs_link)
        assert response.status_code == 409
        assert "no longer on file for this contact" in response.text
    assert not _opted_out(web.engine, world, "robert@acme.com")
    assert not _opted_out(web.engine, world, "bob@acme.com")


def test_R3_old_links_work_after_key_rotation(engine: Engine, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
    with web_client(engine, keys=KEYS) as before:
        old_link = before.link(world, anna, "anna@acme.com")

    with web_client(engine, keys=(NEW_KEY, *KEYS)) as after:
        assert after.http.get(old_link).status_code == 200
        response = after.http.post(old_link, data=ONE_CLICK)

    assert response.status_code == 200
    assert _opted_out(engine, world, "anna@acme.com")


def test_R3_links_of_keys_rotated_out_are_refused(engine: Engine, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
    with web_client(engine, keys=KEYS) as before:
        old_link = before.link(world, anna, "anna@acme.com")

    with web_client(engine, keys=(NEW_KEY,)) as after:  # the old key is no longer kept
        for method in ("GET", "POST"):
            response = after.http.request(
                method, old_link, data=ONE_CLICK if method == "POST" else None
            )
            assert response.status_code == 404
            assert "This unsubscribe link is not valid" in response.text
    assert not _opted_out(engine, world, "anna@acme.com")


def test_R3_a_link_acts_in_its_own_workspace_only(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
    with committed() as other:  # the same address, a contact of another customer
        annas_twin = other.person("anna@acme.com", company="acme.com")
    link = web.link(world, anna, "anna@acme.com")
    # Claims of another workspace or another person cannot be made from a genuine token.
    token = link.removeprefix("/u/")
    claims = web.tokens.read(token)
    assert (claims.workspace_id, claims.person_id) == (world.ws, anna)
    moved = web.tokens.issue(workspace_id=other.ws, person_id=anna, email="anna@acme.com")
    assert web.http.post(f"/u/{moved}", data=ONE_CLICK).status_code == 404

    assert web.http.post(link, data=ONE_CLICK).status_code == 200
    assert _opted_out(web.engine, world, "anna@acme.com")
    assert not _opted_out(web.engine, other, "anna@acme.com")
    assert web.http.get(web.link(other, annas_twin, "anna@acme.com")).status_code == 200


def test_R3_a_link_with_one_character_changed_opts_out_nobody(
    web: Web, committed: Committed
) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
    token = web.link(world, anna, "anna@acme.com").removeprefix("/u/")
    same_bytes = token.replace("-", "+").replace("_", "%2F")  # a lenient decoder's twins
    altered = [
        token[:n] + ("B" if token[n] == "A" else "A") + token[n + 1 :]
        for n in range(0, len(token), 7)
    ]
    for bad in [*altered, token[:-1], token + "A", token + "%3D"]:
        response = web.http.post(f"/u/{bad}", data=ONE_CLICK)
        assert response.status_code == 404, bad
    if same_bytes != token:
        assert web.http.post(f"/u/{same_bytes}", data=ONE_CLICK).status_code == 404
    assert not _opted_out(web.engine, world, "anna@acme.com")
    assert web.http.post(f"/u/{token}", data=ONE_CLICK).status_code == 200


def test_R1_unsubscribe_ends_enrollments_at_once(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
        bob = world.person("bob@acme.com", company="acme.com")
        first, second = world.sequence("First"), world.sequence("Second")
        world.enroll(first, [anna, bob])
        world.enroll(second, [anna])
    assert _email_statuses(web.engine, anna) == ["queued", "queued"]

    assert web.http.post(web.link(world, anna, "anna@acme.com"), data=ONE_CLICK).status_code == 200

    assert _status(web.engine, first, anna) == "opted_out"
    assert _status(web.engine, second, anna) == "opted_out"
    assert _email_statuses(web.engine, anna) == ["cancelled", "cancelled"]
    assert _status(web.engine, first, bob) == "not_started"  # colleagues continue


def test_R3_unsubscribe_records_pending_crm_writeback(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
        world.person("ANNA@acme.com", company="acme.com")  # CRM duplicate (Lead and Contact)

    web.http.post(web.link(world, anna, "anna@acme.com"), data=ONE_CLICK)
    web.http.post(web.link(world, anna, "anna@acme.com"), data=ONE_CLICK)

    with web.engine.connect() as db:
        [writeback] = writebacks.pending_writebacks(db, workspace_id=world.ws)
    assert (writeback.email, writeback.field, writeback.value) == (
        "anna@acme.com",
        "email_opt_out",
        "true",
    )
    assert (writeback.status, writeback.attempts, writeback.last_error) == ("pending", 0, "")
    assert writeback.created_at == writeback.updated_at


def test_R35_unsubscribe_is_in_history(web: Web, committed: Committed) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com")
        outbound = world.sequence()
        world.enroll(outbound, [anna])

    web.http.post(web.link(world, anna, "anna@acme.com"), data=ONE_CLICK)

    with web.engine.connect() as db:
        history = events.history(db, workspace_id=world.ws, person_id=anna)
    opted_out = next(e for e in history if e.kind == "opted_out")
    assert opted_out.actor == "recipient"
    assert opted_out.detail["channel"] == "unsubscribe_link"
    assert opted_out.detail["reason"] == "one-click unsubscribe"
    ended = next(e for e in history if e.kind == "enrollment_ended")
    assert (ended.actor, ended.rule, ended.sequence_id) == ("recipient", "opt_out", outbound)
    assert ended.detail["status"] == "opted_out"
    cancelled = next(e for e in history if e.kind == "email_cancelled")
    assert cancelled.actor == "recipient"
    assert [e.id for e in history] == sorted(e.id for e in history)


def test_healthz(web: Web) -> None:
    response = web.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_mask_email_keeps_enough_to_recognise() -> None:
    assert mask_email("jane@acme.com") == "j***@acme.com"
    assert mask_email("j@acme.com") == "j***@acme.com"
