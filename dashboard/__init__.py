"""The Streamlit dashboard (`streamlit run dashboard/app.py`): sign-in, the session, one page a file under views/.

Face work (checks, enrollment, search, evaluation) goes to the workers as jobs, so this process never loads the
face model (tests/unit/test_dashboard_imports.py).
"""
