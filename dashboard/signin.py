"""The sign-in page: the only page a browser without a valid session gets. It shows nothing of the data.

Wrong passwords are throttled per user name and per client address in MongoDB (services.storage.signin_throttle),
so neither a new browser session nor a restart resets the count; every attempt is audited.
"""

from __future__ import annotations

import streamlit as st

from dashboard.auth import InvalidUserName, UsersFileError, authenticate, load_users, normalize_name
from dashboard.session import ENDED_KEY, client_address, context, settings, start_session
from services.storage.audit import audit
from services.storage.records import utcnow
from services.storage.signin_throttle import Lock, SigninThrottle


@st.cache_resource(show_spinner=False)
def _throttle(mongo_uri: str) -> SigninThrottle:
    return SigninThrottle(context().db.audit.database)


def throttle() -> SigninThrottle:
    return _throttle(settings().mongo_uri)


def signin_page() -> None:
    st.title("facereg")
    st.caption("Face identity platform. Sign in to continue.")
    ended = st.session_state.get(ENDED_KEY)
    if ended:
        st.info(str(ended))
    _users_file_hint()
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        attempt(name, password)


def _users_file_hint() -> None:
    path = settings().users_file
    try:
        if not load_users(path):
            st.warning(
                "No dashboard users are configured yet. Create an administrator with\n\n"
                "`python scripts/dashboard_users.py add admin --role admin`"
            )
    except UsersFileError as exc:
        st.error(str(exc))


def attempt(typed_name: str, password: str) -> None:
    """Check one sign-in: refused while locked, counted when wrong, a session when right."""
    now, address, name = utcnow(), client_address(), throttle_name(typed_name)
    ctx = context()
    details = {"address": address}
    lock = throttle().active_lock(name, address, now)
    if lock is not None:
        audit(ctx, f"dashboard:{name}", "signin_refused", f"user:{name}", {**details, "until": lock.until})
        st.error(locked_message(lock))
        return
    try:
        user = authenticate(settings().users_file, typed_name, password)
    except UsersFileError as exc:
        st.error(str(exc))
        return
    if user is None:
        audit(ctx, f"dashboard:{name}", "signin_failed", f"user:{name}", details)
        started = throttle().record_failure(name, address, now)
        if started is not None:
            audit(ctx, "dashboard", "signin_locked", started.key, {**details, "until": started.until})
            st.error(locked_message(started))
        else:
            st.error("Wrong user name or password.")
        return
    throttle().record_success(user.name, now)
    audit(ctx, f"dashboard:{user.name}", "signin", f"user:{user.name}", details)
    start_session(user)
    st.rerun()


def throttle_name(typed: str) -> str:
    """The name failures are counted under: the normalised name, or for a name that cannot be one, a
    bounded form of what was typed (such attempts are throttled and audited too)."""
    try:
        return normalize_name(typed)
    except InvalidUserName:
        return typed.strip().casefold()[:64] or "-"


def locked_message(lock: Lock) -> str:
    until = lock.until.astimezone(settings().tz)
    when = f"until {until:%Y-%m-%d %H:%M:%S} ({until.tzname()})"
    if lock.kind == "addr":
        return f"Too many failed sign-ins from your address: sign-in from it is locked {when}."
    return (
        f"Too many failed sign-ins: this user name is locked {when}. "
        "An administrator can lift it with `python scripts/dashboard_users.py unlock NAME`."
    )
