"""Step templates: subject, text body and HTML body rendered in a Jinja2 sandbox.

Templates are written by users, so they run sandboxed, may only reach the four
roots below, and a missing value renders as nothing rather than failing a send.
Every rendered email carries its unsubscribe link (SPEC R3): a footer is added
to a body that does not already contain it.

Jinja2 is imported when a template is first compiled, not with this module: reading a
sequence (say, to explain a decision) needs no template engine.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from optout.errors import InvalidInput
from optout.mail import links

if TYPE_CHECKING:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

ROOTS = ("person", "company", "sender", "unsubscribe_url")
"""The variables a template may use; anything else is refused when it is saved."""

TEMPLATE_NAMES = {"subject": "subject", "text": "text body", "html": "HTML body"}

_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
_BLANK_LINES = re.compile(r"\n\s*\n")
_CLOSING_BODY = re.compile(r"</body\s*>", re.IGNORECASE)


class InvalidTemplate(InvalidInput):
    """A step template does not compile or uses a variable that does not exist."""

    code = "invalid_template"

    def __init__(self, message: str, *, template: str) -> None:
        super().__init__(f"{TEMPLATE_NAMES.get(template, template)} template: {message}")
        self.template = template
        self.reason = message


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Record:
    """A read-only view of a mapping for templates: `person.title` or `person["title"]`.

    A missing or None value is undefined, so it renders as "" and `default(...)`
    applies; nested mappings (`person.fields.industry`) are records too. Being a
    plain object, no dict method (`items`, `keys`...) can shadow a field.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None) -> None:
        self._data: Mapping[str, Any] = data or {}

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if value is None:
            raise KeyError(key)
        return Record(value) if isinstance(value, Mapping) else value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __contains__(self, key: object) -> bool:
        return self._data.get(key) is not None if isinstance(key, str) else False

    def __bool__(self) -> bool:
        return any(value is not None for value in self._data.values())

    def __str__(self) -> str:
        return ""


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _marked(value: Any) -> Any:
    return links.mark(_finalize(value))


def _environment(*, autoescape: bool) -> SandboxedEnvironment:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        autoescape=autoescape,
        undefined=jinja2.ChainableUndefined,
        # HTML output values are marked so a link built from data can be checked.
        finalize=_marked if autoescape else _finalize,
        keep_trailing_newline=True,
    )


@cache
def _environments() -> dict[str, SandboxedEnvironment]:
    return {
        "subject": _environment(autoescape=False),
        "text": _environment(autoescape=False),
        "html": _environment(autoescape=True),
    }


@lru_cache(maxsize=512)
def _compile(kind: str, source: str) -> jinja2.Template:
    """Parse, check the variable roots and compile one template (cached: steps repeat)."""
    import jinja2
    from jinja2 import meta

    environment = _environments()[kind]
    try:
        tree = environment.parse(source)
        unknown = sorted(
            meta.find_undeclared_variables(tree) - set(ROOTS) - set(environment.globals)
        )
        if not unknown:
            return environment.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:  # also an unknown filter or test
        raise InvalidTemplate(f"line {exc.lineno}: {exc.message}", template=kind) from exc
    except jinja2.TemplateError as exc:
        raise InvalidTemplate(str(exc), template=kind) from exc
    names = ", ".join(repr(name) for name in unknown)
    raise InvalidTemplate(
        f"unknown variable {names} (a template may use {', '.join(ROOTS)})", template=kind
    )


def validate_templates(subject: str, body_text: str, body_html: str) -> None:
    """Raise InvalidTemplate (an InvalidInput) naming the first template that is wrong."""
    for kind, source in (("subject", subject), ("text", body_text), ("html", body_html)):
        _compile(kind, source)


def _render_one(kind: str, source: str, context: Mapping[str, Any]) -> str:
    import jinja2

    template = _compile(kind, source)
    try:
        rendered = template.render(context)
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise InvalidTemplate(f"cannot render: {exc}", template=kind) from exc
    # Only http, https and mailto links may come from data (a CRM value is no javascript:).
    return links.checked(rendered) if kind == "html" else rendered


def single_line(text: str) -> str:
    """Collapse every run of whitespace, newlines included, to one space."""
    return " ".join(text.split())


def text_to_html(text: str) -> str:
    """A simple HTML alternative of a text body: escaped paragraphs, links kept clickable."""
    paragraphs = [part.strip("\n") for part in _BLANK_LINES.split(text) if part.strip()]
    return "".join("<p>" + _linkify(part).replace("\n", "<br>\n") + "</p>\n" for part in paragraphs)


def _linkify(text: str) -> str:
    pieces: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = html.escape(match.group(0))
        pieces += [html.escape(text[position : match.start()]), f'<a href="{url}">{url}</a>']
        position = match.end()
    pieces.append(html.escape(text[position:]))
    return "".join(pieces)


def text_footer(unsubscribe_url: str) -> str:
    return f"Unsubscribe: {unsubscribe_url}\n"


def html_footer(unsubscribe_url: str) -> str:
    url = html.escape(unsubscribe_url)
    return f'<p style="font-size:12px;color:#666666"><a href="{url}">Unsubscribe</a></p>'


def _with_text_footer(text: str, unsubscribe_url: str) -> str:
    if unsubscribe_url in text:
        return text
    body = text.rstrip()
    return f"{body}\n\n{text_footer(unsubscribe_url)}" if body else text_footer(unsubscribe_url)


def _with_html_footer(body: str, unsubscribe_url: str) -> str:
    if unsubscribe_url in body or html.escape(unsubscribe_url) in body:
        return body
    footer = html_footer(unsubscribe_url)
    closings = list(_CLOSING_BODY.finditer(body))
    if closings:
        at = closings[-1].start()
        return f"{body[:at]}{footer}\n{body[at:]}"
    return f"{body.rstrip()}\n{footer}\n"


def render(
    *,
    subject: str,
    body_text: str,
    body_html: str,
    person: Mapping[str, Any],
    company: Mapping[str, Any] | None,
    sender: Mapping[str, Any],
    unsubscribe_url: str,
) -> Rendered:
    """Render one step for one person; both bodies end up carrying the unsubscribe link."""
    context = {
        "person": Record(person),
        "company": Record(company),
        "sender": Record(sender),
        "unsubscribe_url": unsubscribe_url,
    }
    text = _render_one("text", body_text, context)
    html_body = _render_one("html", body_html, context) if body_html.strip() else ""
    if not html_body.strip():
        html_body = text_to_html(text)
    return Rendered(
        subject=single_line(_render_one("subject", subject, context)),
        text=_with_text_footer(text, unsubscribe_url),
        html=_with_html_footer(html_body, unsubscribe_url),
    )
