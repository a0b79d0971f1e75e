"""Step templates: sandboxed, forgiving about missing values, strict about unknown names."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from optout.errors import InvalidInput
from optout.mail.templates import InvalidTemplate, Rendered, render, validate_templates

URL = "https://optout.example.com/u/tok3n"
PERSON = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@acme.com",
    "title": "CTO",
    "fields": {"industry": "Engines", "items": "shadowed?"},
}
COMPANY = {"name": "Acme", "domain": "acme.com"}
SENDER = {"name": "Sam", "email": "sam@vendor.com"}


def _render(
    subject: str = "Hello {{ person.first_name }}",
    body_text: str = "Hi {{ person.first_name }},\n\nHow is {{ company.name }}?\n",
    body_html: str = "",
    person: Mapping[str, object] | None = None,
    company: Mapping[str, object] | None = COMPANY,
) -> Rendered:
    return render(
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        person=PERSON if person is None else person,
        company=company,
        sender=SENDER,
        unsubscribe_url=URL,
    )


def test_R3_body_carries_unsubscribe_link() -> None:
    rendered = _render(body_html="<p>Hi {{ person.first_name }}</p>")
    assert rendered.text.endswith(f"Unsubscribe: {URL}\n")
    assert rendered.text.count(URL) == 1
    assert f'<a href="{URL}">Unsubscribe</a>' in rendered.html
    assert rendered.html.startswith("<p>Hi Ada</p>")


def test_R3_footer_goes_inside_the_html_body_element() -> None:
    rendered = _render(body_html="<html><body><p>Hi</p></body></html>")
    assert rendered.html.endswith("</p>\n</body></html>")
    assert rendered.html.index(URL) < rendered.html.index("</body>")


def test_R3_no_second_link_when_the_template_places_it() -> None:
    rendered = _render(
        body_text="Hi\nOpt out: {{ unsubscribe_url }}\n",
        body_html='<p>Hi <a href="{{ unsubscribe_url }}">opt out</a></p>',
    )
    assert rendered.text == f"Hi\nOpt out: {URL}\n"
    assert rendered.html == f'<p>Hi <a href="{URL}">opt out</a></p>'


def test_R3_generated_html_alternative_links_the_unsubscribe_url() -> None:
    rendered = _render(body_text="Hi <you> & co\nsecond line\n\n\nSee https://acme.com/x.\n")
    assert rendered.html == (
        "<p>Hi &lt;you&gt; &amp; co<br>\nsecond line</p>\n"
        '<p>See <a href="https://acme.com/x">https://acme.com/x</a>.</p>\n'
        f'<p style="font-size:12px;color:#666666"><a href="{URL}">Unsubscribe</a></p>\n'
    )


def test_variables_render_and_subject_is_one_line() -> None:
    rendered = _render(
        subject="  {{ person.first_name }}\n at\r\n{{ company.name }}\t! ",
        body_text=(
            "{{ person.last_name }} {{ person.title }} {{ person.email }} "
            "{{ person.fields.industry }} {{ sender.name }} {{ company.domain }}"
        ),
    )
    assert rendered.subject == "Ada at Acme !"
    assert rendered.text.startswith("Lovelace CTO ada@acme.com Engines Sam acme.com\n\n")


def test_missing_and_none_values_render_as_empty_not_a_crash() -> None:
    rendered = _render(
        subject="Hi {{ person.first_name }}",
        body_text=(
            "[{{ person.first_name }}][{{ person.fields.nope.deeper }}][{{ company.name }}]"
            "[{{ person.first_name | default('there') }}]"
            "{% if company %}has company{% endif %}"
        ),
        person={"first_name": None, "email": "x@acme.com"},
        company=None,
    )
    assert rendered.subject == "Hi"
    assert rendered.text.startswith("[][][][there]\n")


def test_field_names_are_not_shadowed_by_mapping_methods() -> None:
    rendered = _render(body_text="{{ person.fields.items }}|{{ person['title'] }}")
    assert rendered.text.startswith("shadowed?|CTO")


def test_html_is_autoescaped_and_text_is_not() -> None:
    person = {**PERSON, "first_name": "<b>Tom & Jerry</b>"}
    rendered = _render(
        subject="{{ person.first_name }}",
        body_text="{{ person.first_name }}",
        body_html="<p>{{ person.first_name }}</p>",
        person=person,
    )
    assert rendered.subject == "<b>Tom & Jerry</b>"
    assert rendered.text.startswith("<b>Tom & Jerry</b>")
    assert rendered.html.startswith("<p>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>")


def test_sandbox_gives_no_way_out() -> None:
    rendered = _render(body_text="[{{ person.__class__ }}][{{ person._data }}]")
    assert rendered.text.startswith("[][]")
    with pytest.raises(InvalidTemplate, match="unsafe"):
        _render(body_text="{{ ''.__class__.__mro__[1].__subclasses__() }}")


@pytest.mark.parametrize(
    ("subject", "body_text", "body_html", "named"),
    [
        ("Hi {{ person.first_name", "", "", "subject template: line 1:"),
        ("", "{% if x %}", "", "text body template: line 1:"),
        ("", "", "<p>{{ person.title | nosuch }}</p>", "HTML body template: line 1: No filter"),
    ],
)
def test_R34_template_syntax_errors_name_the_template(
    subject: str, body_text: str, body_html: str, named: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_templates(subject, body_text, body_html)
    assert isinstance(caught.value, InvalidTemplate)
    assert caught.value.message.startswith(named)


@pytest.mark.parametrize(
    ("body_text", "unknown"),
    [
        ("{{ persn.first_name }}", "'persn'"),
        ("{{ request }} {{ config }}", "'config', 'request'"),
        ("{% for p in people %}{{ p }}{% endfor %}", "'people'"),
    ],
)
def test_R34_unknown_variable_roots_are_refused(body_text: str, unknown: str) -> None:
    with pytest.raises(InvalidTemplate) as caught:
        validate_templates("Hi", body_text, "")
    assert caught.value.template == "text"
    assert f"unknown variable {unknown}" in caught.value.message


def test_allowed_roots_locals_and_jinja_globals_validate() -> None:
    validate_templates(
        "{{ person.first_name }} at {{ company.name }}",
        "{% set greeting = 'Hi' %}{{ greeting }} {% for i in range(2) %}{{ loop.index }}"
        "{% endfor %} {{ sender.name }} {{ unsubscribe_url }}",
        "<p>{{ person.fields.industry | upper }}</p>",
    )


def test_R34_a_template_that_fails_while_rendering_is_invalid_input() -> None:
    with pytest.raises(InvalidTemplate, match=r"^text body template: cannot render"):
        _render(body_text="{{ 1 / 0 }}")


@pytest.mark.parametrize(
    "website",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        " java\tscript:alert(1)",
        "javascript&colon;alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        "\ue001javascript:alert(1)",
    ],
)
def test_R34_a_crm_value_in_a_template_href_cannot_become_a_javascript_link(
    website: str,
) -> None:
    person = {**PERSON, "fields": {"website": website}}
    for body_html in (
        '<p><a href="{{ person.fields.website }}">Your site</a></p>',
        "<p><a href='{{ person.fields.website }}'>Your site</a></p>",
        "<p><a class=x href={{ person.fields.website }}>Your site</a></p>",
        '<p><a HREF = "{{ person.fields.website | safe }}">Your site</a></p>',
    ):
        rendered = _render(body_html=body_html, person=person)
        assert "script" not in rendered.html.lower().replace("vbscript", "script"), body_html
        assert "data:" not in rendered.html
        assert "Your site</a>" in rendered.html
        assert "\ue000" not in rendered.html
        assert "\ue001" not in rendered.html


def test_R34_http_https_and_mailto_links_from_data_are_kept() -> None:
    person = {
        **PERSON,
        "fields": {"site": "https://acme.com/?a=1&b=2", "old": "http://acme.com", "to": "a@b.c"},
    }
    body_html = (
        '<a href="{{ person.fields.site }}">s</a> <a href="{{ person.fields.old }}">o</a> '
        '<a href="mailto:{{ person.fields.to }}">m</a> <a href="{{ unsubscribe_url }}">u</a> '
        '<a href="tel:+1555">t</a> {{ person.first_name }}'
    )
    rendered = _render(body_html=body_html, person=person).html
    assert '<a href="https://acme.com/?a=1&amp;b=2">s</a>' in rendered
    assert '<a href="http://acme.com">o</a>' in rendered
    assert '<a href="mailto:a@b.c">m</a>' in rendered
    assert f'<a href="{URL}">u</a>' in rendered
    assert '<a href="tel:+1555">t</a>' in rendered  # written by the author, not from data
    assert "Ada" in rendered
    assert "\ue000" not in rendered
