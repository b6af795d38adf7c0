"""Hostile admin URLs: NUL bytes, huge ids and control characters answer 400 or 404, never 500.

Every GET route of the admin blueprint, signed in as each role: hostile values for every
path converter and every query parameter any admin page reads (the filter forms' fields,
``page``, ``next`` and the plain ``request.args`` ones). Run on PostgreSQL too
(TEST_DATABASE_URL): that is where ids beyond 2**31 - 1 and NUL bytes in text raise.
"""
from __future__ import annotations

import inspect
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wtforms.fields.core import UnboundField

from smsgw.web.admin import forms
from smsgw.web.admin.auth import safe_next
from tests.test_admin_fixtures import csrf_token

pytest_plugins = ["tests.test_admin_fixtures"]

HUGE = [2**31, 2**31 + 1, 2**63, 2**64, 10**30]
HOSTILE = [
    "\x00", "a\x00b", "1\x00", "\x01", "\x1b[31m", "\x7f", "\x85", "\r\nSet-Cookie:x", "\t", "x\ny",
    str(2**31), str(2**63), str(10**30), "9" * 5000, "²", "-1", "%", "\\", "'", "\u2028",
    "9999-12-31", "0001-01-01", "1e400", "nan",
]
# Query arguments the admin pages read directly (request.args.get) besides the forms' fields.
PLAIN_ARGS = {"page", "next", "direction", "mode", "phone", "freq", "commodity", "status", "market", "kind", "q"}
ROLES = ("viewer", "operator", "admin")


def _param_names() -> list[str]:
    names = set(PLAIN_ARGS)
    for _name, cls in inspect.getmembers(forms, inspect.isclass):
        if issubclass(cls, forms.FlaskForm):
            names |= {n for n, v in inspect.getmembers(cls) if isinstance(v, UnboundField)}
    return sorted(names)


def _get_rules(app: Flask) -> list:
    return sorted((r for r in app.url_map.iter_rules()
                   if r.endpoint.startswith("admin.") and r.endpoint != "admin.static" and "GET" in r.methods),
                  key=lambda r: r.rule)


def _path(rule, value: object) -> str:
    """The rule's URL with ``value`` for every converter (raw, so no converter refuses it first)."""
    url = rule.rule
    for name in rule.arguments:
        converter = type(rule._converters[name]).__name__
        url = url.replace(f"<{'int:' if converter == 'IntegerConverter' else ''}{name}>", str(value))
        url = url.replace(f"<{name}>", quote(str(value), safe=""))
    return url


def _query(name: str, value: str) -> str:
    return f"{quote(name)}={quote(value, safe='')}"


def _check(response, url: str) -> None:
    assert response.status_code < 500, (url, response.status_code, response.get_data(as_text=True)[:500])
    for header, text in response.headers.items():
        assert "\n" not in text and "\r" not in text, (url, header, text)
    assert "Set-Cookie:x" not in response.headers.get("Location", "")


def test_the_admin_has_routes_with_ids(app: Flask) -> None:
    rules = _get_rules(app)
    assert len(rules) > 15
    assert sum(1 for r in rules if r.arguments) >= 5


@pytest.mark.parametrize("role", ROLES)
def test_huge_ids_answer_404(app: Flask, as_role, role: str) -> None:
    client = as_role(role)
    for rule in _get_rules(app):
        if not rule.arguments:
            continue
        for value in HUGE:
            url = _path(rule, value)
            response = client.get(url)
            _check(response, url)
            assert response.status_code in (403, 404), (url, response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_hostile_query_arguments_answer_400(app: Flask, as_role, role: str) -> None:
    client = as_role(role)
    names = _param_names()
    for rule in _get_rules(app):
        base = _path(rule, 1)
        for value in HOSTILE:
            query = "&".join(_query(name, value) for name in names)
            url = f"{base}?{query}"
            response = client.get(url)
            _check(response, url)
            if any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in value):
                assert response.status_code in (400, 404), (url, response.status_code)
        for raw in ("%00", "page=%00", "next=%0d%0aSet-Cookie:x", "q=%FF%FE", "%ZZ=1", "a=%", "q=%C0%80"):
            url = f"{base}?{raw}"
            _check(client.get(url), url)


def test_hostile_path_segments(app: Flask, as_role) -> None:
    client = as_role("admin")
    for url in ("/admin/%00", "/admin/people/%00", "/admin/people/1%00", "/admin/catalog/markets/%0d%0a",
                "/admin/people/" + "9" * 5000, "/admin/%E2%80%A8"):
        response = client.get(url)
        _check(response, url)
        assert response.status_code in (400, 404), (url, response.status_code)


@pytest.mark.parametrize(
    "target", ["/admin/\r\nSet-Cookie:x", "/admin/\x00", "/admin/\nx", "/admin/\u2028", "/admin/\t"]
)
def test_safe_next_refuses_control_characters(app: Flask, target: str) -> None:
    with app.test_request_context():
        assert safe_next(target) == "/admin/"
        assert safe_next("/admin/people?q=x") == "/admin/people?q=x"


def test_next_with_a_line_break_never_reaches_a_header(app: Flask, users, as_role) -> None:
    anonymous = app.test_client()
    for url in ("/admin/signin?next=%0d%0aSet-Cookie:x", "/admin/signin?next=/admin/%0d%0aSet-Cookie:x",
                "/admin/people?next=/admin/%0aSet-Cookie:x"):
        response = anonymous.get(url)
        _check(response, url)
        assert response.status_code == 400
    signed_in = as_role("viewer")
    response = signed_in.get("/admin/signin?next=/admin/%0d%0aSet-Cookie:x")
    _check(response, "signin")
    # A form body: the language switch redirects to ``next``.
    token = csrf_token(signed_in, "/admin/")
    for target in ("/admin/\r\nSet-Cookie:x", "/admin/\x00", "/admin/\x1b"):
        response = signed_in.post("/admin/language", data={"csrf_token": token, "language": "en", "next": target})
        _check(response, "/admin/language")
        assert response.status_code == 400


def test_a_nul_byte_in_a_form_body_is_refused(app: Flask, as_role) -> None:
    operator = as_role("operator")
    token = csrf_token(operator, "/admin/people")
    response = operator.post(
        "/admin/simulator/sms", data={"csrf_token": token, "phone": "+254700000009", "text": "PRICE\x00maize"}
    )
    _check(response, "sms")
    assert response.status_code == 400


text = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_parameters_on_any_route_never_answer_500(app: Flask, as_role, data: st.DataObject) -> None:
    rule = data.draw(st.sampled_from(_get_rules(app)), label="rule")
    role = data.draw(st.sampled_from(ROLES), label="role")
    ident = data.draw(st.one_of(st.integers(0, 2**31 - 1), st.integers(2**31, 10**40)), label="id")
    params = data.draw(st.dictionaries(st.sampled_from(_param_names()), st.one_of(text, st.integers().map(str)),
                                       max_size=4), label="params")
    url = _path(rule, ident)
    if params:
        url += "?" + "&".join(_query(k, v) for k, v in params.items())
    response = as_role(role).get(url)
    _check(response, url)
    if ident > 2**31 - 1 and rule.arguments:
        assert response.status_code in (400, 403, 404), (url, response.status_code)
