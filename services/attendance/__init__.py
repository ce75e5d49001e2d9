"""Attendance: events with a cooldown, and frames from cameras or videos turned into events."""
