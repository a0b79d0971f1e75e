"""Mail that comes back from recipients: replies, unsubscribe requests, auto-replies,
bounces and spam complaints change what we send next (R4-R7, R36). Every way in calls
`process_message`."""

from optout.inbound.classify import Classification, Kind, classify
from optout.inbound.parse import ParsedMessage, parse_message
from optout.inbound.process import InboundOptions, InboundResult, process_message

__all__ = [
    "Classification",
    "InboundOptions",
    "InboundResult",
    "Kind",
    "ParsedMessage",
    "classify",
    "parse_message",
    "process_message",
]
