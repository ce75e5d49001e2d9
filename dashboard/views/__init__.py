"""The dashboard's pages, one file each, run by `st.Page` from dashboard/app.py (a folder Streamlit does not
discover by itself); each page checks the session before it shows anything."""
