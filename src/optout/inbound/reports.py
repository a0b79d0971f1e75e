"""What a delivery report says (R7): each recipient it names, what happened to the
message there, how bad that is for the address, and which reader found it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from optout.inbound.bounce_policy import Severity

Reader = Literal["rfc3464", "flufl.bounce", "text"]


@dataclass(frozen=True)
class RecipientStatus:
    address: str  # the final recipient
    action: str  # failed, delayed, delivered, relayed, expanded (RFC 3464)
    status: str  # enhanced status code, e.g. 5.1.1; "" when none was given
    diagnostic: str
    severity: Severity
    original: str = ""  # the address we sent to, when the report names it (RFC 3464)
    basis: str = ""  # why this severity: the status code or the wording that decided

    @property
    def failed(self) -> bool:
        """A failure of the recipient's address, hard or soft."""
        return self.severity in ("permanent", "transient")

    @property
    def addresses(self) -> tuple[str, ...]:
        """The address we sent to first, when the report names it, then the final one."""
        return tuple(dict.fromkeys(a for a in (self.original, self.address) if a))


@dataclass(frozen=True)
class DeliveryReport:
    format: str  # rfc3464, rfc3464 (forwarded), postfix, exchange, ..., mail server notice
    recipients: tuple[RecipientStatus, ...]
    original_message_id: str  # of the message that bounced, when the report carries it
    reporting_mta: str = ""
    reader: Reader = "rfc3464"  # which reader found the recipients

    @property
    def decided(self) -> bool:
        """Whether it says something happened to a recipient, beyond a success."""
        return any(r.severity != "none" for r in self.recipients)
