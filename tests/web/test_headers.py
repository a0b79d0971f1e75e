"""Security headers on every response, and pages that need no inline script or style, so
the Content-Security-Policy allows only this server's own scripts and styles."""

from __future__ import annotations

import ipaddress
import re
from importlib.resources import files
from pathlib import Path

import httpx

from tests.web.conftest import Web, web_client

TEMPLATES = Path(str(files("optout.web") / "templates"))


def _assert_secure(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] in ("same-origin", "no-referrer")
    assert (
        headers["x-frame-options"] == "DENY"
        or "frame-ancestors 'none'" in (headers["content-security-policy"])
    )
    policy = headers["content-security-policy"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "strict-transport-security" not in headers  # plain http here


def test_every_kind_of_response_carries_the_security_headers(web: Web) -> None:
    answers = {
        "sign-in page": web.http.get("/login"),
        "redirect to sign-in": web.http.get("/exclusions"),
        "fragment redirect": web.http.get("/people/1/explain", headers={"HX-Request": "true"}),
        "static script": web.http.get("/static/app.js"),
        "static style sheet": web.http.get("/static/public.css"),
        "missing static file": web.http.get("/static/no-such-file.js"),
        "unknown address": web.http.get("/no/such/page"),
        "API without a key": web.http.get("/api/v1/people"),
        "OpenAPI document": web.http.get("/openapi.json"),
        "unsubscribe page, bad token": web.http.get("/u/not-a-token"),
        "health check": web.http.get("/healthz"),
        "failed sign-in": web.http.post(
            "/login", data={"workspace": "nope", "email": "a@b.io", "password": "x"}
        ),
    }
    for name, response in answers.items():
        try:
            _assert_secure(response)
        except (AssertionError, KeyError) as failure:
            raise AssertionError(f"{name}: {response.headers}") from failure
    signed_in_policy = answers["sign-in page"].headers["content-security-policy"]
    assert "script-src 'self'" in signed_in_policy
    assert "style-src 'self'" in signed_in_policy
    assert "unsafe-hashes" not in signed_in_policy.split("script-src", 1)[1].split(";")[0]
    assert answers["unsubscribe page, bad token"].headers["referrer-policy"] == "no-referrer"
    assert (
        "script-src"
        not in answers["unsubscribe page, bad token"].headers["content-security-policy"]
    )  # default-src 'none': no script at all on the public pages


def test_https_responses_ask_browsers_to_stay_on_https(web: Web) -> None:
    # Behind a TLS-terminating proxy named in OPTOUT_TRUSTED_PROXIES, the scheme is the
    # one its X-Forwarded-Proto says; from any other peer the header is ignored.
    with web_client(web.engine, trusted_proxies=(ipaddress.ip_network("127.0.0.1"),)) as proxied:
        response = proxied.http.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert "; secure" in response.headers["set-cookie"].lower()
    untrusted = web.http.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in untrusted.headers


INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "htmx inline handler": re.compile(r"\shx-on", re.IGNORECASE),
}


def test_templates_hold_no_inline_script_or_style() -> None:
    found = [
        f"{path.relative_to(TEMPLATES)}: {kind}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for kind, pattern in INLINE.items()
        if pattern.search(path.read_text("utf-8"))
    ]
    assert found == []
    assert len(list(TEMPLATES.rglob("*.html"))) > 20  # the scan did look at the templates
