"""What every page shares: the login gate, the signed-in user, the service context and the gallery."""

from __future__ import annotations

import time

import streamlit as st

from dashboard.auth import User, UsersFileError, authenticate, load_users
from services.config import Settings, get_settings
from services.context import ServiceContext, open_context
from services.errors import StorageUnavailable
from services.galleries import list_galleries

# After this many wrong passwords in a browser session, sign-in pauses for LOCKOUT_S.
MAX_FAILURES = 5
LOCKOUT_S = 60.0


def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner="Connecting to MongoDB and Chroma ...")
def _context(mongo_uri: str, data_dir: str) -> ServiceContext:
    """One context per server process. The face model is never loaded here: workers do that work."""
    return open_context(settings())


def context() -> ServiceContext:
    s = settings()
    try:
        return _context(s.mongo_uri, str(s.data_dir))
    except StorageUnavailable as exc:
        st.error(f"The database cannot be reached: {exc}")
        st.stop()
        raise  # unreachable: st.stop() ends the script run


def current_user() -> User | None:
    user = st.session_state.get("user")
    return user if isinstance(user, User) else None


def login_gate() -> User:
    """The signed-in user; otherwise the sign-in form, and nothing else of the app is run."""
    user = current_user()
    if user is not None:
        return user
    st.title("facereg")
    st.caption("Face identity platform. Sign in to continue.")
    path = settings().users_file
    try:
        if not load_users(path):
            st.warning(
                f"No dashboard users are configured yet ({path}). Create an administrator with\n\n"
                "`python scripts/dashboard_users.py add admin --role admin`"
            )
    except UsersFileError as exc:
        st.error(str(exc))
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        _try_login(name, password)
    st.stop()
    raise AssertionError("unreachable")


def _try_login(name: str, password: str) -> None:
    locked_until = float(st.session_state.get("login_locked_until", 0.0))
    if time.time() < locked_until:
        st.error(f"Too many failed attempts; try again in {locked_until - time.time():.0f} s.")
        return
    try:
        user = authenticate(settings().users_file, name, password)
    except UsersFileError as exc:
        st.error(str(exc))
        return
    if user is None:
        failures = int(st.session_state.get("login_failures", 0)) + 1
        st.session_state["login_failures"] = failures
        if failures >= MAX_FAILURES:
            st.session_state["login_locked_until"] = time.time() + LOCKOUT_S
            st.session_state["login_failures"] = 0
        st.error("Wrong user name or password.")
        return
    st.session_state["user"] = user
    st.session_state.pop("login_failures", None)
    st.rerun()


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
        for key in list(st.session_state):
            del st.session_state[key]
        st.rerun()
