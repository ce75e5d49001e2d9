"""Reports: the dashboard's overview figures and spreadsheet-safe exports."""
