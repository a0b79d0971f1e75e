"""Who may call what (R2), one error body for every bad request (R34), and workspaces that
never see or touch each other's data, over every route the OpenAPI description lists."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.jobs import store
from optout.services.access import accounts, invitations
from optout.services.access.accounts import Role
from optout.services.mailboxes import sender_mailboxes
from optout.services.suppression import optouts
from tests.factories import World
from tests.web.api.conftest import API, Api, Keys, error_of

Committed = Callable[[], AbstractContextManager[World]]


def _small_world(world: World) -> dict[str, Any]:
    anna = world.person("anna@acme.com", company="acme.com", title="CTO")
    world.person("bo@globex.io", company="globex.io", title="Intern")
    outbound = world.sequence()
    world.enroll(outbound, [anna])
    return {"anna": anna, "outbound": outbound}


# --- R34: one error body --------------------------------------------------------------------


def test_R34_malformed_email_gets_the_one_error_body(api: Api, committed: Committed) -> None:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member)

    created = http.post("/people", json={"email": "not-an-address"})

    assert created.status_code == 422
    error = error_of(created)
    assert error["code"] == "invalid_input"
    assert "not-an-address" in error["message"]
    with api.engine.connect() as db:
        assert not db.scalar(sa.select(sa.func.count()).where(t.people.c.workspace_id == world.ws))


def test_R34_bad_filter_names_its_position(api: Api, committed: Committed) -> None:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member)

    saved = http.post(
        "/exclusions",
        json={"name": "Broken", "level": "people", "filter": "person.title = cto and"},
    )
    unknown = http.post(
        "/exclusions/preview", json={"level": "people", "filter": 'person.titel = "cto"'}
    )
    wrong_level = http.post(
        "/exclusions", json={"name": "X", "level": "company", "filter": 'person.title = "cto"'}
    )

    assert saved.status_code == 422
    error = error_of(saved)
    assert error["code"] == "invalid_filter"
    assert re.fullmatch(r"at column \d+", error["where"])
    assert unknown.status_code == 422
    assert "person.titel" in error_of(unknown)["message"]
    assert wrong_level.status_code == 422
    assert error_of(wrong_level)["code"] == "invalid_filter"
    with api.engine.connect() as db:
        x = t.exclusions
        assert not db.scalar(sa.select(sa.func.count()).where(x.c.workspace_id == world.ws))


def test_R34_unknown_field_and_wrong_type_are_named(api: Api, committed: Committed) -> None:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member)

    extra = http.post("/optouts", json={"email": "a@acme.com", "reson": "typo"})
    wrong_type = http.post("/companies", json={"domain": ["acme.com"]})
    bad_query = http.get("/people", params={"limit": "lots"})
    not_json = http.post(
        "/optouts", content=b"{email:", headers={"Content-Type": "application/json"}
    )
    no_route = http.get("/nothing-here")

    assert extra.status_code == 422
    assert error_of(extra)["where"] == "body.reson"
    assert "unknown field" in error_of(extra)["message"]
    assert wrong_type.status_code == 422
    assert error_of(wrong_type)["where"] == "body.domain"
    assert bad_query.status_code == 422
    assert error_of(bad_query)["where"] == "query.limit"
    assert not_json.status_code == 422
    assert error_of(not_json)["code"] == "invalid_input"
    assert no_route.status_code == 404
    assert error_of(no_route)["code"] == "not_found"
    with api.engine.connect() as db:
        assert optouts.ledger(db, workspace_id=world.ws, email="a@acme.com") == []


def test_R34_a_malformed_domain_is_refused(api: Api, committed: Committed) -> None:
    with committed() as world:
        keys = api.keys(world)

    answer = api.client(keys.member).post("/companies", json={"domain": "not a domain!"})

    assert answer.status_code == 422
    assert error_of(answer)["code"] == "invalid_input"


def test_R34_text_no_database_can_store_is_refused_on_both(api: Api, committed: Committed) -> None:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member, **{"Content-Type": "application/json"})

    nul = http.post("/personas", content=b'{"name": "a\\u0000b"}')
    surrogate = http.post(
        "/people", content=b'{"email": "a@acme.com", "fields": {"note": "\\ud800"}}'
    )
    surrogate_key = http.post(
        "/people", content=b'{"email": "a@acme.com", "fields": {"\\udfff": [1]}}'
    )

    for answer in (nul, surrogate, surrogate_key):
        assert answer.status_code == 422, answer.text
        assert error_of(answer)["code"] == "invalid_input"
    assert "NUL" in error_of(nul)["message"]
    assert "surrogate" in error_of(surrogate)["message"]
    with api.engine.connect() as db:
        for table in (t.people, t.personas):
            count = sa.select(sa.func.count()).where(table.c.workspace_id == world.ws)
            assert db.scalar(count) == 0


# --- authentication and roles ----------------------------------------------------------------


def test_no_key_or_a_bad_key_is_401(api: Api, committed: Committed) -> None:
    with committed() as world:
        keys = api.keys(world)
        accounts.revoke_api_key(
            world.db,
            principal=accounts.Principal(world.ws, Role.ADMIN, "test"),
            key_id=keys.member_id,
            now=world.now,
        )
    prefix = keys.admin.rsplit("_", 1)[0]
    attempts = {
        "none": api.client().get("/people"),
        "not bearer": api.client(Authorization=f"Basic {keys.admin}").get("/people"),
        "garbage": api.client("garbage").get("/people"),
        "wrong secret": api.client(f"{prefix}_wrong-secret").get("/people"),
        "revoked": api.client(keys.member).get("/people"),
    }

    for what, answer in attempts.items():
        assert answer.status_code == 401, what
        assert answer.headers["www-authenticate"] == "Bearer", what
        assert error_of(answer)["code"] == "unauthorized", what
    assert api.client(keys.admin).get("/people").status_code == 200


def test_R2_a_member_may_opt_out_enroll_unenroll_and_edit_exclusions_and_audiences(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        made = _small_world(world)
        keys = api.keys(world)
    http = api.client(keys.member)

    opted = http.post("/optouts", json={"email": "anna@acme.com", "reason": "asked by phone"})
    rule = http.post(
        "/exclusions",
        json={
            "name": "Interns",
            "level": "people",
            "filter": 'person.title contains "intern"',
            "confirm": True,
        },
    )
    edited = http.patch(f"/exclusions/{rule.json()['exclusion']['id']}", json={"enabled": False})
    audience = http.post("/audiences", json={"name": "Everyone"})
    switched = http.put(
        f"/audiences/{audience.json()['id']}/switched-off/{rule.json()['exclusion']['id']}"
    )
    enrolled = http.post(
        "/enrollments", json={"sequence_id": made["outbound"], "emails": ["bo@globex.io"]}
    )
    unenrolled = http.post(
        "/enrollments/unenroll", json={"sequence_id": made["outbound"], "emails": ["bo@globex.io"]}
    )

    assert [r.status_code for r in (opted, rule, edited, audience, switched)] == [
        200,
        201,
        200,
        201,
        200,
    ]
    assert enrolled.json() == {"requested": 1, "enrolled": 1, "blocked": 0}
    assert unenrolled.json() == {"enrollments_ended": 1, "emails_cancelled": 1}
    with api.engine.connect() as db:
        ledger = optouts.ledger(db, workspace_id=world.ws, email="anna@acme.com")
    assert [(row["actor"], row["channel"], row["reason"]) for row in ledger] == [
        ("api-key:member key", "api", "asked by phone")
    ]


def test_a_member_gets_403_for_admin_things(api: Api, committed: Committed) -> None:
    with committed() as world:
        world.ruleset("Careful")
        keys = api.keys(world)
        optouts.opt_out(
            world.db,
            workspace_id=world.ws,
            email="gone@acme.com",
            actor="t",
            channel="manual",
            now=world.now,
        )
    member, admin = api.client(keys.member), api.client(keys.admin)
    ruleset_id = member.get("/rulesets").json()["items"][0]["id"]
    attempts = {
        "create ruleset": member.post("/rulesets", json={"name": "Mine"}),
        "edit ruleset": member.patch(f"/rulesets/{ruleset_id}", json={"reenroll_cooldown_days": 1}),
        "list members": member.get("/members"),
        "add member": member.post("/members", json={"email": "x@acme.com", "role": "admin"}),
        "remove member": member.delete("/members/1"),
        "list keys": member.get("/api-keys"),
        "create key": member.post("/api-keys", json={"name": "mine", "role": "admin"}),
        "revoke key": member.delete(f"/api-keys/{keys.admin_id}"),
        "clear opt-out": member.post(
            "/optouts/clear", json={"email": "gone@acme.com", "reason": "oops"}
        ),
    }

    for what, answer in attempts.items():
        assert answer.status_code == 403, what
        assert error_of(answer)["code"] == "forbidden", what
    assert member.get("/rulesets").json()["items"][0]["reenroll_cooldown_days"] == 0
    assert admin.get("/people").status_code == 200  # the admin key was not revoked
    assert (
        admin.patch(f"/rulesets/{ruleset_id}", json={"reenroll_cooldown_days": 3}).json()[
            "reenroll_cooldown_days"
        ]
        == 3
    )
    new_key = admin.post("/api-keys", json={"name": "bridge", "role": "member"})
    assert new_key.status_code == 201
    assert api.client(new_key.json()["key"]).get("/people").status_code == 200
    cleared = admin.post("/optouts/clear", json={"email": "gone@acme.com", "reason": "consent"})
    assert cleared.status_code == 200


# --- workspaces never cross ------------------------------------------------------------------

MARKER = "zebra"  # in every name, address and domain of workspace B, nowhere in A


def _workspace_b(world: World) -> dict[str, int]:
    """Workspace B with one object of every kind; the ids the routes take."""
    person = world.person(f"bea@{MARKER}corp.com", company=f"{MARKER}corp.com", title="CTO")
    other = world.person(f"bo@{MARKER}corp.com", company=f"{MARKER}corp.com")
    company = world.company(f"{MARKER}-sub.com", name=f"{MARKER} sub")
    opportunity = world.opportunity(f"{MARKER}corp.com", name=f"{MARKER} deal", stage="Open")
    exclusion = world.exclusion(f"{MARKER} rule", "people", 'person.title = "Intern"').exclusion.id
    persona = world.persona(f"{MARKER} persona", include=["cto"])
    audience = world.audience(f"{MARKER} audience", persona=persona)
    ruleset = world.ruleset(f"{MARKER} rules")
    sequence = world.sequence(f"{MARKER} sequence", ruleset=ruleset, audience=f"{MARKER} audience")
    world.enroll(sequence, [person])
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email=f"bo@{MARKER}corp.com",
        actor="b",
        channel="manual",
        now=world.now,
    )
    e, r, p, o = t.enrollments, t.rulesets, t.personas, t.outbound_emails
    user = accounts.create_user(
        world.db,
        email=f"boss-{world.workspace.slug}@{MARKER}corp.com",
        name="Boss",
        password="b-password-123",
        now=world.now,
    )
    accounts.set_member(
        world.db,
        workspace_id=world.ws,
        email=f"boss-{world.workspace.slug}@{MARKER}corp.com",
        role="admin",
    )
    key = accounts.create_api_key(
        world.db,
        principal=accounts.Principal(world.ws, Role.ADMIN, "b"),
        name=f"{MARKER} key",
        role=Role.ADMIN,
        now=world.now,
    )
    return {
        "person_id": person,
        "other_person_id": other,
        "company_id": company,
        "group_id": company,
        "opportunity_id": opportunity,
        "exclusion_id": exclusion,
        "persona_id": int(world.db.scalar(sa.select(p.c.id).where(p.c.workspace_id == world.ws))),
        "audience_id": audience,
        "ruleset_id": int(world.db.scalar(sa.select(r.c.id).where(r.c.workspace_id == world.ws))),
        "sequence_id": sequence,
        "enrollment_id": int(
            world.db.scalar(sa.select(e.c.id).where(e.c.workspace_id == world.ws))
        ),
        "email_id": int(
            world.db.scalar(sa.select(o.c.id).where(o.c.workspace_id == world.ws).limit(1))
        ),
        "user_id": user,
        "key_id": key.id,
        "mailbox_id": sender_mailboxes.create(
            world.db,
            workspace_id=world.ws,
            address=f"rep@{MARKER}corp.com",
            actor="b",
            now=world.now,
        ).id,
        "invitation_id": invitations.invite(
            world.db,
            principal=accounts.Principal(world.ws, Role.ADMIN, "b"),
            email=f"guest@{MARKER}corp.com",
            role="member",
            now=world.now,
        ).id,
        "job_id": store.submit(
            world.db,
            workspace_id=world.ws,
            kind="import",
            params={"label": f"{MARKER} import", "kind": "people", "path": "/nonexistent"},
            actor="b",
            now=world.now,
        ).id,
    }


def _snapshot(engine: Engine, workspace_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the workspace in the tables the API can change."""
    tables = (
        t.people,
        t.companies,
        t.opportunities,
        t.exclusions,
        t.personas,
        t.audiences,
        t.rulesets,
        t.sequences,
        t.enrollments,
        t.outbound_emails,
        t.suppressions,
        t.suppression_ledger,
        t.events,
        t.api_keys,
        t.memberships,
    )
    with engine.connect() as db:
        return {
            table.name: sorted(
                (
                    tuple(str(v) for v in row)
                    for row in db.execute(
                        sa.select(table).where(table.c.workspace_id == workspace_id)
                    )
                ),
            )
            for table in tables
        }


def _body_for(method: str, path: str, b: dict[str, int], a: dict[str, int]) -> Any:
    """A valid body for a mutating route that names B's objects where it takes ids."""
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/people"): {"email": "new@acme.com", "company_id": b["company_id"]},
        ("PATCH", "/people/{person_id}"): {"title": "Boss"},
        ("PATCH", "/companies/{company_id}"): {"name": "Renamed"},
        ("PUT", "/companies/{company_id}/parent"): {"parent_id": b["company_id"]},
        ("POST", "/opportunities"): {"company_id": b["company_id"], "name": "Deal"},
        ("PATCH", "/opportunities/{opportunity_id}"): {"stage": "Won"},
        ("POST", "/opportunities/{opportunity_id}/contacts"): {"person_id": b["person_id"]},
        ("PATCH", "/exclusions/{exclusion_id}"): {"enabled": False},
        ("POST", "/exclusions/preview"): {"exclusion_id": b["exclusion_id"]},
        ("POST", "/audiences"): {"name": "Mine", "persona_id": b["persona_id"]},
        ("PATCH", "/rulesets/{ruleset_id}"): {"reenroll_cooldown_days": 9},
        ("POST", "/sequences"): {
            "name": "Mine",
            "ruleset_id": b["ruleset_id"],
            "from_address": "me@acme.com",
            "steps": [{"kind": "email", "subject": "Hi", "text": "Hello"}],
        },
        ("POST", "/sequences/{sequence_id}/status"): {"status": "paused"},
        ("PUT", "/sequences/{sequence_id}/schedule"): {
            "days": ["mon"],
            "start": "09:00",
            "end": "17:00",
        },
        ("PUT", "/sequences/{sequence_id}/mailboxes"): {"addresses": ["me@acme.com"]},
        ("PUT", "/sequences/{sequence_id}/automatic-enrollment"): {"enroll_automatically": True},
        ("PATCH", "/mailboxes/{mailbox_id}"): {"display_name": "Renamed"},
        ("POST", "/mailboxes/{mailbox_id}/pause"): {"reason": "A's decision"},
        ("POST", "/enrollments"): {"sequence_id": b["sequence_id"], "person_ids": [a["person_id"]]},
        ("POST", "/enrollments/unenroll"): {
            "sequence_id": b["sequence_id"],
            "person_ids": [b["person_id"]],
        },
        ("POST", "/enrollments/bulk-unenroll"): {
            "statuses": ["not_started", "in_progress"],
            "sequence_id": b["sequence_id"],
        },
        ("POST", "/jobs/bulk-unenroll"): {
            "statuses": ["not_started", "in_progress"],
            "sequence_id": b["sequence_id"],
        },
    }
    return bodies.get((method, path))


# Routes whose path names no object and whose body names none of B's either: they act on
# A only by construction, so there is nothing of B's to aim them at.
ACTS_ON_OWN_WORKSPACE_ONLY = {
    ("POST", "/companies"),
    ("POST", "/exclusions"),
    ("POST", "/personas"),
    ("POST", "/rulesets"),
    ("POST", "/optouts"),
    ("POST", "/optouts/clear"),
    ("POST", "/imports/people"),
    ("POST", "/imports/companies"),
    ("POST", "/imports/exclusion-list"),
    ("POST", "/jobs/imports/people"),
    ("POST", "/jobs/imports/companies"),
    ("POST", "/inbound"),
    ("POST", "/members"),
    ("POST", "/api-keys"),
    ("PUT", "/in-doubt/policy"),
    ("POST", "/mailboxes"),
    ("PUT", "/mailboxes/breaker"),
}


# Routes only the signed-in user an invitation is for may call: an API key is refused.
SIGNED_IN_USER_ONLY = {
    ("POST", "/invitations/{invitation_id}/accept"),
    ("POST", "/invitations/{invitation_id}/decline"),
}


def test_a_key_of_workspace_a_can_neither_read_nor_change_workspace_b(
    api: Api, committed: Committed
) -> None:
    with committed() as world_a:
        a_made = _small_world(world_a)
        a_ids = {"person_id": a_made["anna"]}
        keys: Keys = api.keys(world_a)
    with committed() as world_b:
        b = _workspace_b(world_b)
    before = _snapshot(api.engine, world_b.ws)
    http = api.client(keys.admin)
    spec = httpx.get(f"{api.base}/openapi.json").json()

    checked_gets, checked_changes = 0, 0
    for template, item in spec["paths"].items():
        assert template.startswith(API)
        path = template.removeprefix(API)
        names = re.findall(r"{(\w+)}", path)
        for method in item:
            verb = method.upper()
            url = path.format(**{n: b[n] for n in names}) if names else path
            if verb == "GET":
                query = {
                    "sequence_id": b["sequence_id"],
                    "person_id": b["person_id"],
                    "company_id": b["company_id"],
                    "group_id": b["group_id"],
                    "email": f"bea@{MARKER}corp.com",
                }
                params = {k: v for k, v in query.items() if k in _query_names(item[method])}
                # A person is named by address or by id (explain takes one of the two).
                for ask in _one_person_each(params):
                    answer = http.get(url, params=ask)
                    if names or template.endswith(("/explain", "/history")):
                        assert answer.status_code == 404, (template, ask, answer.text)
                        assert error_of(answer)["code"] == "not_found"
                    else:
                        assert answer.status_code == 200, (template, ask, answer.text)
                        assert MARKER not in answer.text, template
                checked_gets += 1
                continue
            if (verb, path) in ACTS_ON_OWN_WORKSPACE_ONLY:
                continue
            answer = http.request(verb, url, json=_body_for(verb, path, b, a_ids))
            refusals = (401,) if (verb, path) in SIGNED_IN_USER_ONLY else (403, 404)
            assert answer.status_code in refusals, (verb, template, answer.text)
            assert MARKER not in answer.text, template
            checked_changes += 1

    # Opting out B's address in A, and an import naming it, stay in A.
    http.post("/optouts", json={"email": f"bea@{MARKER}corp.com", "reason": "A's decision"})
    assert _snapshot(api.engine, world_b.ws) == before
    assert checked_gets >= 20
    assert checked_changes >= 15


def _one_person_each(params: dict[str, Any]) -> list[dict[str, Any]]:
    if "email" in params and "person_id" in params:
        by_id = {k: v for k, v in params.items() if k != "email"}
        return [{k: v for k, v in params.items() if k != "person_id"}, by_id]
    return [params]


def _query_names(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


@pytest.mark.parametrize("role", ["admin", "member"])
def test_keys_see_only_their_workspace_in_lists(api: Api, committed: Committed, role: str) -> None:
    with committed() as world_a:
        _small_world(world_a)
        keys = api.keys(world_a)
    with committed() as world_b:
        _workspace_b(world_b)
    http = api.client(keys.admin if role == "admin" else keys.member)

    for route in ("/people", "/companies", "/exclusions", "/sequences", "/enrollments", "/optouts"):
        answer = http.get(route, params={"limit": 500})
        assert answer.status_code == 200
        assert MARKER not in answer.text, route
    assert {p["email"] for p in http.get("/people").json()["items"]} == {
        "anna@acme.com",
        "bo@globex.io",
    }
