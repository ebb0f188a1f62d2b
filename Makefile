# topicproj: `make run` sets up and runs the demo, `make test` runs the checks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_MODEL ?= runs/demo-model
TMDB ?= ../shared/data/tmdb_5000_movies.csv.zip

.PHONY: install run demo-model test lint evaluate study clean proto

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

# The main job: serve the demo model (movie themes from the synthetic catalog, trained on first use)
# over gRPC on 127.0.0.1:50051, with Prometheus metrics on :9095/metrics. Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/topicproj serve

# Train the demo model afresh and show its topics.
demo-model: $(STAMP)
	$(BIN)/topicproj train --demo --output $(DEMO_MODEL) --overwrite
	$(BIN)/topicproj inspect --model $(DEMO_MODEL) --top 6

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

# The reference evaluation on the TMDB data (under 10 minutes on 2 cores).
evaluate: $(STAMP)
	$(BIN)/topicproj evaluate --input $(TMDB) --topics 50 --activations relu,leaky_relu,prelu,overlap --seeds 0,1,2 --output reports/tmdb

# The activation study of docs/activation.md: every table and figure (about 20 minutes on 2 cores).
study: $(STAMP)
	$(BIN)/topicproj study --input $(TMDB) --output reports/study

clean:
	rm -rf $(VENV) runs reports .pytest_cache .ruff_cache

# Regenerate the Python code for the gRPC contract (committed; a test checks it is current).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto \
		--grpc_python_out=proto proto/topicproj/v1/topicproj.proto
