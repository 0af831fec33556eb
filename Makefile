# hks: every target runs inside the project's virtual environment (.venv), made by `make install`.
PYTHON_SYSTEM ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WITH_BO ?= 1
TORCH_INDEX ?=  # e.g. https://download.pytorch.org/whl/cpu where plain pip would pull torch's CUDA build

.DEFAULT_GOAL := help
.PHONY: help install run_hyperopt run_hyperopt_worker demo report test bench bench-long lint clean

$(PY):
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## install: .venv with the pinned requirements, hks itself, and (WITH_BO=1) torch CPU + Ax for --algo gp
install: $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
ifeq ($(WITH_BO),1)
	$(PY) -m pip install --quiet torch==2.13.0 $(if $(strip $(TORCH_INDEX)),--index-url $(strip $(TORCH_INDEX)))
	$(PY) -m pip install --quiet -r requirements-bo.txt
endif

## run_hyperopt: the search (resumes from results.pkl); settings from HKS_* variables or ARGS="--max-evals 50"
run_hyperopt:
	$(PY) hyperopt_optimize.py $(ARGS)

## run_hyperopt_worker: one distributed worker for the store in HKS_STORE / MONGO_DB_HOST (see docs/distributed.md)
run_hyperopt_worker:
	$(PY) -m hks worker $(ARGS)

## demo: four short trials on 2,000 images, minutes on a CPU; results in results/demo/
demo:
	HKS_DATASET_SIZE=2000 HKS_EPOCHS=2 HKS_MAX_EVALS=4 HKS_N_STARTUP_TRIALS=2 \
	HKS_RESULTS_DIR=results/demo HKS_TRIALS_FILE=results/demo/results.pkl \
	$(PY) hyperopt_optimize.py $(ARGS)

## report: results/report.html from results.pkl (see docs/report.md)
report:
	$(PY) -m hks report $(ARGS)

## test: the whole test suite (needs ../shared/data beside the project)
test:
	$(PY) -m pytest -q $(ARGS)

## bench: the quick benchmarks under bench/, each printing its figures and a ratio against its baseline
bench:
	$(PY) bench/train_throughput.py
	$(PY) bench/dispatch_overhead.py
	$(PY) bench/bench_report.py

## bench-long: the slow ones (minutes each): worker scaling, search quality, autoHyper, memory, spaces, pruning
bench-long:
	$(PY) bench/worker_scaling.py
	$(PY) bench/search_quality.py
	$(PY) bench/autolr_quality.py
	$(PY) bench/memory_growth.py
	$(PY) bench/space_quality.py
	mkdir -p results
	$(PY) bench/pruning.py --pruners none,asha --json results/pruning_runs.json
	$(PY) bench/pruning_replay.py results/pruning_runs.json --trials 30

lint:
	$(PY) -m ruff check .

## clean: caches and build leftovers (results stay: see delete_results.sh)
clean:
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
