"""Reports: the dashboard's overview figures, the attendance report as CSV, spreadsheet-safe exports."""
