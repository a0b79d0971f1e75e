"""The main flows as an API client runs them, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa

from optout.db import tables as t
from optout.services.enrollments import enrolling
from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]


def _statuses(api: Api, sequence_id: int) -> dict[str, int]:
    e = t.enrollments
    with api.engine.connect() as db:
        rows = db.execute(
            sa.select(e.c.status, sa.func.count())
            .where(e.c.sequence_id == sequence_id)
            .group_by(e.c.status)
        )
        return dict(rows.all())


def test_R22_R13_exclusion_preview_then_confirm_then_unenroll_on_save(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        staff = [world.person(f"p{i}@acme.com", company="acme.com") for i in range(3)]
        world.person("x@globex.io", company="globex.io")
        world.company("acme.co.uk")
        outbound = world.sequence()
        world.enroll(outbound, staff)
        keys = api.keys(world)
    http = api.client(keys.member)
    rule = {
        "name": "Acme is a customer",
        "level": "company",
        "filter": "company.domain in (acme.com)",
        "unenroll_existing_on_save": True,
    }

    preview = http.post("/exclusions/preview", json={**rule, "name": None})
    refused = http.post("/exclusions", json=rule)

    assert preview.status_code == 200
    impact = preview.json()["preview"]
    assert impact["people_matched"] == 3
    assert impact["people_total"] == 4
    assert impact["companies_matched"] == 1
    assert impact["enrollments_removed"] == 3
    assert impact["emails_cancelled"] == 3
    assert impact["near_misses"] == [
        {"listed": "acme.com", "present": "acme.co.uk", "kind": "suffix"}
    ]
    assert {row["email"] for row in impact["sample"]} == {f"p{i}@acme.com" for i in range(3)}
    assert impact["needs_confirmation"] is True  # 75% of all people
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "confirmation_required"
    assert error["preview"]["people_matched"] == 3
    assert error["preview"]["confirmation_reasons"]
    assert _statuses(api, outbound) == {"not_started": 3}  # nothing was written

    saved = http.post("/exclusions", json={**rule, "confirm": True})

    assert saved.status_code == 201
    body = saved.json()
    assert body["removed"] == {"enrollments_ended": 3, "emails_cancelled": 3}
    assert body["exclusion"]["filter"] == "company.domain in (acme.com)"
    assert _statuses(api, outbound) == {"unenrolled": 3}
    listed = http.get("/exclusions").json()
    assert [x["name"] for x in listed["items"]] == ["Acme is a customer"]
    # A level change keeps the filter, which must fit the new level (R22).
    deals = http.post(
        "/exclusions",
        json={"name": "Won deals", "level": "company", "filter": 'opportunity.stage = "Won"'},
    ).json()["exclusion"]
    moved = http.patch(f"/exclusions/{deals['id']}", json={"level": "people"})
    assert moved.status_code == 422
    assert error_of(moved)["where"] == "level"
    assert http.get(f"/exclusions/{deals['id']}").json()["level"] == "company"


def test_R22_negative_only_filter_gets_a_warning(api: Api, committed: Committed) -> None:
    with committed() as world:
        world.person("a@acme.com")
        keys = api.keys(world)

    answer = api.client(keys.member).post(
        "/exclusions/preview", json={"level": "people", "filter": 'person.email != "a@acme.com"'}
    )

    assert answer.status_code == 200
    assert any("negative" in w for w in answer.json()["preview"]["warnings"])


def test_R17_enroll_goes_through_eligibility(api: Api, committed: Committed) -> None:
    with committed() as world:
        world.person("anna@acme.com", title="CTO")
        world.person("ivan@acme.com", title="Intern")
        world.exclusion("Interns", "people", 'person.title = "Intern"')
        outbound = world.sequence()
        keys = api.keys(world)
    http = api.client(keys.member)

    enrolled = http.post(
        "/enrollments",
        json={"sequence_id": outbound, "emails": ["anna@acme.com", "ivan@acme.com"]},
    )
    again = http.post(
        "/enrollments", json={"sequence_id": outbound, "filter": "person.title = CTO"}
    )
    listed = http.get("/enrollments", params={"sequence_id": outbound, "status": "not_started"})

    assert enrolled.json() == {"requested": 2, "enrolled": 1, "blocked": 1}
    assert again.json() == {"requested": 1, "enrolled": 0, "blocked": 1}  # already active
    assert [row["email"] for row in listed.json()["items"]] == ["anna@acme.com"]
    one = http.get(f"/enrollments/{listed.json()['items'][0]['id']}")
    assert one.json()["sequence"] == "Outbound"


def test_R10_bulk_unenroll_by_status(api: Api, committed: Committed) -> None:
    with committed() as world:
        staff = [world.person(f"p{i}@acme{i % 4}.com") for i in range(30)]
        outbound, other = world.sequence("A"), world.sequence("B")
        world.enroll(outbound, staff)
        world.enroll(other, staff[:5])
        e = t.enrollments
        world.db.execute(
            e.update()
            .where(e.c.sequence_id == outbound, e.c.person_id.in_(staff[:12]))
            .values(status="in_progress")
        )
        keys = api.keys(world)
    http = api.client(keys.member)

    done = http.post(
        "/enrollments/bulk-unenroll",
        json={"statuses": ["in_progress"], "sequence_id": outbound, "reason": "new campaign"},
    )

    assert done.status_code == 200
    assert done.json() == {"enrollments_ended": 12, "emails_cancelled": 12}
    assert _statuses(api, outbound) == {"unenrolled": 12, "not_started": 18}
    assert _statuses(api, other) == {"not_started": 5}
    everything = http.post(
        "/enrollments/bulk-unenroll", json={"statuses": ["not_started", "in_progress"]}
    )
    assert everything.json()["enrollments_ended"] == 23
    with api.engine.connect() as db:
        assert enrolling.count_by_status(db, workspace_id=world.ws) == {"unenrolled": 35}
    wrong = http.post("/enrollments/bulk-unenroll", json={"statuses": ["finished"]})
    assert wrong.status_code == 422


def test_R1_R2_opt_out_ends_enrollments_and_holds_for_the_address(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com")
        twin = world.person("Anna@ACME.com")  # a CRM duplicate
        outbound, other = world.sequence("A"), world.sequence("B")
        world.enroll(outbound, [anna])
        world.enroll(other, [twin])
        keys = api.keys(world)
    http = api.client(keys.member)

    opted = http.post("/optouts", json={"email": "ANNA@acme.com", "reason": "asked"})
    again = http.post("/optouts", json={"email": "anna@acme.com"})
    later = http.post("/people", json={"email": "anna@acme.com", "first_name": "New"})
    enroll = http.post("/enrollments", json={"sequence_id": outbound, "person_ids": [anna]})

    assert opted.json() == {
        "email": "anna@acme.com",
        "new": True,
        "people": 2,
        "enrollments_ended": 2,
        "emails_cancelled": 2,
    }
    assert again.json()["new"] is False
    assert later.status_code == 201
    assert later.json()["opted_out"] is True  # from the moment it exists
    assert enroll.json()["enrolled"] == 0
    assert _statuses(api, outbound) == {"opted_out": 1}
    assert _statuses(api, other) == {"opted_out": 1}
    listed = http.get("/optouts", params={"kind": "opt_out"}).json()
    assert [(row["email"], row["channel"]) for row in listed["items"]] == [("anna@acme.com", "api")]
    ledger = http.get("/optouts/ledger", params={"email": "anna@acme.com"}).json()
    assert [row["action"] for row in ledger] == ["added", "repeated"]
    history = http.get(f"/people/{anna}/history").json()
    kinds = [event["kind"] for event in history["events"]]
    assert "opted_out" in kinds
    assert "enrollment_ended" in kinds
    assert history["ledger"][0]["reason"] == "asked"


def test_R29_explain_names_the_blocking_rule_in_precedence_order(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        anna = world.person("anna@acme.com", company="acme.com", title="CTO")
        world.person("bo@globex.io", company="globex.io")
        world.person("cy@initech.com", company="initech.com")
        rule = world.exclusion(
            "Acme", "company", "company.domain in (acme.com)", exclude_from_sequences=True
        ).exclusion
        outbound = world.sequence()
        keys = api.keys(world)
    http = api.client(keys.member)

    by_email = http.get("/explain", params={"email": "anna@acme.com", "sequence_id": outbound})
    by_id = http.get(
        "/explain", params={"person_id": anna, "sequence_id": outbound, "purpose": "send"}
    )
    free = http.get("/explain", params={"email": "bo@globex.io", "sequence_id": outbound})

    answer = by_email.json()
    assert answer["allowed"] is False
    assert answer["primary_reason"]["check"] == "enforced_exclusion"
    assert answer["primary_reason"]["exclusion_id"] == rule.id
    checks = [o["check"] for o in answer["outcomes"]]
    assert checks[:5] == ["complained", "bounced", "opted_out", "ruleset", "enforced_exclusion"]
    tiers = [o["tier"] for o in answer["outcomes"]]
    assert tiers == sorted(tiers)
    assert "acme.com" in str(answer["primary_reason"]["evidence"])
    assert by_id.json()["purpose"] == "send"
    assert by_id.json()["allowed"] is False
    assert free.json()["allowed"] is True
    assert free.json()["primary_reason"] is None


def test_R30_audience_exclusions_and_the_not_enrolled_view(api: Api, committed: Committed) -> None:
    with committed() as world:
        world.person("anna@acme.com", title="CTO")
        world.person("ivan@acme.com", title="Intern")
        world.person("olga@globex.io", title="CTO")
        world.exclusion("Interns", "people", 'person.title = "Intern"')
        world.exclusion(
            "Globex", "people", 'person.email_domain = "globex.io"', exclude_from_sequences=True
        )
        world.ruleset("Default")
        keys = api.keys(world)
    http = api.client(keys.member)
    audience = http.post("/audiences", json={"name": "Everyone"}).json()
    ruleset = http.get("/rulesets").json()["items"][0]
    sequence = http.post(
        "/sequences",
        json={
            "name": "Auto",
            "ruleset_id": ruleset["id"],
            "audience_id": audience["id"],
            "from_address": "Sam <sam@acme-sales.com>",
            "steps": [
                {"kind": "wait", "days": 1},
                {"kind": "email", "subject": "Hi {{ person.first_name }}", "text": "Hello"},
            ],
        },
    )
    assert sequence.status_code == 201, sequence.text
    sequence_id = sequence.json()["id"]

    states = http.get(f"/audiences/{audience['id']}/exclusions").json()
    refreshed = http.post(f"/sequences/{sequence_id}/refresh").json()
    left_out = http.get(f"/sequences/{sequence_id}/not-enrolled").json()

    assert {(s["name"], s["state"]) for s in states} == {
        ("Interns", "applies"),
        ("Globex", "enforced"),
    }
    assert refreshed == {"members": 3, "enrolled": 1, "skipped": 2}
    assert {(row["email"], row["check"], row["exclusion"]) for row in left_out["items"]} == {
        ("ivan@acme.com", "exclusion", "Interns"),
        ("olga@globex.io", "enforced_exclusion", "Globex"),
    }
    interns = next(s for s in states if s["name"] == "Interns")
    globex = next(s for s in states if s["name"] == "Globex")
    switched = http.put(f"/audiences/{audience['id']}/switched-off/{interns['id']}")
    refused = http.put(f"/audiences/{audience['id']}/switched-off/{globex['id']}")
    assert switched.json()["switched_off"] == [interns["id"]]
    assert refused.status_code == 409
    assert http.post(f"/sequences/{sequence_id}/refresh").json()["enrolled"] == 1
    detail = http.get(f"/sequences/{sequence_id}").json()
    assert detail["enrollments"] == {"not_started": 2}
    assert [step["kind"] for step in detail["steps"]] == ["wait", "email"]


def test_R23_csv_import_with_bad_rows_gives_an_error_report_and_writes_nothing(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member)
    bad = (
        "Email,Status,Company\n"
        "anna@acme.com,Exclude,acme.com\n"
        "not-an-email,Open,acme.com\n"
        "bo@globex.io,Open,not a domain\n"
    )
    mapping = {"map": ["Email=email", "Status=status", "Company=company_domain"]}

    rejected = http.post(
        "/imports/people", params=mapping, content=bad, headers={"Content-Type": "text/csv"}
    )
    as_file = http.post(
        "/imports/people",
        params=mapping,
        content=bad,
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )

    assert rejected.status_code == 422
    error = error_of(rejected)
    assert error["code"] == "import_rejected"
    assert error["report"]["applied"] is False
    assert [(e["row"], e["column"]) for e in error["report"]["errors"]] == [
        (3, "Email"),
        (4, "Company"),
    ]
    assert next(csv.reader(io.StringIO(error["error_report_csv"]))) == [
        "row",
        "column",
        "value",
        "reason",
    ]
    assert as_file.status_code == 422
    assert as_file.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_file.text)))
    assert [(r["row"], r["value"]) for r in rows] == [("3", "not-an-email"), ("4", "not a domain")]
    assert http.get("/people").json()["total"] == 0  # nothing half-imported

    good = "Email,Status,Company\nanna@acme.com,Exclude,acme.com\nbo@globex.io,Open,globex.io\n"
    upload = http.post(
        "/imports/people",
        files={"file": ("leads.csv", good.encode(), "text/csv")},
        data={"map": mapping["map"]},
    )
    repeat = http.post(
        "/imports/people", params=mapping, content=good, headers={"Content-Type": "text/csv"}
    )
    rule = http.post(
        "/exclusions",
        json={
            "name": "Marked",
            "level": "people",
            "filter": 'person.status = "Exclude"',
            "confirm": True,
        },
    )

    assert upload.status_code == 200, upload.text
    assert upload.json()["created"] == 2
    assert repeat.json()["created"] == 0
    assert repeat.json()["updated"] == 0
    assert repeat.json()["unchanged"] == 2
    assert rule.json()["preview"]["people_matched"] == 1


def test_R23_csv_straight_into_an_exclusion_list(api: Api, committed: Committed) -> None:
    with committed() as world:
        world.person("a@acme.com", company="acme.com")
        for i in range(9):
            world.person(f"p{i}@other{i}.com")
        keys = api.keys(world)
    http = api.client(keys.member)
    params = {"column": "Domain", "exclusion": "Customers", "level": "company"}

    done = http.post(
        "/imports/exclusion-list",
        params=params,
        content="Domain\nhttps://www.Acme.com/about\nglobex.io\n",
        headers={"Content-Type": "text/csv"},
    )
    bad = http.post(
        "/imports/exclusion-list",
        params=params,
        content="Domain\n\nnot a domain\n",
        headers={"Content-Type": "text/csv"},
    )
    no_type = http.post("/imports/exclusion-list", params=params, content="Domain\nx.com\n")

    assert done.status_code == 200, done.text
    assert done.json()["created"] == 2
    saved = http.get("/exclusions").json()["items"][0]
    assert saved["filter"] == "company.domain in (acme.com, globex.io)"
    assert bad.status_code == 422
    assert error_of(bad)["report"]["errors"][0]["value"] == "not a domain"
    assert no_type.status_code == 415
    assert error_of(no_type)["code"] == "unsupported"


def test_R34_inbound_rejects_a_malformed_message_and_stores_a_real_one(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member, **{"Content-Type": "message/rfc822"})
    message = (
        b"From: Someone <someone@elsewhere.com>\r\n"
        b"To: sam@acme-sales.com\r\n"
        b"Subject: Hello\r\n"
        b"Message-ID: <abc@elsewhere.com>\r\n"
        b"\r\n"
        b"Just saying hi.\r\n"
    )

    garbage = http.post("/inbound", content=b"\x00 not a message")
    stored = http.post("/inbound", content=message)
    twice = http.post("/inbound", content=message)

    assert garbage.status_code == 422
    assert error_of(garbage)["code"] == "invalid_input"
    assert stored.status_code == 200, stored.text
    assert stored.json()["outcome"] == "unmatched"
    assert stored.json()["duplicate"] is False
    assert twice.json()["duplicate"] is True
    assert twice.json()["id"] == stored.json()["id"]


def test_paging_answers_total_and_next(api: Api, committed: Committed) -> None:
    with committed() as world:
        for i in range(7):
            world.person(f"p{i}@acme.com", status="Open" if i % 2 else "Closed")
        keys = api.keys(world)
    http = api.client(keys.member)

    first = http.get("/people", params={"limit": 3}).json()
    second = http.get(first["next"]).json()
    last = http.get(second["next"]).json()
    filtered = http.get("/people", params={"status": "Open", "domain": "ACME.com"}).json()

    assert first["total"] == 7
    assert [len(p["items"]) for p in (first, second, last)] == [3, 3, 1]
    assert last["next"] is None
    emails = [p["email"] for page in (first, second, last) for p in page["items"]]
    assert emails == [f"p{i}@acme.com" for i in range(7)]
    assert filtered["total"] == 3
    too_many = http.get("/people", params={"limit": 100_000})
    assert too_many.status_code == 422


def test_R12_a_person_created_without_company_joins_their_domain_and_the_preview_says_who_is_missed(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        world.company("acme.com")
        world.person("cy@acme.com", company="globex.io")
        keys = api.keys(world)
    http = api.client(keys.member)

    made = http.post("/people", json={"email": "Ann@Acme.com"})
    preview = http.post(
        "/exclusions/preview",
        json={"level": "company", "filter": "company.domain in (acme.com)"},
    )

    assert made.status_code == 201, made.text
    person = made.json()
    assert (person["company_domain"], person["company_link_source"]) == ("acme.com", "email_domain")
    impact = preview.json()["preview"]
    assert impact["people_matched"] == 1
    assert impact["unreached_at_domains"] == {
        "domains": ["acme.com"],
        "count": 1,
        "without_company": 0,
        "at_another_company": 1,
        "sample": [{"email": "cy@acme.com", "company": "globex.io"}],
    }
    assert any("1 people have an email at acme.com" in w for w in impact["warnings"])
