"""Model listings in the three formats, single-model GETs, and model resolution errors."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google.genai import errors as gerrors

from e2e_util import CLIENT_KEY, assert_error_format, assert_reply_ok, request_body, request_path

EXPECTED_IDS = {"oai.gpt-4o-mini", "oai.mini", "resp.gpt-5", "ant.claude-sonnet-4-5", "gem.gemini-2.5-flash", "dead.m"}
AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}


@pytest.mark.parametrize("base", ["/v1", "", "/openai/v1"])
def test_openai_sdk_lists_models(gateway, base):
    ids = {m.id for m in gateway.openai(base).models.list()}
    assert EXPECTED_IDS <= ids, f"missing: {EXPECTED_IDS - ids}"


def test_openai_models_raw_shape(gateway):
    r = gateway.get("/v1/models", headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and isinstance(body["data"], list)
    for m in body["data"]:
        assert m["object"] == "model" and isinstance(m["id"], str)
        assert isinstance(m["created"], int) and isinstance(m["owned_by"], str)


@pytest.mark.parametrize("base", ["/claude", ""])
def test_anthropic_sdk_lists_models(gateway, base):
    models = list(gateway.anthropic(base).models.list())
    ids = {m.id for m in models}
    assert EXPECTED_IDS <= ids, f"missing: {EXPECTED_IDS - ids}"
    for m in models:
        assert m.type == "model" and m.display_name and m.created_at


def test_claude_models_raw_shape(gateway):
    r = gateway.get("/claude/v1/models", headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["data"], list) and body["has_more"] is False
    ids = [m["id"] for m in body["data"]]
    assert body["first_id"] == ids[0] and body["last_id"] == ids[-1]
    for m in body["data"]:
        assert m["type"] == "model" and isinstance(m["display_name"], str) and isinstance(m["created_at"], str)


def test_openai_sdk_parses_claude_models(gateway):
    ids = {m.id for m in gateway.openai("/claude/v1").models.list()}
    assert EXPECTED_IDS <= ids


@pytest.mark.parametrize("base", ["/gemini", ""])
def test_genai_sdk_lists_models(gateway, base):
    g = gateway.genai(base)
    names = {m.name for m in g.models.list()}
    expected = {f"models/{i}" for i in EXPECTED_IDS}
    assert expected <= names, f"missing: {expected - names}"


def test_gemini_models_raw_shape(gateway):
    r = gateway.get("/gemini/v1beta/models", headers={"x-goog-api-key": CLIENT_KEY})
    assert r.status_code == 200, r.text
    models = r.json()["models"]
    for m in models:
        assert m["name"].startswith("models/")
        assert "generateContent" in m.get("supportedGenerationMethods", []), m


def test_single_model_gets(gateway):
    m = gateway.openai().models.retrieve("oai.gpt-4o-mini")
    assert m.id == "oai.gpt-4o-mini"
    m = gateway.anthropic("/claude").models.retrieve("ant.claude-sonnet-4-5")
    assert m.id == "ant.claude-sonnet-4-5"
    g = gateway.genai("/gemini")
    gm = g.models.get(model="gem.gemini-2.5-flash")
    assert gm.name == "models/gem.gemini-2.5-flash"
    r = gateway.get("/v1beta/models/gem.gemini-2.5-flash", headers={"x-goog-api-key": CLIENT_KEY})
    assert r.status_code == 200 and r.json()["name"] == "models/gem.gemini-2.5-flash"
    r = gateway.get("/v1/models/oai.mini", headers=AUTH)
    assert r.status_code == 200 and r.json()["id"] == "oai.mini"


def test_single_model_get_unknown_is_404(gateway):
    with pytest.raises(openai.NotFoundError):
        gateway.openai().models.retrieve("nope.model")
    with pytest.raises(anthropic.NotFoundError):
        gateway.anthropic("/claude").models.retrieve("oai.nope")
    g = gateway.genai("/gemini")
    with pytest.raises(gerrors.ClientError) as ei:
        g.models.get(model="gem.nope")
    assert ei.value.code == 404


def test_model_listing_requires_auth(gateway):
    assert gateway.get("/v1/models").status_code == 401
    assert gateway.get("/gemini/v1beta/models").status_code == 401


# --------------------------------------------------------------------------------------
# Model resolution on generate endpoints
# --------------------------------------------------------------------------------------
HEADERS = {
    "chat": AUTH, "responses": AUTH,
    "anthropic": {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
    "gemini": {"x-goog-api-key": CLIENT_KEY},
}


@pytest.mark.parametrize("protocol", ["chat", "responses", "anthropic", "gemini"])
@pytest.mark.parametrize("model", ["nope.gpt-4o-mini", "oai.nope", "mistral-large-2"])
def test_unknown_model_is_404_naming_it(gateway, mock_upstream, protocol, model):
    r = gateway.post(request_path(protocol, model), json=request_body(protocol, model), headers=HEADERS[protocol])
    assert_error_format(r, protocol, 404, contains=model)
    assert mock_upstream.requests() == []


def test_unknown_model_sdk_errors(gateway):
    with pytest.raises(openai.NotFoundError):
        gateway.openai().chat.completions.create(model="nope.x", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError):
        gateway.anthropic().messages.create(model="ant.nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    g = gateway.genai()
    with pytest.raises(gerrors.ClientError) as ei:
        g.models.generate_content(model="gem.nope", contents="x")
    assert ei.value.code == 404


def test_model_split_at_first_dot(gateway):
    # provider "echo", model "a.b.c"
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "echo.a.b.c", "dots ok"))
    assert_reply_ok(r, "chat", "dots ok")


def test_alias_model_maps_to_upstream_model(gateway, mock_upstream):
    r = gateway.post("/v1/chat/completions", headers=AUTH, json=request_body("chat", "oai.mini", "alias"))
    assert_reply_ok(r, "chat", "alias")
    assert mock_upstream.last("/v1/chat/completions")["body"]["model"] == "gpt-4o-mini"
