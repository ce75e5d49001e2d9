"""Command-line entry points (thin CLIs) and the local process supervisor."""
