"""Gallery evaluation: Top-K on held-out probes, open-set calibration, evaluation inputs."""
