"""Search: 1:N identification (open set) and 1:1 verification."""
