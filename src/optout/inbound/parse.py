"""Safe MIME parsing of inbound mail (R34): whatever arrives, read what can be read.

The stdlib parser (compat32 policy: no lazy header objects that raise on access)
does the MIME work; this module bounds it. Headers are decoded by hand with
fallbacks, every text is capped and scrubbed of NUL bytes and lone surrogates
(PostgreSQL takes neither), parts are walked to a limited depth and number, and
a structure too deep for the parser is read for its headers only. Only input
that is not a message at all (no header field at its start) is refused, with
InvalidInput; everything else becomes a `ParsedMessage`, with its defects.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.errors import MessageError
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from functools import cached_property
from typing import Any

from optout.errors import InvalidInput

MAX_HEADER_VALUE = 4_000
MAX_HEADERS = 400
MAX_PARTS = 100
MAX_DEPTH = 12
MAX_MULTIPARTS = 60  # more nested multiparts than this and only the headers are read
MAX_TEXT = 200_000
MAX_HEADER_BLOCK = 64_000

_FIELD_LINE = re.compile(rb"^[!-9;-~]{1,200}[ \t]*:")
_MBOX_FROM = re.compile(rb"^From [^\r\n]*\r?\n")
_MSG_ID = re.compile(r"<([^<>\s]{1,490})>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]{1,256}@[A-Za-z0-9.\-\[\]:_]{1,255}$")
_MULTIPART = re.compile(rb"content-type:[ \t]*multipart/", re.IGNORECASE)
_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,40}\?[bBqQ]\?[^?\s]*\?=")
Headers = tuple[tuple[str, str], ...]
# Parts made of header-like field blocks: read as blocks, never walked into.
FIELD_PARTS = ("message/delivery-status", "message/feedback-report")


@dataclass(frozen=True)
class Leaf:
    """A non-multipart part: its type, whether it is an attachment, and what it holds."""

    content_type: str
    attachment: bool
    text: str | None = None  # text/* parts, decoded
    blocks: tuple[Headers, ...] = ()  # FIELD_PARTS: one field block each
    headers: Headers = ()  # message/rfc822 and text/rfc822-headers: the enclosed headers


@dataclass(frozen=True)
class ParsedMessage:
    headers: Headers
    header_block: str
    content_type: str
    report_type: str
    leaves: tuple[Leaf, ...]
    body_hash: str
    readable: bool = True  # False: the structure could not be read, only the headers
    defects: tuple[str, ...] = field(default_factory=tuple)
    # The stdlib tree it was read from, for readers that walk it themselves (bounces).
    message: Message | None = field(default=None, compare=False, repr=False)

    def header(self, name: str) -> str:
        """The first value of a header, decoded ("" when absent)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), "")

    def all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def has(self, name: str) -> bool:
        wanted = name.lower()
        return any(key.lower() == wanted for key, _ in self.headers)

    # Read once: classifying, matching and storing a message each ask for these.
    @cached_property
    def message_id(self) -> str:
        ids = message_ids(self.header("Message-ID"))
        return ids[0] if ids else ""

    @property
    def subject(self) -> str:
        return self.header("Subject")

    @cached_property
    def from_address(self) -> str:
        found = addresses(self.header("From"))
        return found[0] if found else ""

    @cached_property
    def from_display(self) -> str:
        try:
            return clean(getaddresses([self.header("From")])[0][0])
        except (IndexError, ValueError, TypeError):
            return ""

    def recipients(self) -> list[str]:
        """Every address the message was addressed or delivered to (for VERP tokens)."""
        names = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc", "Return-Path")
        found: list[str] = []
        for name in names:
            for value in self.all(name):
                found.extend(addresses(value, lenient=True))
        return list(dict.fromkeys(found))

    def text_parts(self, subtype: str) -> list[str]:
        wanted = f"text/{subtype}"
        return [
            leaf.text
            for leaf in self.leaves
            if leaf.content_type == wanted and not leaf.attachment and leaf.text is not None
        ]


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """Text any database stores: valid UTF-8, no NUL or other control characters but
    tab and line breaks, at most `limit` characters."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    return _CONTROL.sub("", data.decode("utf-8", "replace"))[:limit]


def message_ids(value: str) -> list[str]:
    """The `<id>` tokens of a Message-ID, In-Reply-To or References header, in order."""
    return [f"<{found}>" for found in _MSG_ID.findall(value[:20_000])][:100]


def addresses(value: str, *, lenient: bool = False) -> list[str]:
    """Lower-cased addresses of an address header; `lenient` keeps over-long local parts
    and their case (VERP addresses carry a token, and tokens are case-sensitive)."""
    try:
        pairs = getaddresses([value[:MAX_HEADER_VALUE]])
    except (ValueError, TypeError, IndexError):
        return []
    found = []
    for _, address in pairs:
        address = clean(address, 600).strip().strip("<>")
        local, _, domain = address.rpartition("@")
        address = f"{local if lenient else local.lower()}@{domain.lower()}"
        if _ADDRESS.match(address) and (lenient or len(local) <= 64):
            found.append(address)
    return found


def starts_with_header(raw: bytes) -> bool:
    """Whether `raw` begins like a message: a header field (after an mbox From_ line)."""
    return bool(
        _FIELD_LINE.match(_MBOX_FROM.sub(b"", raw[:2000].removeprefix(b"\xef\xbb\xbf"), count=1))
    )


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw MIME; InvalidInput when it does not start with a header field."""
    if not isinstance(raw, bytes | bytearray):
        raise InvalidInput("a message must be given as bytes")
    data = _MBOX_FROM.sub(b"", bytes(raw).removeprefix(b"\xef\xbb\xbf"), count=1)
    if not _FIELD_LINE.match(data):
        raise InvalidInput("not a MIME message: it does not start with a header field")
    body_hash = _body_hash(data)
    defects: list[str] = []
    too_deep = len(_MULTIPART.findall(data, 0, 4_000_000)) > MAX_MULTIPARTS
    message = None
    if not too_deep:
        try:
            message = BytesParser(policy=policy.compat32).parsebytes(data)
        except RecursionError:
            too_deep = True
        except Exception as exc:  # the stdlib parser is lenient; anything else is a bug there
            defects.append(f"parser failed: {type(exc).__name__}")
    if message is None:
        defects.append("MIME structure too deeply nested: only the headers were read")
        message = BytesParser(policy=policy.compat32).parsebytes(data, headersonly=True)
    headers = _headers(message)
    leaves: list[Leaf] = []
    readable = not defects
    if readable:
        for part, depth in _walk(message, defects):
            leaves.append(_leaf(part, depth, defects))
        readable = not _broken_multipart(message)
        if not readable:
            defects.append("multipart without usable boundaries")
    content_type = _content_type(message)
    report_type = clean(str(message.get_param("report-type", "") or ""), 64).lower()
    defects.extend(type(d).__name__ for d in (message.defects or [])[:20])
    return ParsedMessage(
        headers=headers,
        header_block=_header_block(data),
        content_type=content_type,
        report_type=report_type,
        leaves=tuple(leaves),
        body_hash=body_hash,
        readable=readable,
        defects=tuple(dict.fromkeys(defects)),
        message=message if readable else None,
    )


def _body_hash(data: bytes) -> str:
    normalized = data.replace(b"\r\n", b"\n")
    _, _, body = normalized.partition(b"\n\n")
    return hashlib.sha256(body.rstrip()).hexdigest()


def _header_block(data: bytes) -> str:
    normalized = data[: MAX_HEADER_BLOCK * 2].replace(b"\r\n", b"\n")
    head = normalized.split(b"\n\n", 1)[0]
    return clean(head.decode("utf-8", "surrogateescape"), MAX_HEADER_BLOCK)


def _headers(message: Message) -> Headers:
    items = []
    for name, value in itertools.islice(message.raw_items(), MAX_HEADERS):
        items.append((clean(str(name), 200), decode_value(str(value))))
    return tuple(items)


def decode_value(value: str) -> str:
    """One header value: unfolded, 8-bit bytes read as UTF-8 (else Latin-1), RFC 2047
    encoded words decoded with their charset (unknown ones replaced), capped."""
    text = re.sub(r"\r?\n[ \t]*", " ", value[: MAX_HEADER_VALUE * 2])
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        raw = text.encode("utf-8", "surrogateescape")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    if _ENCODED_WORD.search(text):
        try:
            chunks = decode_header(text)
            text = "".join(
                _decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk
                for chunk, charset in chunks
            )
        except (ValueError, TypeError, LookupError, AssertionError, MessageError):
            pass  # a malformed encoded word (bad base64, say) stays as it was written
    return clean(text, MAX_HEADER_VALUE).strip()


def _decode_bytes(data: bytes, charset: str | None) -> str:
    name = (charset or "").strip().lower() or "utf-8"
    if name in ("unknown-8bit", "x-unknown", "8bit", "us-ascii"):
        name = "utf-8"
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):
        name = "utf-8"
    try:
        return data.decode(name, "replace")
    except (LookupError, ValueError, TypeError):  # a codec that fails on its own terms
        return data.decode("utf-8", "replace")


def _content_type(part: Message) -> str:
    try:
        return clean(part.get_content_type(), 100).lower()
    except (ValueError, TypeError, IndexError, AttributeError):
        return "text/plain"


def _walk(message: Message, defects: list[str]) -> Iterator[tuple[Message, int]]:
    """Leaf parts, depth first, at most MAX_PARTS of them and MAX_DEPTH deep."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        if seen >= MAX_PARTS:
            defects.append(f"more than {MAX_PARTS} parts: the rest was not read")
            return
        payload = _payload(part)
        kind = _content_type(part)
        if part.is_multipart() and isinstance(payload, list) and kind not in FIELD_PARTS:
            if depth >= MAX_DEPTH:
                defects.append(f"parts nested deeper than {MAX_DEPTH} were not read")
                continue
            if kind == "message/rfc822":
                seen += 1
                yield part, depth
                continue
            children = [child for child in payload if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
            continue
        seen += 1
        yield part, depth


def _broken_multipart(message: Message) -> bool:
    return message.get_content_maintype() == "multipart" and not isinstance(
        message.get_payload(), list
    )


def _leaf(part: Message, depth: int, defects: list[str]) -> Leaf:
    kind = _content_type(part)
    disposition = str(part.get("Content-Disposition", "") or "").lower()
    attachment = disposition.strip().startswith("attachment")
    if kind in FIELD_PARTS:
        return Leaf(kind, attachment, blocks=status_blocks(part))
    if kind == "message/rfc822":
        payload = _payload(part)
        inner = payload[0] if isinstance(payload, list) and payload else None
        headers = _headers(inner) if isinstance(inner, Message) else ()
        return Leaf(kind, attachment, headers=headers)
    if kind == "text/rfc822-headers":
        text = _text(part, defects)
        return Leaf(kind, attachment, text=text, headers=_headers_from_text(text))
    if part.get_content_maintype() == "text":
        return Leaf(kind, attachment, text=_text(part, defects))
    return Leaf(kind, attachment)


def _payload(part: Message) -> Any:
    """`part.get_payload()`, which reads 8-bit text with the part's charset parameter and
    raises on a malformed one (a NUL in it, say): then the payload as it was parsed."""
    try:
        return part.get_payload()
    except (ValueError, TypeError, LookupError):
        return getattr(part, "_payload", None)


def _text(part: Message, defects: list[str]) -> str:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError, LookupError):
        data = None
    if not isinstance(data, bytes):
        payload = _payload(part)
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    charset = None
    try:
        charset = part.get_content_charset()
    except (ValueError, TypeError, LookupError, AttributeError):
        defects.append("unreadable charset parameter")
    return clean(_decode_bytes(data[: MAX_TEXT * 4], charset))


def status_blocks(part: Message) -> tuple[Headers, ...]:
    payload = _payload(part)
    if isinstance(payload, list):
        blocks = [_headers(block) for block in payload[:50] if isinstance(block, Message)]
        return tuple(block for block in blocks if block)
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError):
        data = None
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
    chunks = re.split(r"\r?\n[ \t]*\r?\n", clean(text, MAX_TEXT))
    return tuple(block for block in (_headers_from_text(c) for c in chunks[:50]) if block)


def _headers_from_text(text: str) -> Headers:
    """`Name: value` lines (with continuation lines) of a text that holds header fields."""
    fields: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n")[:2000]:
        if not line.strip():
            if fields:
                break
            continue
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, (value + " " + line.strip())[:MAX_HEADER_VALUE])
            continue
        name, colon, value = line.partition(":")
        if colon and re.fullmatch(r"[!-9;-~]{1,100}", name.strip()):
            fields.append((name.strip(), decode_value(value.strip())))
        if len(fields) >= MAX_HEADERS:
            break
    return tuple(fields)
