"""`optout user add` for a user of another workspace invites them (R34): no membership
and no new password until they accept."""

from __future__ import annotations

import sqlalchemy as sa

from optout.db import tables as t
from optout.db.engine import create_engine
from optout.services.access import accounts
from tests.cli.conftest import WORKSPACE, Cli
from tests.factories import World

PASSWORD = "correct horse battery staple"


def _hash_of(cli: Cli, email: str) -> str:
    return str(cli.scalar(sa.select(t.users.c.password_hash).where(t.users.c.email == email)))


def test_R34_user_add_invites_a_user_of_another_workspace_instead_of_adding_them(
    cli: Cli,
) -> None:
    with cli.seed():
        pass
    engine = create_engine(cli.url)
    try:
        with engine.begin() as db:
            World(db, cli.now, slug="beta-corp")
            accounts.create_user(
                db, email="bea@beta.example", name="Bea", password=PASSWORD, now=cli.now
            )
            accounts.set_member(
                db,
                workspace_id=int(
                    db.scalar(
                        sa.select(t.workspaces.c.id).where(t.workspaces.c.slug == "beta-corp")
                    )
                ),
                email="bea@beta.example",
                role="admin",
            )
    finally:
        engine.dispose()
    before = _hash_of(cli, "bea@beta.example")

    reset = cli.run(
        "user", "add", "bea@beta.example", "--password-env", "NEW", NEW="another long passphrase"
    )
    invited = cli.run("user", "add", "bea@beta.example", "--role", "admin")

    assert reset.exit_code == 2
    assert "invite" in reset.stderr
    assert invited.exit_code == 0, invited.stderr
    assert "Invited bea@beta.example" in invited.stdout
    assert _hash_of(cli, "bea@beta.example") == before
    m, w = t.memberships, t.workspaces
    here = cli.scalar(
        sa.select(sa.func.count())
        .select_from(m.join(w, w.c.id == m.c.workspace_id))
        .where(w.c.slug == WORKSPACE)
    )
    assert here == 0
    i = t.invitations
    assert cli.scalar(sa.select(i.c.status).where(i.c.email == "bea@beta.example")) == "pending"
