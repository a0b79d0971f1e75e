"""Background jobs over the JSON API: 202 Accepted with the job's URL in Location, then
polling it until the job is done, with its progress and summary (R10, R23)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from optout.db import tables as t
from optout.services.enrollments import enrolling
from tests.factories import World
from tests.web.api.conftest import API, Api, error_of

Committed = Callable[[], AbstractContextManager[World]]


def _poll(http: httpx.Client, location: str, *, seconds: float = 20) -> dict[str, Any]:
    """GET the job until it is finished; every answer in between is a consistent view."""
    deadline = time.monotonic() + seconds
    while True:
        answer = http.get(location)
        assert answer.status_code == 200
        job: dict[str, Any] = answer.json()
        assert 0 <= job["percent"] <= 100
        if job["state"] in ("done", "failed"):
            assert "Retry-After" not in answer.headers
            return job
        assert answer.headers["Retry-After"] == "1"
        assert time.monotonic() < deadline, f"job still {job['state']}: {job}"
        time.sleep(0.2)


def test_R10_api_bulk_unenroll_answers_202_with_a_job_to_poll(
    api: Api, committed: Committed
) -> None:
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

    asked = http.post(
        "/jobs/bulk-unenroll",
        json={"statuses": ["in_progress"], "sequence_id": outbound, "chunk": 100},
    )
    assert asked.status_code == 202
    location = asked.headers["Location"]
    assert location.endswith(f"{API}/jobs/{asked.json()['id']}")
    assert asked.json()["state"] == "queued"
    assert asked.json()["label"] == "Bulk unenroll from A"

    job = _poll(http, location)
    assert job["state"] == "done"
    assert (job["done"], job["total"], job["percent"]) == (12, 12, 100)
    assert job["result"] == {"enrollments_ended": 12, "emails_cancelled": 12}
    with api.engine.connect() as db:
        assert enrolling.count_by_status(db, workspace_id=world.ws, sequence_id=outbound) == {
            "unenrolled": 12,
            "not_started": 18,
        }
        assert enrolling.count_by_status(db, workspace_id=world.ws, sequence_id=other) == {
            "not_started": 5
        }
    listed = http.get("/jobs").json()
    assert [j["id"] for j in listed] == [job["id"]]

    wrong = http.post("/jobs/bulk-unenroll", json={"statuses": ["finished"]})
    assert wrong.status_code == 422
    error_of(wrong)
    assert http.get("/jobs/999999").status_code == 404


def test_R23_api_csv_import_job_reports_rows_or_imports_nothing(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member)
    mapping = [("map", "Email=email"), ("map", "Company=company_domain")]
    good = "Email,Company\nann@acme.com,acme.com\nbo@globex.com,globex.com\n"

    asked = http.post(
        "/jobs/imports/people",
        params=mapping,
        content=good.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert asked.status_code == 202
    job = _poll(http, asked.headers["Location"])
    assert job["state"] == "done"
    assert job["result"]["applied"] is True
    assert (job["result"]["rows"], job["result"]["created"]) == (2, 2)

    bad = good + "nobody,acme.com\n"
    asked = http.post(
        "/jobs/imports/people",
        params=mapping,
        content=bad.encode(),
        headers={"Content-Type": "text/csv"},
    )
    job = _poll(http, asked.headers["Location"])
    assert job["result"]["applied"] is False
    assert job["result"]["first_errors"][0]["row"] == 4
    with api.engine.connect() as db:
        people = db.execute(t.people.select().where(t.people.c.workspace_id == world.ws)).all()
    assert sorted(row.email for row in people) == ["ann@acme.com", "bo@globex.com"]

    unmapped = http.post(
        "/jobs/imports/people",
        params=[("map", "Company=company_domain")],
        content=good.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert unmapped.status_code == 422
    assert "email" in error_of(unmapped)["message"]
