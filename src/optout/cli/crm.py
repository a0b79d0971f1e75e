"""`optout crm ...`: connect a CRM, map its fields, sync, and read the sync log (R31-R33).

Secrets are never given on the command line: options name the environment variables
that hold them (`--token-env HUBSPOT_TOKEN`), and the connection stores only the names.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, NowOption, app, env_of, moment, open_engine
from optout.cli.render import console, emit_json, plain, short
from optout.clock import utcnow
from optout.config import encryption_keys_from
from optout.crm import connections, credentials, sync
from optout.crm.mapping import MODES, FieldMapping
from optout.crm.protocol import Connector
from optout.db.migrate import upgrade
from optout.errors import InvalidInput
from optout.services import workspaces

crm_app = typer.Typer(
    no_args_is_help=True,
    help="CRM sync: connect HubSpot or Salesforce, map fields, sync, read the log.",
)
app.add_typer(crm_app, name="crm")


class Crm(StrEnum):
    hubspot = "hubspot"
    salesforce = "salesforce"


CrmOption = Annotated[
    Crm | None,
    typer.Option("--crm", help="Which connection, when the workspace has both."),
]


@crm_app.command("connect")
def connect(
    ctx: typer.Context,
    kind: Annotated[Crm, typer.Argument(help="hubspot or salesforce.")],
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url", help="API address: https://api.hubapi.com, or your Salesforce My Domain."
        ),
    ],
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            help="Variable holding the HubSpot private-app token (or a Salesforce access token).",
        ),
    ] = None,
    webhook_secret_env: Annotated[
        str | None,
        typer.Option("--webhook-secret-env", help="HubSpot: variable holding the app secret."),
    ] = None,
    client_secret_env: Annotated[
        str | None,
        typer.Option("--client-secret-env", help="Salesforce: variable holding the client secret."),
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option("--auth", help="Salesforce: jwt, client_credentials or token."),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="Salesforce connected app consumer key.")
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", help="Salesforce JWT: the integration user.")
    ] = None,
    private_key: Annotated[
        str | None,
        typer.Option("--private-key", help="Salesforce JWT: path of the PEM private key file."),
    ] = None,
    login_url: Annotated[
        str | None, typer.Option("--login-url", help="Salesforce: where tokens come from.")
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--setting",
            help="Any other setting as key=value (api_version, batch_size, requests_per_10s, "
            "comm_prefs_path, webhook_url, organization_id, ...). Repeatable.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Connect the workspace to a CRM (or update its connection). New connections start with
    the default field mappings, all `read`: nothing is written to the CRM until the opt-out
    field is switched to read_write (`optout crm map`)."""
    env = env_of(ctx)
    secrets = {
        role: name
        for role, name in (
            ("token", token_env),
            ("webhook_secret", webhook_secret_env),
            ("client_secret", client_secret_env),
        )
        if name
    }
    settings: dict[str, Any] = {
        key: value
        for key, value in (
            ("auth", auth),
            ("client_id", client_id),
            ("username", username),
            ("private_key_path", private_key),
            ("login_url", login_url),
        )
        if value
    }
    settings.update(_settings(setting or []))
    with env.workspace() as (db, ws):
        connection = connections.connect(
            db,
            workspace_id=ws.id,
            kind=kind.value,
            base_url=base_url,
            secrets=secrets,
            settings=settings,
            now=utcnow(),
        )
        mapped = connections.mappings(db, connection_id=connection.id)
        saved = sorted(credentials.saved_roles(db, connection_id=connection.id))
    webhook = f"/crm/webhooks/{connection.kind}/{connection.id}"
    if json_output:
        emit_json({"connection": connection, "mappings": mapped, "webhook_path": webhook})
        return
    out = console()
    out.print(Text.assemble(("Connected ", "bold"), f"{connection.kind} at {connection.base_url}"))
    sources = [_names(connection.secrets), ", ".join(f"{r}=saved, encrypted" for r in saved)]
    out.print(f"Secrets come from: {', '.join(s for s in sources if s) or '(none yet)'}")
    out.print(f"Webhooks: POST {webhook} on this server.")
    out.print(_mappings_table(mapped))


@crm_app.command("save-secret")
def save_secret(
    ctx: typer.Context,
    role: Annotated[
        str, typer.Argument(help="token, webhook_secret (HubSpot) or client_secret (Salesforce).")
    ],
    crm: CrmOption = None,
    json_output: JsonOption = False,
) -> None:
    """Keep a secret of the connection in the database, encrypted with
    OPTOUT_ENCRYPTION_KEYS, instead of naming an environment variable. The value is read
    from standard input (asked for, hidden, at a terminal), never from the command line."""
    if sys.stdin.isatty():
        value = typer.prompt(role.replace("_", " "), hide_input=True)
    else:
        value = sys.stdin.readline().strip()
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        connection = connections.get(db, workspace_id=ws.id, kind=crm.value if crm else None)
        saved = credentials.save(
            db,
            connection=connection,
            values={role: value} if value else {},
            keys=encryption_keys_from(os.environ),
            now=utcnow(),
        )
    if not saved:
        raise InvalidInput("no secret given on standard input")
    if json_output:
        emit_json({"connection_id": connection.id, "saved": saved})
        return
    console().print(f"Saved the {connection.kind} {role.replace('_', ' ')}, encrypted.")


@crm_app.command("map")
def map_field(
    ctx: typer.Context,
    crm_object: Annotated[str, typer.Argument(help="CRM object: contacts, Lead, Contact, ...")],
    crm_field: Annotated[str, typer.Argument(help="The CRM field's API name.")],
    our_field: Annotated[
        str, typer.Argument(help="Ours: email_opt_out, title, stage, fields.<name>, ...")
    ],
    mode: Annotated[
        str, typer.Option("--mode", help="read (CRM to us) or read_write (both ways).")
    ] = "read",
    crm: CrmOption = None,
    json_output: JsonOption = False,
) -> None:
    """Map a CRM field to one of ours, replacing what fed ours before. The opt-out
    field maps to the CRM's master suppression flag, e.g. `optout crm map Contact
    Do_Not_Email__c email_opt_out --mode read_write`."""
    if mode not in MODES:
        raise InvalidInput(f"--mode {mode!r}: use read or read_write")
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        connection = connections.get(db, workspace_id=ws.id, kind=crm.value if crm else None)
        saved = connections.set_mapping(
            db,
            connection=connection,
            field_mapping=FieldMapping(crm_object, crm_field, our_field, mode),
            now=utcnow(),
        )
    if json_output:
        emit_json(saved)
        return
    console().print(
        f"{connection.kind} {saved.crm_object}.{saved.crm_field} -> {saved.our_field} "
        f"({saved.mode})"
    )


@crm_app.command("mappings")
def mappings(ctx: typer.Context, crm: CrmOption = None, json_output: JsonOption = False) -> None:
    """The field mappings of the workspace's CRM connection."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        connection = connections.get(db, workspace_id=ws.id, kind=crm.value if crm else None)
        mapped = connections.mappings(db, connection_id=connection.id)
    if json_output:
        emit_json(mapped)
        return
    console().print(_mappings_table(mapped))


@crm_app.command("sync")
def sync_now(
    ctx: typer.Context,
    full: Annotated[
        bool, typer.Option("--full", help="Re-read every record, not only changes.")
    ] = False,
    crm: CrmOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Sync now: read the CRM's changes (every record with --full), enforce them at once
    , then write pending opt-outs back where the mapping is read_write."""
    env = env_of(ctx)
    at = moment(now) if now is not None else None
    engine = open_engine()
    built: dict[int, Connector] = {}
    try:
        upgrade(engine)
        with engine.connect() as db:
            ws = workspaces.get(db, slug=env.workspace_slug)
            chosen = [
                c
                for c in connections.for_workspace(db, workspace_id=ws.id)
                if c.enabled and (crm is None or c.kind == crm.value)
            ]
            if not chosen:
                raise InvalidInput("no CRM connection to sync; add one with `optout crm connect`")
            keys = encryption_keys_from(os.environ)
            for connection in chosen:
                built[connection.id] = credentials.connector(
                    db, connection=connection, env=os.environ, keys=keys
                )
        reports = sync.sync_workspace(
            engine,
            workspace_id=ws.id,
            connectors=built,
            full=full,
            trigger="manual",
            now=utcnow if at is None else (lambda: at),
        )
    finally:
        for connector in built.values():
            connector.close()
        engine.dispose()
    if json_output:
        emit_json([{**plain(r), "counts": sync.counts_of(r)} for r in reports])
    else:
        for report in reports:
            _print_report(report)
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


@crm_app.command("log")
def log(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many runs.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """The latest sync runs and pushed changes with their counts, and each object's
    bookmark."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        runs = sync.history(db, workspace_id=ws.id, limit=limit)
        state = {
            c.kind: sync.states(db, connection_id=c.id)
            for c in connections.for_workspace(db, workspace_id=ws.id)
        }
    if json_output:
        emit_json({"runs": runs, "objects": state})
        return
    out = console()
    table = Table(title="CRM sync log", title_justify="left")
    for name in ("#", "crm", "trigger", "status", "started", "read", "created", "updated",
                 "opted out", "unenrolled", "API calls", "error"):  # fmt: skip
        table.add_column(name)
    for run in runs:
        counts = run["counts"] or {}
        table.add_row(
            str(run["id"]),
            run["kind"],
            run["trigger"],
            run["status"],
            short(run["started_at"]),
            str(counts.get("read", 0)),
            str(counts.get("created", 0)),
            str(counts.get("updated", 0)),
            str(counts.get("opted_out", 0)),
            str(counts.get("unenrolled", 0)),
            str(run["api_calls"]),
            run["error"] or "",
        )
    out.print(table)
    objects = Table(title="Objects", title_justify="left")
    for name in ("crm", "object", "bookmark", "status", "last finished", "last error"):
        objects.add_column(name)
    for kind, rows in state.items():
        for row in rows:
            objects.add_row(
                kind,
                row.crm_object,
                short(row.bookmark),
                row.status,
                short(row.last_finished_at),
                row.last_error,
            )
    out.print(objects)


@crm_app.command("schedule")
def schedule(
    ctx: typer.Context,
    every: Annotated[int, typer.Option("--every", help="Minutes between syncs.")] = 15,
    json_output: JsonOption = False,
) -> None:
    """Sync every connection of every workspace every N minutes until interrupted."""
    engine = open_engine()
    upgrade(engine)
    stop = threading.Event()
    if json_output:
        emit_json({"scheduled": True, "every_minutes": every})
    else:
        console().print(f"Syncing every {every} minutes; Ctrl-C stops.")
    try:
        sync.run_scheduled(engine, stop, timedelta(minutes=every))
    except KeyboardInterrupt:
        stop.set()
    finally:
        engine.dispose()


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--setting {pair!r}: use key=value")
        value: Any = raw.strip()
        if value.lower() in ("true", "false"):
            value = value.lower() == "true"
        else:
            try:
                value = int(value)
            except ValueError:
                with contextlib.suppress(ValueError):
                    value = float(value)
        out[key.strip()] = value
    return out


def _names(secrets: Any) -> str:
    return ", ".join(f"{role}=${name}" for role, name in sorted(secrets.items()))


def _mappings_table(mapped: list[FieldMapping]) -> Table:
    table = Table(title="Field mappings", title_justify="left")
    for name in ("object", "CRM field", "our field", "mode"):
        table.add_column(name)
    for m in mapped:
        style = "bold" if m.mode == "read_write" else ""
        table.add_row(m.crm_object, m.crm_field, m.our_field, Text(m.mode, style))
    return table


def _print_report(report: sync.SyncReport) -> None:
    out = console()
    a, w = report.applied, report.writebacks
    style = {"ok": "green", "failed": "red", "stopped": "yellow"}.get(report.status, "")
    out.print(Text.assemble((f"{report.crm}: {report.status}", f"bold {style}")))
    out.print(
        f"  read {a.read} records ({a.unchanged} already applied, {a.skipped} unusable); "
        f"created {a.created}, updated {a.updated}"
    )
    out.print(
        f"  opted out {a.opted_out} address(es); ended {a.unenrolled} enrollment(s), "
        f"cancelled {a.cancelled} queued email(s)"
    )
    out.print(
        f"  write-backs: {w.written} written, {w.failed} failed, {w.skipped} skipped "
        f"(read mode); {report.api_calls} API calls"
    )
    if report.error:
        out.print(Text(f"  {report.error}", "red"))
