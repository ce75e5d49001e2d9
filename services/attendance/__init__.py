"""Attendance: events with a per-(person, source) cooldown and daily presence; frames from cameras or videos
turned into events."""
