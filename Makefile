# The entry point for people. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY      := .venv/bin/python
STACK   := $(PY) stack/stackctl.py
SERVICE ?=
ARGS    ?=
SECURE  ?=

.PHONY: help setup up down status logs clean demo test test-unit lint format history bench \
        cluster-up cluster-down report

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: ## Python env, server artifacts and Spark packages (idempotent)
	@scripts/setup.sh

up: setup ## start the local stack (all, or SERVICE=...) and bootstrap it; SECURE=1: the secured stack
	@$(STACK) up $(if $(SECURE),--secure) $(SERVICE)

down: ## stop the local stack, plaintext or secured (all, or SERVICE=...)
	@if [ -x $(PY) ]; then $(STACK) down $(SERVICE); fi

status: ## each server: up/down, port, pid, memory
	@$(STACK) status $(SERVICE) || true

logs: ## a server's log: make logs SERVICE=kafka
	@$(STACK) logs $(SERVICE)

clean: down cluster-down ## stop everything and remove all state, data, logs and downloads (.state/)
	rm -rf .state

demo: setup ## run the whole pipeline on the local stack (SECURE=1: secured, each job as its own user)
	@SECURE=$(SECURE) scripts/demo.sh

report: setup ## HTML report with charts: make report ARGS="--window day --date D --country C --out DIR"
	@$(PY) -m clickstream_spark.tools.html_report $(ARGS)

test: setup ## every test, integration included (starts the stack if down, stops what it started)
	@scripts/run-tests.sh $(ARGS)

test-unit: setup ## unit tests only (no servers)
	@$(PY) -m pytest -m "not integration" $(ARGS)

lint: ## ruff check and format check
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

format: ## apply ruff format and fixes
	@.venv/bin/ruff check --fix . && .venv/bin/ruff format .

history: setup ## Spark History Server on http://127.0.0.1:18080 over .state/spark-events
	@scripts/history-server.sh

bench: setup ## benchmarks: make bench ARGS="--events 1000000"
	@$(PY) bench/aggregate.py $(ARGS)

cluster-up: setup ## Spark standalone cluster on loopback: spark://127.0.0.1:7077, UI :8080, 1 worker
	@$(PY) stack/cluster.py up

cluster-down: ## stop the Spark standalone cluster (worker, its executors, master)
	@if [ -x $(PY) ]; then $(PY) stack/cluster.py down; fi
