"""Duplicates: near-identical images and the same face under two persons; a check of the folder dedup on
injected copies."""
