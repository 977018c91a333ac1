# The two commands a newcomer needs: `make demo` and `make test`. Both set up what they need.
.PHONY: setup demo test lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/scm demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy scm ingest transforms orchestration dashboards simulator

bench: setup
	.venv/bin/python -m bench
