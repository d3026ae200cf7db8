# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Raw MNIST files: taken from MNIST_DIR when set, else ../shared/data/mnist when it
# exists, else the jobs look in their cache and download (see README).
MNIST_DIR ?= $(wildcard $(abspath ../shared/data/mnist))
export MNIST_DIR
OUT ?= out
EPOCHS ?= 10
RECIPE ?= seed

AIRFLOW_VENV ?= .venv-airflow

PROMOTED ?= $(OUT)/promoted

.PHONY: setup airflow-env run test lint bench bench-run bench-scale bench-trust bench-recipes bench-loop retrain clean

setup: $(VENV)/.installed

# --no-compile: Python compiles a module the first time it is imported instead of pip
# compiling all of TensorFlow's and Airflow's up front (35 s less for .venv, 2 cores).
$(VENV)/.installed: setup.py requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -c requirements.lock -e '.[test]'
	$(PY) -m pip check
	touch $@

# Airflow gets its own environment (its pins conflict with TensorFlow's): the DAG test uses it.
airflow-env: $(AIRFLOW_VENV)/.installed

$(AIRFLOW_VENV)/.installed: deploy/airflow/requirements.txt deploy/airflow/requirements.lock
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet --no-compile -c deploy/airflow/requirements.lock -r deploy/airflow/requirements.txt
	$(AIRFLOW_VENV)/bin/pip check
	touch $@

run: setup
	$(VENV)/bin/digits preprocess --output $(OUT)/data
	$(VENV)/bin/digits train --data $(OUT)/data --output $(OUT)/model --recipe $(RECIPE) --epochs $(EPOCHS)
	$(VENV)/bin/digits evaluate --data $(OUT)/data --model $(OUT)/model --output $(OUT)/report
	$(PY) -m jobs.make_images --data $(OUT)/data --split test --limit 2000 --output $(OUT)/images
	$(VENV)/bin/digits score --model $(OUT)/model --input '$(OUT)/images/*.png' --output $(OUT)/scores --date $$(date +%F)

# Gated retraining, as deploy/airflow/digits_retraining_dag.py runs it: a candidate in
# $(OUT)/retrain, promoted to $(PROMOTED) (what the nightly scorer reads) only if blessed.
# LABELS: labelled image folders (digits review --labels), learnt from beside MNIST.
# RELABEL: MNIST label corrections a person made (docs/data.md), e.g. docs/mnist-relabel.csv.
LABELS ?=
RELABEL ?=
retrain: setup
	$(VENV)/bin/digits preprocess --output $(OUT)/retrain/data $(foreach dir,$(LABELS),--labelled $(dir)) \
		$(if $(RELABEL),--relabel $(RELABEL))
	$(VENV)/bin/digits train --data $(OUT)/retrain/data --output $(OUT)/retrain/model --recipe $(RECIPE) --epochs $(EPOCHS)
	$(VENV)/bin/digits evaluate --data $(OUT)/retrain/data --model $(OUT)/retrain/model --output $(OUT)/retrain/report --baseline $(PROMOTED)
	$(VENV)/bin/digits promote --candidate $(OUT)/retrain/model --to $(PROMOTED)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Two workers (pytest-xdist), a test module each at a time; the datasets and models the
# tests share are made once for both (tests/conftest.py, made_once).
# The two environments are installed side by side (pip mostly waits on the registry and
# the disk: 75 s instead of 143 s from a fresh clone, 2 cores).
TEST_WORKERS ?= 2
test:
	@$(MAKE) --no-print-directory -j2 setup airflow-env
	@$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 tests

# About 55 minutes on a 2-core machine, most of it the strong model's three seeds.
bench: setup
	$(PY) -m bench.preprocess_bench
	test -f $(OUT)/data/manifest.json || $(VENV)/bin/digits preprocess --output $(OUT)/data
	$(PY) -m bench.train_bench all --data $(OUT)/data
	$(PY) -m bench.score_bench --data $(OUT)/data
	$(PY) -m bench.scale_bench --data $(OUT)/data
	$(PY) -m bench.trust_bench --data $(OUT)/data

# Calibration, statuses, robustness suites, scans, drift cost for seed and strong (about 30 minutes).
bench-trust: setup
	test -f $(OUT)/data/manifest.json || $(VENV)/bin/digits preprocess --output $(OUT)/data
	$(PY) -m bench.trust_bench --data $(OUT)/data

# The recipes side by side (seed, strong, robust with three seeds): accepted share, error
# among accepted, corruptions, low resolution, not-a-digit figures, training time, scoring
# throughput (51 minutes to 3.5 hours on 2 cores from nothing, by the CPU's bfloat16; models already trained and judged in
# out/bench/recipes are reused). RECIPES_COMPARED=seed,robust for fewer;
# CANDIDATE_OPTIONS="--members 4" trains the last recipe with those `digits train` options
# in place of the recipe's own numbers.
RECIPES_COMPARED ?= seed,strong,robust
CANDIDATE_OPTIONS ?=
bench-recipes: setup
	test -f $(OUT)/data/manifest.json || $(VENV)/bin/digits preprocess --output $(OUT)/data
	$(PY) -m bench.recipes_bench --data $(OUT)/data --recipes $(RECIPES_COMPARED) \
		--options='$(CANDIDATE_OPTIONS)'

# The review loop: score an in-house night, answer its review queue through the review
# page's HTTP interface, retrain with the answers, score held-out digits (seed and strong;
# several hours on 2 cores, most of it six trainings). RECIPES=seed for one recipe.
RECIPES ?= seed,strong
bench-loop: setup
	test -f $(OUT)/data/manifest.json || $(VENV)/bin/digits preprocess --output $(OUT)/data
	$(PY) -m bench.loop_bench --data $(OUT)/data --source $(MNIST_DIR) --recipes $(RECIPES)

# `make run`, this checkout against BASELINE (a commit) in the same run (about 15 minutes).
BASELINE ?= 39621ca
bench-run: setup
	$(PY) -m bench.run_bench --baseline $(BASELINE)

# Scoring 70,000 / 300,000 / 1,000,000 files and 1,000,000 records (about 15 minutes).
bench-scale: setup
	test -f $(OUT)/data/manifest.json || $(VENV)/bin/digits preprocess --output $(OUT)/data
	$(PY) -m bench.scale_bench --data $(OUT)/data

clean:
	rm -rf $(OUT)
