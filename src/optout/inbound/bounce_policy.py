"""Whose failure a bounce reports, and so what it may do to the address (R7).

Pure. Only a failure that says the *address* is bad suppresses it at once. A full
mailbox or a message refused as spam says nothing final about the address: it is
transient and counts toward the soft-bounce limit. A refusal of *our* side (our
sender address, our server on a blocklist, a rate limit, a relay or authentication
refusal) is no failure of the recipient at all: it marks nobody, and is recorded
against the sending side, because one bad DNS record would otherwise mark every
recipient of the day bounced. The order of `RULES` is the precedence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# permanent: the address is bad; transient: counted toward the soft-bounce limit;
# delayed: a warning, the server keeps trying; sending_side: a refusal of our sender
# or server; none: no failure (delivered, relayed, expanded).
Severity = Literal["permanent", "transient", "delayed", "sending_side", "none"]

STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
SMTP_CODE = re.compile(r"(?<![\d.])([45])\d\d(?![\d.])")


@dataclass(frozen=True)
class Verdict:
    severity: Severity
    basis: str  # why, in a few words: the status code or the wording that decided


@dataclass(frozen=True)
class _Rule:
    severity: Severity
    basis: str
    status: re.Pattern[str] | None = None  # matched against the enhanced status code
    words: re.Pattern[str] | None = None  # searched in the diagnostic text


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_SENDER = _words(
    r"sender (?:address )?(?:rejected|refused|denied|unknown|invalid|verify failed|"
    r"domain (?:must exist|not found|does not exist))|"
    r"(?:after|in reply to) (?:the )?mail from|mail from\W{0,3}(?:command )?(?:rejected|refused)|"
    r"bad sender|sender domain|"
    r"\b(?:spf|dkim|dmarc)\b.{0,40}(?:fail|reject|invalid|policy|not pass)|"
    r"(?:fail|reject)\w*.{0,40}\b(?:spf|dkim|dmarc)\b|authentication (?:required|failed)|"
    r"unauthenticated (?:email|mail|sender)|not authorized to send"
)
_SERVER = _words(
    r"block ?list|black ?list|blocked using|(?<!not )listed (?:at|in|on|by)|spamhaus|spamcop|"
    r"barracuda|sorbs|\b(?:rbl|dnsbl|uceprotect)\b|(?:poor|low|bad) reputation|"
    r"reputation of|rate limit|rate-limit|too many (?:messages|connections|recipients|mails)|"
    r"throttl|exceeded (?:the )?(?:sending|message) (?:rate|limit)|unusual rate|"
    r"unexpected volume|user complaints|temporarily deferred|deferred due to|"
    r"relay(?:ing)? (?:denied|not permitted|prohibited|access denied)|"
    r"client host .{0,60}(?:rejected|blocked|refused)|\bptr\b|reverse dns|rdns|"
    r"(?:local|site|security) policy|policy (?:reasons|restrictions)|"
    r"connection (?:refused|timed out)"
)
_ADDRESS = _words(
    r"user unknown|unknown user|unknown or illegal (?:user|alias)|no such (?:user|recipient|"
    r"mailbox|address|person)|does not exist|doesn't exist|not exist|"
    r"not found|couldn't be found|could not be found|address (?:rejected|unknown|invalid)|"
    r"invalid (?:recipient|mailbox|address|user)|recipient (?:unknown|rejected|not found|invalid)|"
    r"mailbox (?:unavailable|disabled|not found|is disabled|inactive|closed)|"
    r"account (?:has been )?(?:disabled|closed|deleted|suspended|expired|inactive)|"
    r"no (?:such )?mailbox|unknown (?:recipient|mailbox|address|local)|"
    r"bad (?:destination|recipient|address)|not (?:a )?(?:valid|known) (?:user|recipient)|"
    r"user (?:doesn't|does not) (?:have|exist)|no longer (?:valid|available|in use|active)|"
    r"not listed in|isn't a valid|invalid address|addressee unknown|host (?:or domain )?"
    r"(?:name )?not found|unrouteable|unroutable|domain (?:not found|does not exist)|"
    r"no mx|name service error|undeliverable address|no account|unknown alias|"
    r"user not found|nie istnieje|unbekannt|inconnu|sconosciuto|desconocido"
)
_MAILBOX_FULL = _words(
    r"quota|mailbox (?:is )?full|over ?quota|full mailbox|exceeded storage|storage (?:limit|"
    r"allocation)|insufficient (?:disk )?space|disk full|too much mail|postfach voll"
)
_SPAM_OR_CONTENT = _words(
    r"\bspam\b|junk|content (?:rejected|filter)|virus|malware|message (?:rejected|refused|"
    r"blocked|content)|too (?:big|large)|size (?:limit|exceeds)|message length"
)
_DELAY = _words(
    r"will (?:retry|keep trying|be retried|continue)|still trying|delayed|not yet been "
    r"delivered|retry (?:time|timeout) not reached|temporar|warning: message"
)

RULES: tuple[_Rule, ...] = (
    _Rule("sending_side", "our sender was refused", status=re.compile(r"^5\.1\.[78]$")),
    _Rule("sending_side", "our sender was refused", words=_SENDER),
    _Rule("sending_side", "our sending server was refused", words=_SERVER),
    _Rule("transient", "mailbox full", status=re.compile(r"^[45]\.2\.2$"), words=None),
    _Rule("transient", "mailbox full", words=_MAILBOX_FULL),
    _Rule("permanent", "the address does not exist", status=re.compile(r"^5\.1\.\d+$")),
    _Rule("permanent", "the mailbox is disabled", status=re.compile(r"^5\.2\.1$")),
    _Rule("permanent", "no such recipient or domain", status=re.compile(r"^5\.4\.[14]$")),
    _Rule("permanent", "the address does not exist", words=_ADDRESS),
    _Rule("transient", "the message was refused", words=_SPAM_OR_CONTENT),
    _Rule("sending_side", "refused by policy", status=re.compile(r"^5\.7\.\d+$")),
)


def judge(status: str, diagnostic: str, *, fallback: Severity) -> Verdict:
    """The severity of one recipient's failure, by its status code and wording. A 4.x.x
    code is never permanent; an otherwise unexplained 5.x.x is. `fallback` is what the
    reader that found it says when neither code nor wording decides."""
    found_code = SMTP_CODE.search(diagnostic)
    code = status or (found_code.group(0) if found_code else "")
    for rule in RULES:
        if rule.status is not None and rule.status.match(status):
            return Verdict(rule.severity, f"{rule.basis} (status {status})")
        if rule.words is not None:
            found = rule.words.search(diagnostic)
            if found:
                basis = f"{rule.basis} ({found.group(0).lower()!r})"
                if rule.severity == "permanent" and code.startswith("4"):
                    return Verdict("transient", f"{basis}, but a temporary code {code}")
                return Verdict(rule.severity, basis)
    if code.startswith("4"):
        return Verdict("transient", f"temporary failure ({code})")
    if code.startswith("5"):
        return Verdict("permanent", f"permanent failure ({code})")
    if _DELAY.search(diagnostic):
        return Verdict("delayed", "the server keeps trying")
    return Verdict(fallback, "the reader's verdict")
