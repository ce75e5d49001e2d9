# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv on first use.
SHELL := /bin/bash
PY := .venv/bin/python
LFW ?= $(or $(FACEREG_DATASETS),../shared/datasets)/lfw
OUT ?= reports
DEMO_GALLERY ?= lfw-demo

.PHONY: venv demo eval test lint services stop bench clean

venv:
	@scripts/bootstrap.sh

# The main job: local servers + 2 workers, an admin user, a demo gallery of 100 LFW people (Top-K
# evaluated on their held-out photos), and the dashboard left running at http://127.0.0.1:8501.
demo: venv
	@scripts/install_system_deps.sh --runtime
	$(PY) scripts/local_services.py start --workers 2
	@$(PY) scripts/dashboard_users.py add admin --role admin --generate --if-missing
	@if [ -d "$(LFW)/images" ]; then \
	  $(PY) scripts/build_database.py "$(LFW)/images" --gallery $(DEMO_GALLERY) --min-images 4 --max-persons 100 \
	    --enroll-per-person 2 --evaluate --out $(OUT)/demo \
	  || { rc=$$?; [ $$rc -eq 1 ] || exit $$rc; \
	       echo "demo: some photos were not enrolled (exit 1), each listed in $(OUT)/demo/report.json"; }; \
	else \
	  echo "demo: no LFW at $(LFW) (set FACEREG_DATASETS to the folder holding lfw/); register your own folder of"; \
	  echo "      <person>/<images> with: $(PY) scripts/build_database.py DIR --gallery $(DEMO_GALLERY) --evaluate"; \
	fi
	FACEREG_GALLERY=$(DEMO_GALLERY) $(PY) scripts/local_services.py start --dashboard
	@echo "Dashboard running at http://127.0.0.1:$${FACEREG_DASHBOARD_PORT:-8501} (gallery $(DEMO_GALLERY)); sign in as admin."
	@if [ -d "$(LFW)/images" ]; then \
	  $(PY) scripts/make_test_video.py $(OUT)/demo/camera --lfw "$(LFW)" --seed 7 >/dev/null || exit $$?; \
	  $(PY) scripts/build_database.py $(OUT)/demo/camera/enroll --gallery $(DEMO_GALLERY) --enroll-per-person 0 \
	    --inline --out $(OUT)/demo/camera >/dev/null; rc=$$?; [ $$rc -le 1 ] || exit $$rc; \
	  echo "demo: a camera at a door (a generated video of LFW faces, 40 s): watch it on the Cameras page"; \
	  $(PY) scripts/realtime_attendance.py $(OUT)/demo/camera/video.mp4 --gallery $(DEMO_GALLERY) \
	    --name demo-door --cooldown 8 || exit $$?; \
	fi
	@echo "Its arrivals and unknown visitors are on the Attendance page. Stop everything with: make stop"

# Accuracy on the full LFW protocols (about 15 minutes on 2 cores): View 2 pairs and the gallery split.
eval: venv
	$(PY) scripts/verify_faces.py "$(LFW)/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg" "$(LFW)/images/Aaron_Peirsol/Aaron_Peirsol_0002.jpg"
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

stop: venv
	$(PY) scripts/local_services.py stop

bench: venv
	$(PY) scripts/benchmark.py embed --out $(OUT)/benchmarks
	$(PY) scripts/benchmark.py index --out $(OUT)/benchmarks

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
