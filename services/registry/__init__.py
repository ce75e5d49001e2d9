"""The registry: galleries, persons, enrollment, inspection, bulk registration, erasure, consistency."""
