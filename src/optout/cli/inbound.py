"""`optout inbound ...`: the ways mail comes back in (SMTP listener, IMAP poller, a file),
and the list of what came in (R4-R7). Every way in calls `process_message` or, for
several messages at once, `process_messages`.

The listener and the poller serve the workspace selected with `--workspace`; with
`--all-workspaces` each message goes to the workspace whose email it answers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine

from optout.cli.app import (
    Env,
    JsonOption,
    NowOption,
    app,
    env_of,
    moment,
    open_engine,
    shared_settings,
)
from optout.cli.render import console, emit_json, plain, short
from optout.errors import ConnectorError, InvalidInput
from optout.inbound.imap import ImapAccount, ImapPoller, PollResult
from optout.inbound.listing import list_messages
from optout.inbound.process import (
    BATCH,
    InboundOptions,
    InboundResult,
    Incoming,
    process_messages,
)
from optout.mail.tokens import UnsubscribeTokens
from optout.services.in_parts import apply_in_parts

inbound_app = typer.Typer(
    no_args_is_help=True,
    help="Mail that comes back: replies, unsubscribe requests, auto-replies and bounces.",
)
app.add_typer(inbound_app, name="inbound")

AllWorkspacesOption = Annotated[
    bool,
    typer.Option(
        "--all-workspaces",
        help="Serve every workspace: a message goes to the workspace whose email it answers.",
    ),
]


SoftBounceLimitOption = Annotated[
    int,
    typer.Option(
        "--soft-bounce-limit",
        min=1,
        help="Transient bounces of one address that count as a hard bounce.",
    ),
]


def _options(engine: Engine, soft_bounce_limit: int = 3) -> InboundOptions:
    """Reads the unsubscribe-token keys, so mailto and VERP tokens can be matched."""
    return InboundOptions(
        tokens=UnsubscribeTokens(shared_settings(engine).signing_keys()),
        soft_bounce_limit=soft_bounce_limit,
    )


def _scope(env: Env, all_workspaces: bool) -> int | None:
    """The workspace a long-running way in serves (None: all), checked before it starts."""
    if all_workspaces:
        with env.transaction():
            return None
    with env.workspace() as (_, workspace):
        return workspace.id


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@inbound_app.command("smtp")
def smtp(
    ctx: typer.Context,
    listen: Annotated[
        str, typer.Option("--listen", help="Address and port to listen on (HOST:PORT).")
    ] = "127.0.0.1:2525",
    max_size_mb: Annotated[
        int, typer.Option("--max-size-mb", min=1, help="Larger messages are refused (552).")
    ] = 10,
    all_workspaces: AllWorkspacesOption = False,
    soft_bounce_limit: SoftBounceLimitOption = 3,
    json_output: JsonOption = False,
) -> None:
    """Receive replies and bounces over SMTP until Ctrl-C or SIGTERM.

    Each message is processed in its own transaction and answered 250 after it
    committed, 451 when storing it failed (the sender retries).
    """
    try:
        from optout.inbound.smtp import InboundSmtpServer, parse_listen
    except ImportError as exc:  # aiosmtpd missing from this install
        raise ConnectorError(f"the SMTP listener needs aiosmtpd ({exc})") from None

    host, port = parse_listen(listen)
    workspace_id = _scope(env_of(ctx), all_workspaces)
    engine = open_engine()
    server = InboundSmtpServer(
        engine,
        host=host,
        port=port,
        max_bytes=max_size_mb * 1024 * 1024,
        workspace_id=workspace_id,
        options=_options(engine, soft_bounce_limit),
    )
    try:
        with server:
            if json_output:
                emit_json({"listening": f"{host}:{port}"})
            else:
                typer.echo(f"Listening for inbound mail on {host}:{port}; Ctrl-C stops.")
            sys.stdout.flush()
            _wait_for_stop()
    finally:
        engine.dispose()
    if not json_output:
        typer.echo("Stopped.")


@inbound_app.command("imap")
def imap(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="IMAP server.")],
    user: Annotated[str, typer.Option("--user", help="Login name.")],
    password_env: Annotated[
        str, typer.Option("--password-env", help="Environment variable holding the password.")
    ] = "OPTOUT_IMAP_PASSWORD",
    port: Annotated[
        int | None, typer.Option("--port", help="Port [default: 993 with --ssl, else 143].")
    ] = None,
    folder: Annotated[str, typer.Option("--folder", help="Folder to read.")] = "INBOX",
    use_ssl: Annotated[bool, typer.Option("--ssl/--no-ssl", help="IMAP over TLS (IMAPS).")] = True,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between passes.")
    ] = 60.0,
    all_workspaces: AllWorkspacesOption = False,
    soft_bounce_limit: SoftBounceLimitOption = 3,
    json_output: JsonOption = False,
) -> None:
    """Process the folder's unseen messages; each is marked seen after it is stored."""
    password = os.environ.get(password_env, "")
    if not password:
        raise InvalidInput(f"set the IMAP password in the environment variable {password_env}")
    account = ImapAccount(
        host=host,
        port=port or (993 if use_ssl else 143),
        user=user,
        password=password,
        folder=folder,
        ssl=use_ssl,
    )
    workspace_id = _scope(env_of(ctx), all_workspaces)
    engine = open_engine()
    try:
        poller = ImapPoller(
            engine,
            account=account,
            workspace_id=workspace_id,
            options=_options(engine, soft_bounce_limit),
        )
        if once:
            _print_poll(poller.poll_once(), json_output=json_output)
            return
        typer.echo(f"Polling {account.mailbox} every {interval:g} s; Ctrl-C stops.")
        stop = threading.Event()
        worker = threading.Thread(
            target=poller.run_forever, args=(stop,), kwargs={"interval": interval}, daemon=True
        )
        worker.start()
        _wait_for_stop()
        stop.set()
        worker.join()
    finally:
        engine.dispose()


@inbound_app.command("mailboxes")
def mailboxes(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between passes.")
    ] = 60.0,
    all_workspaces: Annotated[
        bool,
        typer.Option("--all-workspaces", help="Read the mailboxes of every workspace."),
    ] = False,
    soft_bounce_limit: SoftBounceLimitOption = 3,
    json_output: JsonOption = False,
) -> None:
    """Read the replies that arrive at each sender mailbox with its own IMAP login."""
    from optout.config import encryption_keys_from
    from optout.inbound import mailbox_polling

    keys = encryption_keys_from(os.environ)
    workspace_id = _scope(env_of(ctx), all_workspaces)
    engine = open_engine()
    try:
        options = _options(engine, soft_bounce_limit)
        if once:
            polled = mailbox_polling.poll_once(
                engine, keys=keys, options=options, workspace_id=workspace_id
            )
            _print_mailboxes(polled, json_output=json_output)
            return
        typer.echo(f"Reading each mailbox's replies every {interval:g} s; Ctrl-C stops.")
        stop = threading.Event()
        worker = threading.Thread(
            target=mailbox_polling.run_forever,
            args=(engine, stop),
            kwargs={
                "keys": keys,
                "options": options,
                "workspace_id": workspace_id,
                "interval": interval,
            },
            daemon=True,
        )
        worker.start()
        _wait_for_stop()
        stop.set()
        worker.join()
    finally:
        engine.dispose()


def _print_mailboxes(polled: list[Any], *, json_output: bool) -> None:
    if json_output:
        emit_json(
            [
                {
                    "mailbox": p.address,
                    "error": p.error or None,
                    "fetched": p.result.fetched if p.result else 0,
                    "processed": p.result.processed if p.result else 0,
                    "duplicates": p.result.duplicates if p.result else 0,
                    "failed": p.result.failed if p.result else 0,
                    "messages": [_result_json(r) for r in p.result.results] if p.result else [],
                }
                for p in polled
            ]
        )
        return
    out = console()
    if not polled:
        out.print(Text("No mailbox has an IMAP login: give one on its edit page.", "dim"))
    for p in polled:
        if p.result is None:
            out.print(Text.assemble((p.address, "bold"), f": not read: {p.error}"))
            continue
        out.print(
            Text.assemble(
                (p.address, "bold"),
                f": fetched {p.result.fetched}, processed {p.result.processed}, duplicates "
                f"{p.result.duplicates}, failed {p.result.failed}.",
            )
        )
        for processed in p.result.results:
            _print_result(processed)


def _print_poll(result: PollResult, *, json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "fetched": result.fetched,
                "processed": result.processed,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
                "failed": result.failed,
                "messages": [_result_json(r) for r in result.results],
            }
        )
        return
    out = console()
    out.print(
        f"Fetched {result.fetched}: processed {result.processed}, duplicates "
        f"{result.duplicates}, not a message {result.rejected}, failed {result.failed}."
    )
    for processed in result.results:
        _print_result(processed)


@inbound_app.command("process")
def process(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Message files (.eml), or folders of them (a Maildir's new/ and cur/ are "
            "read too); - reads one message from stdin."
        ),
    ],
    all_workspaces: AllWorkspacesOption = False,
    soft_bounce_limit: SoftBounceLimitOption = 3,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Process messages from files, as if they had arrived by mail. Many messages are
    processed several to a transaction, each transaction short, so unsubscribes and other
    writes never wait long behind them."""
    messages = _messages(files)
    env = env_of(ctx)
    scope = _scope(env, all_workspaces)
    at = moment(now)
    engine = open_engine()
    try:
        options = _options(engine, soft_bounce_limit)
        nothing: list[InboundResult | InvalidInput] = []
        results = apply_in_parts(
            engine,
            engine.begin,
            total=len(messages),
            part=lambda db, start, stop: process_messages(
                db, messages=messages[start:stop], now=at, workspace_id=scope, options=options
            ),
            nothing=nothing,
            finish=lambda _, done: done,
            most=BATCH,
            least=1,
            first=1,
        )
    finally:
        engine.dispose()
    if len(results) == 1:
        (result,) = results
        if isinstance(result, InvalidInput):
            raise result
        if json_output:
            emit_json(_result_json(result))
        else:
            _print_result(result)
        return
    _print_results(messages, results, json_output=json_output)
    if any(isinstance(r, InvalidInput) for r in results):
        raise typer.Exit(2)


def _print_results(
    messages: list[Incoming], results: list[InboundResult | InvalidInput], *, json_output: bool
) -> None:
    refused = [r for r in results if isinstance(r, InvalidInput)]
    if json_output:
        emit_json(
            {
                "processed": len(results) - len(refused),
                "refused": len(refused),
                "messages": [
                    {"file": m.source.removeprefix("file:"), "refused": r.message}
                    if isinstance(r, InvalidInput)
                    else {"file": m.source.removeprefix("file:"), **_result_json(r)}
                    for m, r in zip(messages, results, strict=True)
                ],
            }
        )
        return
    out = console()
    for message, result in zip(messages, results, strict=True):
        out.print(Text(message.source.removeprefix("file:"), style="bold"))
        if isinstance(result, InvalidInput):
            out.print(Text(f"  not a message we can read: {result.message}", "red"))
        else:
            _print_result(result)
    out.print(
        f"{len(results) - len(refused)} message(s) processed"
        + (f", {len(refused)} refused" if refused else "")
    )


def _messages(paths: list[Path]) -> list[Incoming]:
    """Every message the arguments name, read before anything is processed."""
    if [str(p) for p in paths] == ["-"]:
        return [Incoming(sys.stdin.buffer.read(), "file:stdin")]
    found: list[Path] = []
    for path in paths:
        if str(path) == "-":
            raise InvalidInput("- (stdin) reads one message; give it alone")
        if path.is_dir():
            folders = [path, *(path / sub for sub in ("new", "cur") if (path / sub).is_dir())]
            found += sorted(f for folder in folders for f in folder.iterdir() if f.is_file())
        else:
            found.append(path)
    if not found:
        raise InvalidInput("no message file in " + ", ".join(str(p) for p in paths))
    return [Incoming(_read(f), f"file:{f.name}"[:200]) for f in found]


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}") from None


def _result_json(result: InboundResult) -> dict[str, Any]:
    data: dict[str, Any] = plain(result)
    data["matched"] = result.matched
    return data


def _print_result(result: InboundResult) -> None:
    out = console()
    head = Text.assemble((f"#{result.id} ", "dim"), (result.kind, "bold"), f" → {result.outcome}")
    if result.duplicate:
        head.append(" (seen before: nothing done again)", "yellow")
    out.print(head)
    out.print(Text(f"  why: {result.rule}: {result.evidence}"))
    if result.matched:
        out.print(
            Text(
                f"  answers email {short(result.email_id)} (enrollment "
                f"{short(result.enrollment_id)}, person {short(result.person_id)}), "
                f"matched by {result.match_by}"
            )
        )
    else:
        out.print(Text(f"  unmatched: {result.reason}", "yellow"))
    for action in result.actions:
        out.print(Text(f"  - {action}"))


@inbound_app.command("list")
def list_(
    ctx: typer.Context,
    unmatched: Annotated[
        bool, typer.Option("--unmatched", help="Only messages that answer none of our emails.")
    ] = False,
    unattributed: Annotated[
        bool,
        typer.Option(
            "--unattributed",
            help="Messages no workspace could be found for (ways in with --all-workspaces).",
        ),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    json_output: JsonOption = False,
) -> None:
    """What came in, newest first: class, outcome, and what it answered or why nothing."""
    env = env_of(ctx)
    if unattributed:
        with env.transaction() as db:
            rows = list_messages(db, workspace_id=None, unmatched=unmatched, limit=limit)
    else:
        with env.workspace() as (db, workspace):
            rows = list_messages(db, workspace_id=workspace.id, unmatched=unmatched, limit=limit)
    if json_output:
        emit_json(
            [
                {
                    "received_at": row.received_at,
                    "source": row.source,
                    "from": row.from_address,
                    "subject": row.subject,
                    "message_id": row.message_id,
                    **_result_json(row.result),
                }
                for row in rows
            ]
        )
        return
    if not rows:
        console().print(Text("No inbound messages.", "dim"))
        return
    table = Table(title="Inbound messages", title_justify="left")
    for column in ("id", "received", "from", "subject", "class", "outcome", "answers / why not"):
        table.add_column(column, overflow="fold")
    for row in rows:
        result = row.result
        answers = (
            f"email {result.email_id} ({result.match_by})" if result.matched else result.reason
        )
        table.add_row(
            str(result.id),
            short(row.received_at),
            Text(row.from_address),
            Text(row.subject[:80]),
            result.kind,
            result.outcome + (" (review)" if result.review_needed else ""),
            Text(answers),
        )
    console().print(table)


__all__ = ["inbound_app"]
