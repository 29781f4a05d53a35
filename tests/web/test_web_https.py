"""Behind a reverse proxy with HTTPS the session cookie is Secure; on plain loopback HTTP it cannot be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.store.db import Store
from bot.web import create_app
from tests.web.review_ui_helpers import make_config


@pytest.mark.parametrize(("redirect_url", "secure"), [("https://review.example.org/auth/callback", True),
                                                      ("", False)])
def test_the_session_cookie_is_secure_exactly_when_the_redirect_url_is_https(
        sim: Any, store: Store, tmp_path: Path, redirect_url: str, secure: bool) -> None:
    cfg = make_config(sim, tmp_path)
    cfg.review.redirect_url = redirect_url
    app = create_app(cfg, store, secret_key="test-key")
    start = app.test_client().get("/login")  # the sign-in keeps its PKCE verifier in the session cookie
    cookie = next(h for h in start.headers.getlist("Set-Cookie") if h.startswith("plantbot_session="))
    assert ("; Secure" in cookie) is secure
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    if secure:
        assert "redirect_uri=https%3A%2F%2Freview.example.org%2Fauth%2Fcallback" in start.headers["Location"]
