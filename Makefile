# topicproj: `make run` sets up and runs the demo, `make test` runs the checks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_MODEL ?= runs/demo-model
TMDB ?= ../shared/data/tmdb_5000_movies.csv.zip
# Tools the checks use, each in an ignored folder of its own:
# - buf (the proto linter and breaking-change checker), from the npm registry;
# - the slim client alone (`pip install .`, no server extra), for the test that it works
#   without torch;
# - tritonclient, for the Open Inference Protocol tests: it pins protobuf below 7, which the
#   project's generated code refuses, so it lives in its own environment.
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
CLIENT_VENV := .venv-client
OIP_VENV := .venv-oip
TRITONCLIENT := tritonclient[grpc]==2.73.0

.PHONY: install run demo-model test lint evaluate study clean proto contract deploy-files dist image

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,dev,ray,otel]'
	touch $(STAMP)

# The main job: serve the demo model (movie themes from the synthetic catalog, trained on first use)
# over gRPC on 127.0.0.1:50051, with Prometheus metrics on :9095/metrics. Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/topicproj serve

# Train the demo model afresh and show its topics.
demo-model: $(STAMP)
	$(BIN)/topicproj train --demo --output $(DEMO_MODEL) --overwrite
	$(BIN)/topicproj inspect --model $(DEMO_MODEL) --top 6

$(BUF):
	npm install --prefix .tools --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

# The wheel and the source distribution, checked by twine: what `pip install` takes. The wheel's
# only top-level import name is `topicproj` (a test reads its RECORD in the client's venv).
SOURCES := pyproject.toml README.md $(shell git ls-files proto models service 2>/dev/null)
dist/.stamp: $(STAMP) $(SOURCES)
	rm -rf dist build
	$(BIN)/python -m build --outdir dist . > /dev/null
	$(BIN)/twine check --strict dist/*
	touch $@

dist: dist/.stamp

# The client alone, from the built wheel, in a venv of its own: no torch, no server extra.
$(CLIENT_VENV)/.stamp: dist/.stamp
	rm -rf $(CLIENT_VENV)
	$(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/python -m pip install --quiet dist/topicproj-*.whl
	touch $@

$(OIP_VENV)/.stamp:
	rm -rf $(OIP_VENV)
	$(PYTHON) -m venv $(OIP_VENV)
	$(OIP_VENV)/bin/python -m pip install --quiet '$(TRITONCLIENT)'
	touch $@

# ruff, then the contract: buf lint (STANDARD rules) and buf breaking against the contract as
# accepted in proto/contract.json.
lint: $(STAMP) $(BUF)
	$(BIN)/ruff check .
	$(BUF) lint
	$(BUF) breaking --against proto/contract.json

# Accept the current contract as the one later changes are checked against. Run it after a
# compatible change has passed `make lint`; an incompatible one means a new package (v2).
contract: $(BUF)
	$(BUF) breaking --against proto/contract.json
	$(BUF) build --exclude-source-info -o proto/contract.json

# Debian's prometheus package: promtool for the alert rules, and a real server for the
# dashboard check (its service is not started).
PROMETHEUS := /usr/bin/promtool
$(PROMETHEUS):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus

# Rewrite the alert rules, their unit tests and the Grafana dashboard from deploy/generate.py.
deploy-files: $(STAMP)
	$(BIN)/python deploy/generate.py

test: lint $(CLIENT_VENV)/.stamp $(OIP_VENV)/.stamp $(PROMETHEUS)
	TOPICPROJ_CLIENT_PYTHON=$(CURDIR)/$(CLIENT_VENV)/bin/python \
		TOPICPROJ_TRITON_PYTHON=$(CURDIR)/$(OIP_VENV)/bin/python \
		$(BIN)/python -m pytest -q

# The reference evaluation on the TMDB data (under 10 minutes on 2 cores).
evaluate: $(STAMP)
	$(BIN)/topicproj evaluate --input $(TMDB) --topics 50 --activations relu,leaky_relu,prelu,overlap --seeds 0,1,2 --output reports/tmdb

# The activation study of docs/activation.md: every table and figure (about 20 minutes on 2 cores).
study: $(STAMP)
	$(BIN)/topicproj study --input $(TMDB) --output reports/study

clean:
	rm -rf $(VENV) $(CLIENT_VENV) $(OIP_VENV) .tools runs reports dist build .pytest_cache .ruff_cache

# Build the Dockerfile without a Docker daemon (buildah, chroot isolation; as root), run the image
# and check that it answers health and a projection, then print its size. Not part of `test`: it
# takes minutes and installs buildah and debootstrap when they are missing.
image:
	deploy/image/build.sh

# Regenerate the Python code for the gRPC contracts (committed; a test checks it is current).
PROTOS := proto/topicproj/v1/topicproj.proto proto/topicproj/oip/v2/grpc_predict_v2.proto
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto \
		--grpc_python_out=proto $(PROTOS)
