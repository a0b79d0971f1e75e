"""The new text of a reply: what the sender wrote, without the history they quoted,
the message they forwarded or their signature. Classification reads only this, so
our own unsubscribe footer quoted back never reads as a request (R4).

Recognized: `>` quoting (interleaved answers are kept), attribution lines in
English, German, French and Spanish ("On ... wrote:", "Am ... schrieb ...:",
"Le ... a écrit :", "El ... escribió:"), Outlook's "-----Original Message-----"
and "From: / Sent:" header blocks (and their translations), forwarded-message
blocks, RFC 3676 signatures (`-- `) and the usual "Sent from my phone" lines.
HTML-only mail is turned into text first, dropping blockquotes and the quote
containers of Gmail, Outlook, Apple Mail, Thunderbird and Yahoo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from optout.inbound.parse import ParsedMessage, clean

MAX_INPUT = 100_000
MAX_NEW_TEXT = 20_000

_I = re.IGNORECASE
_ATTRIBUTIONS = (
    ("On ... wrote:", re.compile(r"^\s*on\b.{0,400}\bwrote\s*:\s*$", _I)),
    ("Am ... schrieb", re.compile(r"^\s*am\b.{0,400}\bschrieb\b.{0,300}:\s*$", _I)),
    ("Le ... a écrit", re.compile(r"^\s*le\b.{0,400}\ba\s+[ée]crit\s*:\s*$", _I)),
    ("El ... escribió", re.compile(r"^\s*el\b.{0,400}\bescribi[óo]\s*:\s*$", _I)),
)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(original message|urspr[üu]ngliche nachricht|original-nachricht|"
    r"message d'origine|mensaje original)\s*-{2,}\s*$",
    _I,
)
_FORWARD = re.compile(
    r"^\s*(-{2,}\s*(forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]|"
    r"mensaje reenviado)\s*-{2,}|(begin forwarded message|anfang der weitergeleiteten "
    r"nachricht|d[ée]but du message r[ée]exp[ée]di[ée]|inicio del mensaje reenviado)\s*:)\s*$",
    _I,
)
_SEPARATOR = re.compile(r"^\s*_{10,}\s*$")
_FROM_LINE = re.compile(r"^\s*\*?(from|von|de)\s*:\*?\s*\S", _I)
_SENT_LINE = re.compile(
    r"^\s*\*?(sent|gesendet|envoy[ée]|enviado|date|datum|fecha|to|an|[àa]|para)\s*:\*?\s*\S", _I
)
# A returned copy of a message's headers (a bounce or a notice quoting ours, our own
# List-Unsubscribe included): the words after it are not the sender's.
_MESSAGE_HEADER = re.compile(
    r"^(received|return-path|message-id|list-unsubscribe(?:-post)?|list-id|dkim-signature|"
    r"mime-version|delivered-to|x-mailer|content-type|in-reply-to|references)\s*:\s*\S",
    _I,
)
_HEADER_LINE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]{0,60}:\s|[ \t]+\S)")
_SIGNATURE = re.compile(r"^--\s?$")
_MOBILE = re.compile(
    r"^\s*(sent from my \w+|sent from (outlook|mail) for \w+|get outlook for \w+|"
    r"von meinem \w+ gesendet|envoy[ée] de mon \w+|enviado desde mi \w+)",
    _I,
)
_FOOTER = re.compile(r"^\s*unsubscribe\s*:?\s*<?https?://\S+>?\s*$", _I)


@dataclass(frozen=True)
class NewText:
    text: str
    forwarded: bool  # a forwarded message was cut off (or the subject says Fwd:)
    cut_at: str  # what ended the new text, "" when nothing did
    source: str  # the part read: text/plain, text/html or none


_FORWARD_SUBJECT = re.compile(r"^\s*(\[[^\]]{0,40}\]\s*)?(fwd?|wg|tr|rv|enc|wtrlt)\s*:", _I)


def is_forward_subject(subject: str) -> bool:
    return bool(_FORWARD_SUBJECT.match(subject))


def new_text(parsed: ParsedMessage) -> NewText:
    """The new text of a parsed message: its plain part, else its HTML part as text."""
    forward_subject = is_forward_subject(parsed.subject)
    plain = parsed.text_parts("plain")
    if plain:
        text, forwarded, cut = extract(plain[0], forward_subject=forward_subject)
        return NewText(text, forwarded or forward_subject, cut, "text/plain")
    html = parsed.text_parts("html")
    if html:
        text, forwarded, cut = extract(html_to_text(html[0]), forward_subject=forward_subject)
        return NewText(text, forwarded or forward_subject, cut, "text/html")
    return NewText("", forward_subject, "", "none")


def extract(text: str, *, forward_subject: bool = False) -> tuple[str, bool, str]:
    """(new text, whether a forwarded message was cut off, what cut it)."""
    lines = text[:MAX_INPUT].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    end, label, kind = len(lines), "", ""
    for index in range(len(lines)):
        found = _boundary(lines, index, forward_subject=forward_subject)
        if found is not None:
            kind, label = found
            end = index
            break
    kept = _unquoted(lines[:end])
    if not _meaningful(kept) and kind == "attribution":
        # Bottom posting: the answer follows the quote.
        kept = _unquoted(lines[end + 1 :])
        label = f"{label} (answer below the quote)"
    for index, line in enumerate(kept):
        if _SIGNATURE.match(line) or _MOBILE.match(line):
            kept = kept[:index]
            label = label or "signature"
            break
    unfooted = [line for line in kept if not _FOOTER.match(line)]
    if len(unfooted) < len(kept):
        label = label or "our unsubscribe footer"
    body = "\n".join(line.rstrip() for line in unfooted)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    return clean(body, MAX_NEW_TEXT), kind == "forward", label


def _unquoted(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.lstrip().startswith(">")]


def _meaningful(lines: list[str]) -> bool:
    return any(line.strip() for line in lines)


def _boundary(lines: list[str], index: int, *, forward_subject: bool) -> tuple[str, str] | None:
    line = lines[index]
    if line.lstrip().startswith(">"):
        return None
    joined = f"{line} {lines[index + 1]}" if index + 1 < len(lines) else line
    for label, pattern in _ATTRIBUTIONS:
        if pattern.match(line) or (len(line) < 300 and pattern.match(joined)):
            return "attribution", label
    if _FORWARD.match(line):
        return "forward", "forwarded message"
    if _ORIGINAL.match(line):
        return "original", "original message"
    if _SEPARATOR.match(line):
        return "original", "separator line"
    if _MESSAGE_HEADER.match(line):
        following = lines[index + 1 : index + 3]
        if following and all(_HEADER_LINE.match(candidate) for candidate in following):
            return "original", "a returned copy of message headers"
    if _FROM_LINE.match(line):
        following = lines[index + 1 : index + 5]
        if any(_SENT_LINE.match(candidate) for candidate in following):
            if forward_subject:
                return "forward", "forwarded header block"
            return "original", "From:/Sent: header block"
    return None


_SKIP_TAGS = frozenset({"blockquote", "style", "script", "head", "title"})
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote")
_STOP_IDS = ("divrplyfwdmsg", "appendonsend", "x_divrplyfwdmsg")
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre"}
)
_VOID_TAGS = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"})


class _TextCollector(HTMLParser):
    """Text of an HTML body, leaving out quoted history and our unsubscribe link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip_tag = ""
        self.skip_depth = 0
        self.stopped = False
        self.link_href = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        if self.skip_depth:
            if tag == self.skip_tag and tag not in _VOID_TAGS:
                self.skip_depth += 1
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        if values.get("id", "").lower() in _STOP_IDS:
            self.stopped = True  # Outlook: everything from the reply header on is history
            return
        classes = values.get("class", "").lower()
        if tag in _SKIP_TAGS or any(name in classes for name in _QUOTE_CLASSES):
            if tag not in _VOID_TAGS:
                self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "a":
            self.link_href = values.get("href", "")
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.stopped:
            return
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth -= 1
            return
        if tag == "a":
            self.link_href = ""
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if self.stopped or self.skip_depth:
            return
        if self.link_href and data.strip().lower() == "unsubscribe":
            return  # the text of an unsubscribe link is no request
        self.chunks.append(data)


def html_to_text(html: str) -> str:
    collector = _TextCollector()
    try:
        collector.feed(html[:MAX_INPUT])
        collector.close()
        text = "".join(collector.chunks)
    except (AssertionError, ValueError, IndexError):  # HTMLParser on hostile markup
        text = re.sub(r"<[^>]{0,2000}>", " ", html[:MAX_INPUT])
    text = text.replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
