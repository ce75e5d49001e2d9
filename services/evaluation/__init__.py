"""Gallery evaluation through the real services: Top-K on held-out probes, open-set figures and threshold
calibration, and where a split comes from (a CSV, a folder or zip, a gallery holdout)."""
