# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv on first use.
SHELL := /bin/bash
PY := .venv/bin/python
LFW ?= $(or $(FACEREG_DATASETS),../shared/datasets)/lfw
OUT ?= reports

.PHONY: venv demo test lint services services-stop bench clean

venv:
	@scripts/bootstrap.sh

demo: venv
	@test -d "$(LFW)/images" || { echo "demo: LFW not found at $(LFW); set FACEREG_DATASETS to the folder holding lfw/"; exit 1; }
	$(PY) scripts/verify_faces.py "$(LFW)/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg" "$(LFW)/images/Aaron_Peirsol/Aaron_Peirsol_0002.jpg"
	$(PY) scripts/verify_faces.py "$(LFW)/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg" "$(LFW)/images/George_W_Bush/George_W_Bush_0001.jpg"
	$(PY) scripts/evaluate.py verify --root "$(LFW)" --pairs "$(LFW)/verify_pairs_folds.csv" --out $(OUT)/lfw_view2
	$(PY) scripts/evaluate.py identify --root "$(LFW)" --split "$(LFW)/gallery_split.csv" --out $(OUT)/lfw_gallery

lint: venv
	.venv/bin/ruff check .
	.venv/bin/mypy

test: venv lint
	@scripts/install_system_deps.sh
	$(PY) -m pytest -q

services: venv
	$(PY) scripts/local_services.py start

services-stop: venv
	$(PY) scripts/local_services.py stop

bench: venv
	$(PY) scripts/benchmark.py embed --out $(OUT)/benchmarks
	$(PY) scripts/benchmark.py index --out $(OUT)/benchmarks

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
