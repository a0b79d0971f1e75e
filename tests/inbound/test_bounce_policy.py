"""Whose failure a bounce reports (R7): only one about the address marks it bounced at
once; a full mailbox or a message refused as spam counts as soft; a refusal of our
own sender or server marks nobody. The wording below is real servers' (Postfix,
Exchange, Gmail, Yahoo, Domino) and RFC 3463's status codes."""

from __future__ import annotations

import pytest

from optout.inbound.bounce_policy import judge

# status | diagnostic | severity
CASES = """
5.1.1 | 550 5.1.1 user unknown | permanent
5.2.1 | 550 5.2.1 mailbox disabled | permanent
5.4.4 | unable to route: no mail hosts for domain | permanent
      | 550 Requested action not taken: mailbox unavailable | permanent
5.0.0 | 550 unknown or illegal user | permanent
      | User carlosr73 (x@example.com) not listed in Domino Directory | permanent
5.7.1 | 554 5.7.1 Message rejected as spam | transient
5.2.2 | 552 5.2.2 Mailbox full | transient
5.0.0 | recipient reached disk quota | transient
5.3.4 | 552 5.3.4 Message size exceeds fixed limit | transient
4.2.2 | 452 4.2.2 Over quota | transient
4.1.1 | 450 4.1.1 <x@example.com>: Recipient address rejected: User unknown | transient
      | 421 try again later | transient
5.1.8 | 553 5.1.8 <sam@acme-sales.com>... Domain of sender address does not exist | sending_side
5.1.7 | 550 5.1.7 Invalid address | sending_side
5.7.1 | 550 5.7.1 <sam@acme-sales.com>: Sender address rejected: Access denied | sending_side
      | 554 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org | sending_side
5.7.1 | 550 5.7.1 Service unavailable, client host blocked using Spamhaus | sending_side
      | 550 5.7.26 Unauthenticated email from acme-sales.com is not accepted due to domain's DMARC policy | sending_side
5.7.1 | 550 5.7.1 Email rejected per SPF policy: acme-sales.com does not designate 192.0.2.7 | sending_side
4.7.0 | 421 4.7.0 [192.0.2.7] unusual rate of unsolicited mail; rate limited | sending_side
      | 421 4.7.28 unusual rate of mail originating from your IP; throttled | sending_side
      | 550 5.7.1 Message rejected due to local policy | sending_side
5.0.0 | host mx.example.com said: 550 Sender rejected (in reply to MAIL FROM command) | sending_side
"""  # noqa: E501


@pytest.mark.parametrize(
    ("status", "diagnostic", "severity"),
    [tuple(cell.strip() for cell in line.split("|")) for line in CASES.strip().splitlines()],
)
def test_R7_only_failures_about_the_address_are_hard(
    status: str, diagnostic: str, severity: str
) -> None:
    assert judge(status, diagnostic, fallback="permanent").severity == severity
