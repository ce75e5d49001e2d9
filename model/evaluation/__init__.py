"""Evaluation maths: metrics, plots, and the LFW verification / identification protocols."""
