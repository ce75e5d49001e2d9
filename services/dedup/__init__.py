"""Duplicate faces: near-identical images and the same face under two persons."""
