"""What every page shares: the signed-in user (checked on every run), the service context and the gallery."""

from __future__ import annotations

import time

import streamlit as st

from dashboard.auth import User, UsersFileError, credential_stamp
from services.config import Settings, get_settings
from services.context import ServiceContext, open_context
from services.errors import StorageUnavailable
from services.registry.galleries import list_galleries
from services.storage.audit import audit

USER_KEY, STAMP_KEY, SEEN_KEY, ENDED_KEY = "user", "auth_stamp", "auth_last_seen", "auth_ended"


def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner="Connecting to MongoDB and Chroma ...")
def _context(mongo_uri: str, data_dir: str) -> ServiceContext:
    """One context per server process and store address. The face model is never loaded here: workers
    do that work."""
    return open_context(settings())


def context() -> ServiceContext:
    s = settings()
    try:
        return _context(s.mongo_uri, str(s.data_dir))
    except StorageUnavailable as exc:
        st.error(f"The database cannot be reached: {exc}")
        st.stop()
        raise  # unreachable: st.stop() ends the script run


def client_address() -> str:
    """The browser's address as the server sees it ("unknown" where there is none, as in AppTest)."""
    try:
        address = st.context.ip_address
    except (AttributeError, RuntimeError):
        return "unknown"
    return address if isinstance(address, str) and address else "unknown"


def start_session(user: User) -> None:
    """Mark this browser session signed in as `user`, bound to the user's current credentials."""
    st.session_state[USER_KEY] = user
    st.session_state[STAMP_KEY] = credential_stamp(settings().users_file, user.name)
    st.session_state[SEEN_KEY] = time.time()
    st.session_state.pop(ENDED_KEY, None)


def end_session(reason: str, action: str) -> None:
    """Forget everything this browser session held; the sign-in page shows `reason`."""
    user = current_user()
    if user is not None:
        audit(context(), f"dashboard:{user.name}", action, f"user:{user.name}", {"address": client_address()})
    for key in list(st.session_state):
        del st.session_state[key]
    if reason:
        st.session_state[ENDED_KEY] = reason


def signed_in_user(touch: bool = True) -> User | None:
    """The signed-in user, after checking that the session is still valid: not idle for longer than the
    timeout, and the user still exists with the password and role they signed in with. `touch=False`
    (a page polling by itself, not the person) checks without counting as activity."""
    user = current_user()
    if user is None:
        return None
    now = time.time()
    idle = now - float(st.session_state.get(SEEN_KEY, 0.0))
    timeout = settings().dashboard_idle_timeout_s
    if idle > timeout:
        end_session(f"You were signed out after {timeout / 3600:g} h without activity.", "session_expired")
        return None
    try:
        stamp = credential_stamp(settings().users_file, user.name)
    except UsersFileError:
        stamp = None
    if stamp is None or stamp != st.session_state.get(STAMP_KEY):
        end_session("Your account was changed or removed: sign in again.", "session_revoked")
        return None
    if touch:
        st.session_state[SEEN_KEY] = now
    return user


def require_user() -> User:
    """Every page calls this first: without a valid session nothing of the page runs."""
    user = signed_in_user()
    if user is None:
        st.warning("Sign in to continue.")
        st.stop()
        raise AssertionError("unreachable")
    return user


def current_user() -> User | None:
    """The user this session holds, as checked by `signed_in_user` at the start of this run."""
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, User) else None


def actor_name() -> str:
    """Who the audit trail names for an action taken in this session."""
    user = current_user()
    return f"dashboard:{user.name}" if user else "dashboard"


def is_admin() -> bool:
    user = current_user()
    return user is not None and user.is_admin


def require_admin(action: str) -> bool:
    """True for an admin; a viewer sees why the action is not offered."""
    if is_admin():
        return True
    st.info(f"Only an administrator can {action}. You are signed in as a viewer.")
    return False


def gallery() -> str:
    """The gallery chosen in the sidebar."""
    return str(st.session_state.get("gallery") or settings().gallery)


def _keep_gallery() -> None:
    # A plain session key outlives page switches; a widget's own key is dropped when a run skips it.
    st.session_state["gallery"] = st.session_state["gallery_select"]


def sidebar(user: User) -> None:
    ctx = context()
    names = sorted({g.name for g in list_galleries(ctx)} | {settings().gallery})
    current = gallery()
    st.sidebar.selectbox(
        "Gallery",
        names,
        index=names.index(current) if current in names else 0,
        key="gallery_select",
        on_change=_keep_gallery,
        help="Enrollment, search, evaluation and duplicate review work on this gallery.",
    )
    st.sidebar.caption(f"Signed in as **{user.name}** ({user.role})")
    if st.sidebar.button("Sign out", key="logout"):
        end_session("You are signed out.", "signout")
        st.rerun()
