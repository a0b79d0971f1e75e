"""Every table of optout, as SQLAlchemy Core metadata.

Every row belongs to one workspace and every query is scoped by it. Times are
naive UTC. Emails and domains are stored in canonical form (`optout.normalize`),
so comparisons need no case folding and can use the indexes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

from optout.db.skeletons import skeleton_sql

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_N_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


# A partial index names its condition on each backend. `postgresql_where` given to `Index`
# makes SQLAlchemy import its whole PostgreSQL dialect to check the argument, about 40 ms
# of every command's start on SQLite; so the PostgreSQL condition waits in the index's
# `info` and is attached by `use_postgresql()`, which `optout.db.engine.create_engine`
# calls before it returns a PostgreSQL engine.
POSTGRESQL_WHERE = "postgresql_where"


def use_postgresql() -> None:
    """Attach the PostgreSQL condition of every partial index (idempotent)."""
    for table in metadata.tables.values():
        for index in table.indexes:
            where = index.info.get(POSTGRESQL_WHERE)
            if where is not None:
                index.dialect_kwargs[POSTGRESQL_WHERE] = text(where)


def _workspace_id() -> Column[int]:
    return Column(
        "workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )


workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    # Share of all people an exclusion may match before a save needs confirmation (R22).
    Column("mass_exclusion_share", Float, nullable=False, default=0.2),
    # Number of enrollments a save may end before it needs confirmation (R22).
    Column("mass_unenroll_limit", Integer, nullable=False, default=1000),
    # R4: an unsubscribe reply opts out automatically, or only flags for review.
    Column("auto_opt_out_on_unsubscribe_reply", Boolean, nullable=False, default=True),
    # A person without a company whose email domain names no company yet: create that
    # company (and link them), or leave them unlinked until one appears.
    Column("create_companies_from_email_domain", Boolean, nullable=False, default=True),
    # An email left in doubt by a worker that stopped mid-delivery is sent again after
    # this many minutes (at least once); NULL holds it until a person decides.
    Column("in_doubt_resend_minutes", Integer),
    Column("created_at", DateTime, nullable=False),
    # The reputation breaker (R40): over a mailbox's last sends, a hard-bounce or complaint
    # share above these pauses it; a complaint share above the domain line pauses every
    # mailbox of its sending domain.
    Column("bounce_pause_rate", Float, nullable=False, server_default="0.05"),
    Column("complaint_pause_rate", Float, nullable=False, server_default="0.001"),
    Column("domain_complaint_pause_rate", Float, nullable=False, server_default="0.003"),
    # A random token that database triggers change on every write to the workspace's
    # exclusions: readers reuse the rules they parsed while it stays the same.
    Column("rules_version", BigInteger, nullable=False, server_default="0"),
)

companies = Table(
    "companies",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("domain", String(255)),
    # Registrable name without public suffix (`acme` for acme.co.uk): finds near-miss variants.
    Column("domain_label", String(255)),
    Column("name", String(300), nullable=False, default=""),
    Column("fields", JSON, nullable=False, default=dict),
    # Linked companies (R12): a company may have one parent; `group_id` is the id of the
    # top-most ancestor, kept by the link service so a group is one indexed lookup.
    Column("parent_id", Integer, ForeignKey("companies.id", ondelete="SET NULL")),
    Column("group_id", Integer, nullable=True),
    Column("last_replied_at", DateTime),
    Column("last_activity_at", DateTime),  # activity from other sources than our sends (R21)
    Column("last_activity_any_at", DateTime),  # activity from every source, ours included
    Column("crm_id", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("workspace_id", "domain"),
    Index("ix_companies_ws_label", "workspace_id", "domain_label"),
    Index("ix_companies_ws_skeleton", "workspace_id", text(skeleton_sql("domain"))),
    Index("ix_companies_group", "group_id"),
    # Prefix search by name (`services.reads.search`); PostgreSQL: with text_pattern_ops, and a
    # pattern index on domain too (migration 0007).
    Index("ix_companies_ws_name_key", "workspace_id", text("lower(name)")),
    Index("ix_companies_ws_id", "workspace_id", "id"),  # newest first, a page at a time
)

people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("email", String(320), nullable=False),
    Column("email_domain", String(255), nullable=False),
    Column("first_name", String(200), nullable=False, default=""),
    Column("last_name", String(200), nullable=False, default=""),
    Column("title", String(300), nullable=False, default=""),
    Column("status", String(100), nullable=False, default=""),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="SET NULL")),
    # How the company was set: `crm`, `column` (an import's mapped column), `email_domain`
    # (association by the address's domain) or `manual` (a user; with no company, it keeps
    # the person unlinked). NULL: not recorded (set before this was kept).
    Column("company_link_source", String(16)),
    Column("fields", JSON, nullable=False, default=dict),
    Column("last_activity_at", DateTime),  # other sources only (R21)
    Column("last_activity_any_at", DateTime),
    Column("last_replied_at", DateTime),
    Column("last_emailed_at", DateTime),
    # Whether the address has opted out, hard-bounced or complained: kept from
    # `suppressions` by triggers (migrations 0012, 0015) on every path, so the eligible set
    # reads them from the row it scans. Never written by the code; the suppressions hold
    # the evidence.
    Column("opted_out", Boolean, nullable=False, server_default=false()),
    Column("bounced", Boolean, nullable=False, server_default=false()),
    Column("complained", Boolean, nullable=False, server_default=false()),
    Column("crm_id", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # An IANA zone name (`Europe/Berlin`); NULL: unknown (R38).
    Column("time_zone", String(64)),
    # Duplicates by address are allowed (CRM Lead and Contact); suppression is by address (R1).
    Index("ix_people_ws_email", "workspace_id", "email"),
    Index("ix_people_ws_email_domain", "workspace_id", "email_domain"),
    Index("ix_people_ws_email_skeleton", "workspace_id", text(skeleton_sql("email_domain"))),
    Index("ix_people_company", "company_id"),
    # Prefix search by name (`services.reads.search`); PostgreSQL: with text_pattern_ops, and a
    # pattern index on email too (migration 0007).
    Index("ix_people_ws_full_name", "workspace_id", text("lower(first_name || ' ' || last_name)")),
    Index("ix_people_ws_last_name", "workspace_id", text("lower(last_name)")),
    # Newest first, a page at a time; and the eligible set's scan, which reads every person
    # of the workspace from this index alone (migrations 0012, 0015).
    Index(
        "ix_people_ws_id",
        "workspace_id",
        "id",
        "company_id",
        "opted_out",
        "bounced",
        "complained",
    ),
)

opportunities = Table(
    "opportunities",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(300), nullable=False, default=""),
    Column("stage", String(100), nullable=False, default=""),
    Column("amount", Float),
    Column("is_closed", Boolean, nullable=False, default=False),
    Column("is_won", Boolean, nullable=False, default=False),
    Column("close_date", DateTime),
    Column("fields", JSON, nullable=False, default=dict),
    Column("crm_id", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_opportunities_company", "company_id"),
)

# Contact roles: which people take part in which opportunity (R20).
opportunity_contacts = Table(
    "opportunity_contacts",
    metadata,
    Column(
        "opportunity_id",
        Integer,
        ForeignKey("opportunities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(100), nullable=False, default=""),
    Index("ix_opportunity_contacts_person", "person_id"),
)

# Suppressed addresses: opt-outs, hard bounces and spam complaints hold for the address, not
# the record (R1, R7, R36). A complaint's `reason` holds its report (feedback type, reporting
# domain, then the caller's words) in the form `optout.eligibility.complaints` writes.
SUPPRESSION_KINDS = ("opt_out", "bounce", "complaint")

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("email", String(320), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("since", DateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    UniqueConstraint("workspace_id", "email", "kind"),
    CheckConstraint("kind IN ('opt_out', 'bounce', 'complaint')", name="kind"),
)

# Append-only ledger of every suppression and every audited clearing of one (R2, R33, R36).
suppression_ledger = Table(
    "suppression_ledger",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("email", String(320), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("action", String(16), nullable=False),  # added | cleared | repeated
    Column("at", DateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("evidence", Text, nullable=False, default=""),
    Index("ix_suppression_ledger_ws_email", "workspace_id", "email"),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE")),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE")),
    Column("kind", String(32), nullable=False),  # email_sent, reply, meeting, call, crm_activity
    # Who wrote it: `optout` for our own sends and write-backs, else the CRM or a user (R21).
    Column("source", String(32), nullable=False),
    Column("sequence_id", Integer, ForeignKey("sequences.id", ondelete="SET NULL")),
    Column("occurred_at", DateTime, nullable=False),
    Index("ix_activities_person", "person_id"),
)

exclusions = Table(
    "exclusions",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("name", String(200), nullable=False),
    Column("level", String(16), nullable=False),
    Column("filter", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("exclude_from_sequences", Boolean, nullable=False, default=False),
    Column("unenroll_existing_on_save", Boolean, nullable=False, default=False),
    # The clock its stored matches hold for (`services.decision_index`); None: not stored yet.
    Column("matched_at", DateTime),
    # Archived: applies nowhere and is left out of the default list until restored.
    Column("archived_at", DateTime),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("workspace_id", "name"),
    CheckConstraint("level IN ('company', 'people')", name="level"),
)

# The decision index (`optout.services.decision_index`): who each exclusion matches, kept true in
# the transaction of every write. People-level rules store people; company-level rules store
# linked-company groups (R12). Enabled, tiers and switch-offs are applied when reading.
exclusion_matches = Table(
    "exclusion_matches",
    metadata,
    Column(
        "exclusion_id", Integer, ForeignKey("exclusions.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
    # By person, with the rule: a person's matches are read from the index alone, and the
    # eligible set checks them against the rules that apply (`eligibility.matching`).
    Index("ix_exclusion_matches_person_rule", "person_id", "exclusion_id"),
)

exclusion_group_matches = Table(
    "exclusion_group_matches",
    metadata,
    Column(
        "exclusion_id", Integer, ForeignKey("exclusions.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("group_id", Integer, primary_key=True),
    Index("ix_exclusion_group_matches_group_rule", "group_id", "exclusion_id"),
)

# Rows whose matches a write made stale, filled by database triggers on people, companies,
# opportunities and contact roles; emptied by `decision_index.flush` before the writing transaction
# commits. kind: 'p' person id, 'c' company id (its people), 'g' company group id. `txn`
# keeps concurrent PostgreSQL transactions apart (their id; SQLite has one writer: 0).
match_queue = Table(
    "match_queue",
    metadata,
    Column("txn", BigInteger, primary_key=True, server_default="0"),
    Column("kind", String(1), primary_key=True),
    Column("key", Integer, primary_key=True),
    Column("workspace_id", Integer, nullable=False),
)

personas = Table(
    "personas",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("name", String(200), nullable=False),
    Column("include_keywords", JSON, nullable=False, default=list),
    Column("exclude_keywords", JSON, nullable=False, default=list),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("workspace_id", "name"),
)

audiences = Table(
    "audiences",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("name", String(200), nullable=False),
    Column("filter", JSON),  # a people-level filter; NULL means everyone
    Column("persona_id", Integer, ForeignKey("personas.id", ondelete="RESTRICT")),
    Column("created_at", DateTime, nullable=False),
    # The instant its stored members (`audience_matches`) hold for; None: not stored. An
    # audience is stored once a sequence enrolls from it by itself (migration 0019).
    Column("matched_at", DateTime),
    UniqueConstraint("workspace_id", "name"),
)

# The people an audience holds, kept true like an exclusion's matches
# (`services.audience_index`).
audience_matches = Table(
    "audience_matches",
    metadata,
    Column(
        "audience_id", Integer, ForeignKey("audiences.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_audience_matches_person", "person_id", "audience_id"),
    # On SQLite the key is the table (migration 0023): each row in two b-trees, not three.
    sqlite_with_rowid=False,
)

# Exclusions an audience switches off for enrollments that come from it (R16 level 4).
audience_exclusion_switches = Table(
    "audience_exclusion_switches",
    metadata,
    Column(
        "audience_id", Integer, ForeignKey("audiences.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "exclusion_id", Integer, ForeignKey("exclusions.id", ondelete="CASCADE"), primary_key=True
    ),
)

rulesets = Table(
    "rulesets",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("name", String(200), nullable=False),
    Column("exclusions_enabled", Boolean, nullable=False, default=True),
    Column("reenroll_cooldown_days", Integer, nullable=False, default=0),
    Column("max_active_per_company", Integer),  # NULL: no cap
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("workspace_id", "name"),
)

sequences = Table(
    "sequences",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("name", String(200), nullable=False),
    Column("ruleset_id", Integer, ForeignKey("rulesets.id", ondelete="RESTRICT"), nullable=False),
    Column("audience_id", Integer, ForeignKey("audiences.id", ondelete="SET NULL")),
    Column("status", String(16), nullable=False, default="active"),
    Column("from_address", String(320), nullable=False, default=""),
    Column("reply_to", String(320), nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    # The sending window (R38), read in the recipient's time zone: days of the week as bits
    # (Monday 1 ... Sunday 64), minutes of the day from (inclusive) until (exclusive), and
    # whether waits count business days. 127, 0, 1440: any time (migration 0016).
    Column("send_days", Integer, nullable=False, server_default="127"),
    Column("send_from_minute", Integer, nullable=False, server_default="0"),
    Column("send_until_minute", Integer, nullable=False, server_default="1440"),
    Column("business_day_waits", Boolean, nullable=False, server_default=false()),
    # Enrolls its audience's members by itself (R41), from and until these instants when
    # set (migration 0019).
    Column("auto_enroll", Boolean, nullable=False, server_default=false()),
    Column("auto_enroll_from", DateTime),
    Column("auto_enroll_until", DateTime),
    UniqueConstraint("workspace_id", "name"),
    CheckConstraint("status IN ('active', 'paused', 'archived')", name="status"),
)

MAILBOX_STATUSES = ("active", "paused")

# The sender addresses of a workspace (R37, R40). A mailbox sends through the shared relay
# (`smtp_url` NULL) or its own server (`smtp_url` without the password, which is kept in
# `smtp_password`, encrypted like the CRM secrets). `daily_limit` NULL: no daily limit (a
# mailbox made from a sequence's From address before mailboxes existed). The claim keeps
# the capacity counters: sends counted in `sends_day` (the mailbox's own calendar day, in
# `time_zone`), and the earliest moment of its next send (gap plus jitter).
mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("address", String(320), nullable=False),  # canonical
    Column("display_name", String(200), nullable=False, default=""),
    Column("signature", Text, nullable=False, default=""),
    Column("smtp_url", String(1000)),
    Column("smtp_password", Text),  # Fernet token
    Column("daily_limit", Integer),
    Column("min_gap_seconds", Integer, nullable=False, default=90),
    Column("gap_jitter", Float, nullable=False, default=0.5),  # share of the gap added at random
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("owner_user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("status", String(16), nullable=False, default="active"),
    Column("pause_reason", Text, nullable=False, default=""),
    Column("paused_at", DateTime),
    Column("paused_by", String(200)),
    Column("sends_day", Date),
    Column("sends_today", Integer, nullable=False, default=0),
    Column("next_send_at", DateTime),
    # Its own IMAP login, where replies to it arrive (the password a Fernet token).
    Column("imap_host", String(255)),
    Column("imap_port", Integer),
    Column("imap_user", String(320)),
    Column("imap_password", Text),
    Column("imap_ssl", Boolean, nullable=False, default=True, server_default=true()),
    Column("imap_folder", String(200), nullable=False, default="INBOX", server_default="INBOX"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("workspace_id", "address"),
    CheckConstraint("status IN ('active', 'paused')", name="status"),
    CheckConstraint("daily_limit IS NULL OR daily_limit >= 0", name="daily_limit"),
    CheckConstraint("min_gap_seconds >= 0", name="min_gap_seconds"),
)

# The mailboxes a sequence sends from; each enrollment is given one of them (R37).
sequence_mailboxes = Table(
    "sequence_mailboxes",
    metadata,
    Column(
        "sequence_id", Integer, ForeignKey("sequences.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_sequence_mailboxes_mailbox", "mailbox_id"),
)

sequence_steps = Table(
    "sequence_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sequence_id", Integer, ForeignKey("sequences.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("wait_seconds", Integer, nullable=False, default=0),
    Column("subject", Text, nullable=False, default=""),
    Column("body_text", Text, nullable=False, default=""),
    Column("body_html", Text, nullable=False, default=""),
    UniqueConstraint("sequence_id", "position"),
    CheckConstraint("kind IN ('email', 'wait')", name="kind"),
)

ENROLLMENT_STATUSES = (
    "not_started",
    "in_progress",
    "finished",
    "unenrolled",
    "replied",
    "bounced",
    "opted_out",
)
ACTIVE_STATUSES = ("not_started", "in_progress")

enrollments = Table(
    "enrollments",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("sequence_id", Integer, ForeignKey("sequences.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False, default="not_started"),
    Column("source", String(16), nullable=False, default="manual"),  # manual | audience
    Column("audience_id", Integer, ForeignKey("audiences.id", ondelete="SET NULL")),
    Column("next_position", Integer, nullable=False, default=0),
    Column("next_run_at", DateTime),
    Column("enrolled_at", DateTime, nullable=False),
    Column("enrolled_by", String(200), nullable=False),
    Column("ended_at", DateTime),
    Column("end_reason", Text),
    # The mailbox every step of this enrollment is sent from, given when it starts (R37).
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id", ondelete="SET NULL")),
    Index("ix_enrollments_seq_status", "sequence_id", "status"),
    Index("ix_enrollments_mailbox_status", "mailbox_id", "status"),
    Index("ix_enrollments_person", "person_id", "sequence_id"),
    Index("ix_enrollments_status_next", "status", "next_run_at"),
    # A person is active in a sequence at most once.
    Index(
        "uq_enrollments_active",
        "sequence_id",
        "person_id",
        unique=True,
        sqlite_where=text("status IN ('not_started', 'in_progress')"),
        info={POSTGRESQL_WHERE: "status IN ('not_started', 'in_progress')"},
    ),
    CheckConstraint(
        "status IN ('not_started', 'in_progress', 'finished', 'unenrolled', 'replied', "
        "'bounced', 'opted_out')",
        name="status",
    ),
)

outbound_emails = Table(
    "outbound_emails",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column(
        "enrollment_id", Integer, ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=False
    ),
    Column("step_id", Integer, ForeignKey("sequence_steps.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False, default="queued"),
    Column("due_at", DateTime, nullable=False),
    Column("lease_until", DateTime),  # a claim not finished by then is taken again
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("sent_at", DateTime),
    Column("message_id", String(300)),
    Column("cancel_reason", Text),
    # Delivery, recorded as it happens: the message was about to be handed to the server
    # (its Message-ID is written with it), and the server accepted it with `smtp_reply`.
    # A claim that expires handed over but not accepted is held `in_doubt`.
    Column("handed_over_at", DateTime),
    Column("accepted_at", DateTime),
    Column("smtp_reply", Text),
    Column("in_doubt_at", DateTime),
    # The mailbox that claimed it for sending (its enrollment's, written by the claim): the
    # reputation breaker reads a mailbox's last sends from here (R40).
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id", ondelete="SET NULL")),
    # At most one email per (enrollment, step), ever.
    UniqueConstraint("enrollment_id", "step_id"),
    Index("ix_outbound_emails_status_due", "status", "due_at"),
    Index("ix_outbound_emails_person", "person_id"),
    # Inbound mail finds the email it answers by the Message-IDs it names (0022).
    Index("ix_outbound_emails_message_id", "message_id"),
    Index("ix_outbound_emails_mailbox_handed", "mailbox_id", "handed_over_at"),
    CheckConstraint(
        "status IN ('queued', 'sending', 'sent', 'cancelled', 'in_doubt')", name="status"
    ),
)

# The people an automatic enrollment from an audience left out, with the reason (R30).
enrollment_skips = Table(
    "enrollment_skips",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("sequence_id", Integer, ForeignKey("sequences.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("check", String(32), nullable=False),
    Column("exclusion_id", Integer, ForeignKey("exclusions.id", ondelete="SET NULL")),
    Column("checked_at", DateTime, nullable=False),
    # When a reason that ends with time (a cooldown, a company's cap) is asked again.
    Column("retry_at", DateTime),
    UniqueConstraint("sequence_id", "person_id"),
    Index("ix_enrollment_skips_retry", "retry_at"),
)

# Who an automatic enrollment is to enroll next, in the order they were queued: members
# new to an audience, or not enrolled before and maybe eligible now (migration 0019).
enrollment_queue = Table(
    "enrollment_queue",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("sequence_id", Integer, ForeignKey("sequences.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("queued_at", DateTime, nullable=False),
    UniqueConstraint("sequence_id", "person_id"),
    Index("ix_enrollment_queue_workspace", "workspace_id", "id"),
)

# Append-only audit of every state change and every blocking decision (R35).
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("at", DateTime, nullable=False),
    Column("kind", String(48), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("person_id", Integer),
    Column("company_id", Integer),
    Column("sequence_id", Integer),
    Column("enrollment_id", Integer),
    Column("email_id", Integer),
    Column("exclusion_id", Integer),
    Column("rule", String(64)),
    Column("detail", JSON, nullable=False, default=dict),
    Index("ix_events_person", "person_id", "id"),
    Index("ix_events_ws_at", "workspace_id", "at"),
    Index("ix_events_exclusion", "exclusion_id", "id"),
)

# Changes made here that the CRM must learn (R3, R31): the CRM sync drains pending rows and
# writes them only where the field is mapped `read_write` (else it marks them `skipped`).
# At most one pending row per (workspace, address, field): a repeated opt-out adds none.
crm_writebacks = Table(
    "crm_writebacks",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("email", String(320), nullable=False),
    Column("field", String(64), nullable=False),  # our field, e.g. `email_opt_out`
    Column("value", Text, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_crm_writebacks_ws_status", "workspace_id", "status", "id"),
    Index(
        "uq_crm_writebacks_pending",
        "workspace_id",
        "email",
        "field",
        unique=True,
        sqlite_where=text("status = 'pending'"),
        info={POSTGRESQL_WHERE: "status = 'pending'"},
    ),
    CheckConstraint("status IN ('pending', 'done', 'failed', 'skipped')", name="status"),
)

# --- CRM sync (R31, R32, R33) ------------------------------------------------------------

# A CRM the workspace syncs with, at most one of each kind. Secrets are never stored:
# `secrets` maps a role (`token`, `webhook_secret`, `client_secret`) to the NAME of an
# environment variable that holds it; `settings` holds the rest (API version, page sizes,
# rate limits, OAuth client id, private key file path).
crm_connections = Table(
    "crm_connections",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("kind", String(16), nullable=False),
    Column("base_url", String(500), nullable=False),
    Column("secrets", JSON, nullable=False, default=dict),
    Column("settings", JSON, nullable=False, default=dict),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("workspace_id", "kind"),
    CheckConstraint("kind IN ('hubspot', 'salesforce')", name="kind"),
)


def _crm_connection_id(primary_key: bool = False) -> Column[int]:
    return Column(
        "connection_id",
        Integer,
        ForeignKey("crm_connections.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


# Which CRM field feeds which of ours, per CRM object (R31); `read_write` also writes ours back.
crm_field_mappings = Table(
    "crm_field_mappings",
    metadata,
    Column("id", Integer, primary_key=True),
    _crm_connection_id(),
    Column("crm_object", String(64), nullable=False),
    Column("crm_field", String(128), nullable=False),
    Column("our_field", String(80), nullable=False),
    Column("mode", String(16), nullable=False, default="read"),
    UniqueConstraint("connection_id", "crm_object", "our_field"),
    CheckConstraint("mode IN ('read', 'read_write')", name="mode"),
)

# Incremental sync per CRM object (R32): changes up to `bookmark` are applied. It moves only
# with a committed page and never past the start of the run that moved it.
crm_sync_state = Table(
    "crm_sync_state",
    metadata,
    _crm_connection_id(primary_key=True),
    Column("crm_object", String(64), primary_key=True),
    Column("bookmark", DateTime),
    Column("status", String(16), nullable=False, default="idle"),
    Column("last_started_at", DateTime),
    Column("last_finished_at", DateTime),
    Column("last_error", Text, nullable=False, default=""),
)

# One row per sync run or pushed change, with its counts (R32).
crm_sync_log = Table(
    "crm_sync_log",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    _crm_connection_id(),
    Column("trigger", String(16), nullable=False),  # schedule | manual | full | webhook
    Column("status", String(16), nullable=False),  # running | ok | failed | stopped
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("counts", JSON, nullable=False, default=dict),
    Column("api_calls", Integer, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    Index("ix_crm_sync_log_connection", "connection_id", "id"),
)

# Every CRM record seen: what it became here (person, company or opportunity id; NULL when it
# could not be used) and the modification time applied, so overlapping reads and pushes of a
# change already applied are skipped, and links between records resolve without the CRM.
crm_records = Table(
    "crm_records",
    metadata,
    _crm_connection_id(primary_key=True),
    Column("crm_object", String(64), primary_key=True),
    Column("crm_id", String(64), primary_key=True),
    Column("local_id", Integer),
    Column("modified_at", DateTime, nullable=False),
)

# Ids of pushed changes already handled (HubSpot event ids, Salesforce notification ids).
crm_webhook_receipts = Table(
    "crm_webhook_receipts",
    metadata,
    _crm_connection_id(primary_key=True),
    Column("receipt_id", String(128), primary_key=True),
    Column("received_at", DateTime, nullable=False),
    Index("ix_crm_webhook_receipts_received", "received_at"),
)


INBOUND_KINDS = ("reply", "unsubscribe", "auto_reply", "bounce", "unclassified", "complaint")

# Every message that came back (replies, auto-replies, bounces), matched or not: never dropped.
# `workspace_id` is NULL only when a way in that serves every workspace could not tell
# whose message it is; such rows are listed apart (`optout inbound list --unattributed`).
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE")),
    Column("received_at", DateTime, nullable=False),
    Column("source", String(200), nullable=False),  # smtp, imap:<mailbox>, file, http
    # sha256 of (scope, Message-ID, body): the same message fetched or delivered twice is one row.
    Column("dedup_key", String(64), nullable=False),
    Column("message_id", String(500)),
    Column("from_address", String(320), nullable=False, default=""),
    Column("subject", Text, nullable=False, default=""),
    Column("headers", Text, nullable=False, default=""),
    Column("raw", LargeBinary, nullable=False),  # capped; `raw_size` is the size received
    Column("raw_size", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("rule", String(48), nullable=False),  # the classification rule that decided
    Column("evidence", JSON, nullable=False, default=dict),
    Column("new_text", Text, nullable=False, default=""),
    Column("match_by", String(32)),  # NULL: unmatched
    Column("person_id", Integer, ForeignKey("people.id", ondelete="SET NULL")),
    Column("enrollment_id", Integer, ForeignKey("enrollments.id", ondelete="SET NULL")),
    Column("email_id", Integer, ForeignKey("outbound_emails.id", ondelete="SET NULL")),
    Column("outcome", String(24), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("review_needed", Boolean, nullable=False, default=False),  # R4 with auto opt-out off
    # The review queue's decision on a flagged or unmatched message: who, when, what.
    Column("reviewed_at", DateTime),
    Column("reviewed_by", String(200)),
    Column("review_decision", String(16)),  # opted_out | dismissed | attached
    UniqueConstraint("dedup_key"),
    Index("ix_inbound_messages_ws_id", "workspace_id", "id"),
    CheckConstraint(
        "kind IN ('reply', 'unsubscribe', 'auto_reply', 'bounce', 'unclassified', 'complaint')",
        name="kind",
    ),
)

# Where each polled IMAP folder stopped: resumes after a restart (with dedup as the backstop).
inbound_mailboxes = Table(
    "inbound_mailboxes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE")),
    Column("mailbox", String(500), nullable=False),  # scope + imap://user@host:port/folder
    Column("uidvalidity", BigInteger, nullable=False),
    Column("last_uid", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("mailbox"),
)

# Transient (4.x.x) bounces per address; after the workspace's limit they count as hard (R7).
inbound_soft_bounces = Table(
    "inbound_soft_bounces",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("email", String(320), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("first_at", DateTime, nullable=False),
    Column("last_at", DateTime, nullable=False),
    Column("last_status", String(32), nullable=False, default=""),
    UniqueConstraint("workspace_id", "email"),
)

# Accounts: people who sign in to the service, their roles per workspace, sessions, API keys.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("password_hash", String(300), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("role", String(16), nullable=False),
    CheckConstraint("role IN ('member', 'admin')", name="role"),
)

# An address invited into a workspace: the user it belongs to accepts or declines after
# signing in (services.access.invitations); one row per workspace and address.
invitations = Table(
    "invitations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "workspace_id", Integer, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("email", String(320), nullable=False),
    Column("role", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("invited_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("answered_at", DateTime),
    CheckConstraint("role IN ('member', 'admin')", name="role"),
    CheckConstraint("status IN ('pending', 'accepted', 'declined')", name="status"),
    UniqueConstraint("workspace_id", "email"),
    Index("ix_invitations_email", "email", "status"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the cookie
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    _workspace_id(),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),  # shown, and used to look up
    Column("secret_hash", String(64), nullable=False),  # sha256 of the secret part
    Column("role", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("revoked_at", DateTime),
    CheckConstraint("role IN ('member', 'admin')", name="role"),
)

# Sign-in attempts, kept so that a limit on failures holds across every web process: per
# account (the address typed in) and per client address, over a sliding window.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),  # as typed, trimmed and lower-cased
    Column("client", String(64), nullable=False),  # the client's IP address
    Column("succeeded", Boolean, nullable=False),
    Column("at", DateTime, nullable=False),
    Index("ix_login_attempts_email_at", "email", "at"),
    Index("ix_login_attempts_client_at", "client", "at"),
)

# Secret values of a CRM connection (token, webhook or client secret) stored in the
# database instead of named environment variables: encrypted (Fernet, the keys of
# OPTOUT_ENCRYPTION_KEYS), never in clear.
crm_secrets = Table(
    "crm_secrets",
    metadata,
    _crm_connection_id(primary_key=True),
    Column("role", String(32), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# DKIM private keys kept in the database (instead of a key file), encrypted like CRM secrets.
dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain", String(253), nullable=False),
    Column("selector", String(63), nullable=False),
    Column("private_key", Text, nullable=False),  # Fernet token of the PEM
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("domain", "selector"),
)


JOB_KINDS = ("bulk_unenroll", "import", "exclusion_save", "crm_sync")
JOB_STATES = ("queued", "running", "done", "failed")

# Long work run in the background with its progress (bulk unenroll, CSV imports, saves
# that unenroll many): queued by a page or the API, claimed by a runner, which records
# each committed step in `done` and beats `heartbeat_at`; a job whose runner stopped
# beating is claimed again (its steps are idempotent) or failed with the reason.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    _workspace_id(),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", JSON, nullable=False, default=dict),
    Column("done", Integer, nullable=False, default=0),
    Column("total", Integer),  # NULL until the runner has counted the work
    Column("result", JSON),  # the summary shown at the end
    Column("error", Text, nullable=False, default=""),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("heartbeat_at", DateTime),
    Column("finished_at", DateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("runner", String(64)),  # the claim of the runner working on it
    Index("ix_jobs_state_id", "state", "id"),
    Index("ix_jobs_workspace_id_id", "workspace_id", "id"),
    CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state"),
)

# Settings of the installation that every process shares (link keys, public address, mail
# relay), so that a worker on another machine needs only the database URL
# (optout.deployment).
deployment_settings = Table(
    "deployment_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)
