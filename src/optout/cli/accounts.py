"""`optout user ...` and `optout api-key ...`: who may use the web app and the API.

The command line runs with the server's own access to the database, so it acts as an
admin of the selected workspace: this is how the first admin and the first API key of
a workspace come to be.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, app, env_of
from optout.cli.render import console, emit_json
from optout.clock import utcnow
from optout.errors import InvalidInput
from optout.services.access import accounts, invitations, members
from optout.services.access.accounts import Principal, Role

user_app = typer.Typer(no_args_is_help=True, help="Users who sign in to the web app.")
key_app = typer.Typer(no_args_is_help=True, help="API keys for the JSON API (/api/v1).")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="api-key")

RoleOption = Annotated[
    Role,
    typer.Option(
        "--role",
        help="member: opt out, enroll, unenroll, edit exclusions and audiences; admin: also "
        "rulesets, members, API keys and clearing opt-outs.",
    ),
]


def as_admin(workspace_id: int, actor: str) -> Principal:
    """The command line acts as an admin of the workspace it works in."""
    return Principal(workspace_id=workspace_id, role=Role.ADMIN, actor=actor)


def _password(variable: str | None, *, needed: bool) -> str | None:
    """The password from the named environment variable, or typed at a prompt."""
    if variable is not None:
        value = os.environ.get(variable, "")
        if not value:
            raise InvalidInput(f"--password-env {variable}: that variable is unset or empty")
        return value
    if not needed:
        return None
    if not sys.stdin.isatty():
        raise InvalidInput("give the password in an environment variable: --password-env VAR")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The user's email address (their login).")],
    name: Annotated[str, typer.Option("--name", help="Display name (new users).")] = "",
    password_env: Annotated[
        str | None,
        typer.Option(
            "--password-env",
            metavar="VAR",
            help="Read the password from this environment variable (else it is prompted "
            "for a new user). For an existing user it sets a new password.",
        ),
    ] = None,
    role: RoleOption = Role.MEMBER,
    json_output: JsonOption = False,
) -> None:
    """Give a user a role in the workspace, creating the user if needed. A user of another
    workspace is invited instead: they accept on the Invitations page after signing in."""
    env = env_of(ctx)
    now = utcnow()
    with env.workspace() as (db, ws):
        existed = members.has_user(db, email=email)
        invited = None
        if existed and not members.is_member(db, workspace_id=ws.id, email=email):
            if password_env is not None:
                raise InvalidInput(
                    f"{email} is not a member of workspace {ws.slug!r}: their password is "
                    "theirs to set; invite them without --password-env"
                )
            invited = invitations.invite(
                db, principal=as_admin(ws.id, env.actor), email=email, role=role, now=now
            )
        else:
            password = _password(password_env, needed=not existed)
            if existed and password is not None:
                accounts.set_password(db, email=email, password=password)
            member = members.add_member(
                db,
                principal=as_admin(ws.id, env.actor),
                email=email,
                role=role,
                now=now,
                name=name,
                password=password,
            )
    if invited is not None:
        if json_output:
            emit_json(
                {"email": invited.email, "role": invited.role.value, "workspace": ws.slug,
                 "invited": True}
            )  # fmt: skip
            return
        console().print(
            Text.assemble(
                (f"Invited {invited.email}", "bold"),
                f" as {invited.role.value} of workspace {ws.slug!r}: a user of another "
                "workspace joins once they accept on the Invitations page after signing in.",
            )
        )
        return
    if json_output:
        emit_json({**vars(member), "workspace": ws.slug, "created": not existed})
        return
    verb = "Updated" if existed else "Created"
    console().print(
        Text.assemble(
            (f"{verb} {member.email}", "bold"),
            f": {member.role.value} of workspace {ws.slug!r}. Sign in at /login with "
            f"workspace {ws.slug!r}.",
        )
    )


@user_app.command("list")
def user_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The workspace's members and their roles."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        found = members.members(db, workspace_id=ws.id)
    if json_output:
        emit_json(found)
        return
    table = Table("email", "name", "role", title=f"Members of {ws.slug!r}", title_justify="left")
    for member in found:
        table.add_row(Text(member.email), Text(member.name), member.role.value)
    console().print(table)


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'crm-bridge'.")],
    role: RoleOption = Role.MEMBER,
    json_output: JsonOption = False,
) -> None:
    """Create an API key; it is printed once and only its hash is kept."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        made = accounts.create_api_key(
            db,
            principal=as_admin(ws.id, env.actor),
            name=name,
            role=role,
            now=utcnow(),
        )
    if json_output:
        emit_json({"id": made.id, "name": made.name, "role": made.role, "key": made.key})
        return
    out = console()
    out.print(
        Text.assemble(("API key ", "bold"), f"{made.name!r} ({made.role.value}) for {ws.slug!r}:")
    )
    out.print(Text(made.key), soft_wrap=True)
    out.print(
        Text(
            "Shown once. Use it as: Authorization: Bearer <key>  (e.g. curl -H "
            "'Authorization: Bearer <key>' http://127.0.0.1:8000/api/v1/people)",
            "dim",
        )
    )


@key_app.command("list")
def key_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The workspace's API keys (never their secrets)."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        found = members.api_keys(db, principal=as_admin(ws.id, env.actor))
    if json_output:
        emit_json(found)
        return
    table = Table("id", "name", "prefix", "role", "last used", "revoked", title="API keys")
    for key in found:
        table.add_row(
            str(key.id),
            Text(key.name),
            key.prefix,
            key.role.value,
            key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never",
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    console().print(table)


@key_app.command("revoke")
def key_revoke(
    ctx: typer.Context,
    key_id: Annotated[int, typer.Argument(help="The key's id.")],
    json_output: JsonOption = False,
) -> None:
    """Revoke an API key: it stops working at once."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        accounts.revoke_api_key(
            db,
            principal=as_admin(ws.id, env.actor),
            key_id=key_id,
            now=utcnow(),
        )
    if json_output:
        emit_json({"key_id": key_id, "revoked": True})
        return
    console().print(f"Revoked API key {key_id}.")
