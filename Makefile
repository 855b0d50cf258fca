# Quick start: `make run` (whole pipeline on the demo gallery, prints the metric table), `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: run test ui serve install benchmarks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[postgres,test]"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/curatornet materialize
	$(BIN)/curatornet metrics

test: $(STAMP)
	$(BIN)/python -m pytest -q

ui: $(STAMP)
	$(BIN)/dagster dev -w workspace.yaml

# The visitor app over the serving snapshot `make run` published; CURATORNET_SERVE_HOST/PORT change the address.
serve: $(STAMP)
	$(BIN)/python -m curatornet_pipeline.webapp

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/bench_foundation.py
	$(BIN)/python benchmarks/bench_sampling.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_lineage.py
	$(BIN)/python benchmarks/bench_recommend.py
	$(BIN)/python benchmarks/bench_omp_wait_policy.py
	$(BIN)/python benchmarks/bench_refresh.py
	# The two app benchmarks serve the snapshot of data/ (run `make run` first).
	$(BIN)/python benchmarks/bench_webapp.py
	$(BIN)/python benchmarks/bench_webapp_under_refresh.py
	$(BIN)/python benchmarks/bench_artist_cap.py --database data/curatornet.duckdb
	$(BIN)/python benchmarks/bench_executors.py
	$(BIN)/python benchmarks/bench_big_input.py
	$(BIN)/python benchmarks/bench_embeddings.py
	$(BIN)/python benchmarks/bench_scaling.py
	# Last and longest: the whole `make run` on a fresh temporary instance, per-step wall times.
	$(BIN)/python benchmarks/bench_make_run.py

clean:
	rm -rf data/curatornet.duckdb data/curatornet.duckdb.wal data/tables data/serving_snapshot.duckdb data/demo_gallery_* data/reports data/logs .dagster_home/storage .dagster_home/history .dagster_home/schedules .dagster_home/logs
