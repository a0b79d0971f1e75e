"""The audit log in words, for pages and the command line alike: what happened (an
event's kind, such as `enrollment_refused`) and who did it (an actor such as
`priya@cli`), as a RevOps admin would say it. Pure: no I/O."""

from __future__ import annotations

# What each kind of event is called where people read it; a kind not listed reads as
# its words ("exclusion_created" as "Exclusion created").
EVENT_WORDS = {
    "enrolled": "Enrolled",
    "enrollment_refused": "Enrollment refused",
    "enrollment_ended": "Enrollment ended",
    "enrollment_finished": "Finished the sequence",
    "bulk_unenroll": "Unenrolled in bulk",
    "email_sent": "Email sent",
    "email_cancelled": "Email cancelled",
    "email_in_doubt": "Email perhaps sent (server did not confirm)",
    "email_released": "Email sent again after a check",
    "sending_refused": "Mail server refused our email",
    "reply": "Replied",
    "opted_out": "Opted out",
    "opt_out_cleared": "Opt-out lifted",
    "bounced": "Hard bounce",
    "complained": "Spam complaint",
    "complaint_cleared": "Spam complaint lifted",
    "inbound_reviewed": "Reply reviewed",
    "crm_sync": "CRM sync",
    "audience_exclusion_switched_on": "Audience exclusion switched back on",
    "audience_exclusion_switched_off": "Audience exclusion switched off",
    "sequence_auto_enroll_on": "Automatic enrollment turned on",
    "in_doubt_policy_changed": "Policy for emails in doubt changed",
    "reputation_lines_changed": "Reputation thresholds changed",
}

# Actors that are the product's own parts, named as a person would.
_ACTORS = {"crm-sync": "CRM sync", "worker": "sending worker"}
# How each channel of an opt-out is said after "via".
CHANNEL_WORDS = {
    "manual": "a team member",
    "unsubscribe_link": "the unsubscribe link",
    "reply": "a reply",
    "crm": "the CRM",
    "import": "an import",
    "api": "the API",
    "bounce": "a bounce",
    "complaint": "a spam complaint",
}
CLI_SUFFIX = "@cli"
API_KEY_PREFIX = "api-key:"


def event_words(kind: str) -> str:
    """What an event of `kind` is called where people read it."""
    return EVENT_WORDS.get(kind) or kind.replace("_", " ").capitalize()


def channel_words(channel: str) -> str:
    """How an opt-out came in, after "via": "the unsubscribe link"."""
    return CHANNEL_WORDS.get(channel) or channel.replace("_", " ")


def actor_words(actor: str) -> str:
    """Who acted, as people read it: `priya@cli` is "priya (command line)", an API key
    is named as one, the CRM sync and the sending worker as such; anyone else as recorded."""
    if actor.endswith(CLI_SUFFIX):
        login = actor[: -len(CLI_SUFFIX)]
        return f"{login} (command line)" if login else "command line"
    if actor.startswith(API_KEY_PREFIX):
        return f"API key “{actor[len(API_KEY_PREFIX) :]}”"
    return _ACTORS.get(actor, actor)
