"""Streamlit dashboard (see issue 5)."""
