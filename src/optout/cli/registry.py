"""Which module holds each top-level command, and the line `optout --help` shows for it.

A command's module (and everything it imports: the database layer, the web app for
`serve`) is imported only when that command runs or shows its own help, so `optout
--help` and a quick command such as `explain` start without the rest. The lines below
are the first line of each command's own help; a test keeps the two the same.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    module: str
    summary: str


# In the order `optout --help` lists them.
COMMANDS: dict[str, Entry] = {
    "opt-out": Entry(
        "optout.cli.people",
        "Opt an address out of all email, now and for any record that gets it later.",
    ),
    "clear-opt-out": Entry(
        "optout.cli.people",
        "Lift an opt-out, or with --complaint a spam complaint: an explicit, audited act with "
        "a reason.",
    ),
    "explain": Entry(
        "optout.cli.explain",
        "May this person be enrolled in (or, with --send, emailed by) a sequence now? Why?",
    ),
    "history": Entry("optout.cli.people", "Everything that happened to a person, oldest first."),
    "enroll": Entry("optout.cli.sequences", "Enroll people by address or by filter."),
    "unenroll": Entry(
        "optout.cli.sequences", "Unenroll people from one sequence, or in bulk by status."
    ),
    "not-enrolled": Entry(
        "optout.cli.sequences", "Who the last automatic enrollment left out, each with the reason."
    ),
    "serve": Entry(
        "optout.cli.serve", "Serve the web app and the JSON API; migrate the database first."
    ),
    "worker": Entry("optout.cli.worker", "Send due emails."),
    "init": Entry(
        "optout.cli.workspace",
        "Bring the database to the current schema and create the workspace if it is missing.",
    ),
    "demo": Entry(
        "optout.cli.workspace",
        "Build (or rebuild from scratch) a demo workspace, then print a short tour.",
    ),
    "settings": Entry("optout.cli.workspace", "Show the workspace's settings, or change them."),
    "person": Entry(
        "optout.cli.person",
        "One person: their enrollments and emails still to go; add a person by hand.",
    ),
    "company": Entry("optout.cli.records", "Companies: add one by its domain."),
    "persona": Entry("optout.cli.records", "Personas: job-title keywords an audience can require."),
    "user": Entry("optout.cli.accounts", "Users who sign in to the web app."),
    "api-key": Entry("optout.cli.accounts", "API keys for the JSON API (/api/v1)."),
    "audience": Entry(
        "optout.cli.audiences", "Audiences: people filters (and personas) that feed sequences."
    ),
    "crm": Entry(
        "optout.cli.crm",
        "CRM sync: connect HubSpot or Salesforce, map fields, sync, read the log.",
    ),
    "exclusion": Entry(
        "optout.cli.exclusions",
        "Exclusions: company- or people-level rules that keep people out of sequences.",
    ),
    "import": Entry(
        "optout.cli.imports",
        "Import CSV files: people, companies, or a column straight into an exclusion.",
    ),
    "in-doubt": Entry(
        "optout.cli.in_doubt",
        "Emails that may or may not have been delivered: release or cancel them.",
    ),
    "inbound": Entry(
        "optout.cli.inbound",
        "Mail that comes back: replies, unsubscribe requests, auto-replies and bounces.",
    ),
    "sequence": Entry("optout.cli.sequences", "Create, show, pause, resume and archive sequences."),
    "mailbox": Entry(
        "optout.cli.mailboxes",
        "Sender mailboxes: daily limits, gaps between sends, time zones, pauses.",
    ),
    "ruleset": Entry(
        "optout.cli.sequences", "Rulesets: exclusions on/off, re-enrollment cooldown, company cap."
    ),
}
