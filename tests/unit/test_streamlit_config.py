"""The shipped Streamlit configuration keeps the dashboard's protections on."""

from __future__ import annotations

import tomllib

from dashboard.uploads import MAX_UPLOAD_MB
from services.config import REPO_ROOT

CONFIG = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())


def test_xsrf_protection_is_on() -> None:
    assert CONFIG["server"]["enableXsrfProtection"] is True
    assert CONFIG["server"]["enableCORS"] is True  # Streamlit turns XSRF off without it


def test_the_server_upload_limit_is_the_apps_own() -> None:
    assert CONFIG["server"]["maxUploadSize"] == MAX_UPLOAD_MB


def test_browsers_get_no_error_details_and_nothing_is_reported() -> None:
    assert CONFIG["client"]["showErrorDetails"] == "none"
    assert CONFIG["browser"]["gatherUsageStats"] is False


def test_served_on_loopback_unless_told_otherwise() -> None:
    assert CONFIG["server"]["address"] == "127.0.0.1"
    assert CONFIG["server"]["headless"] is True
