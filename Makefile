# The two commands a newcomer needs: `make demo` and `make test`. Both set up what they need.
.PHONY: setup demo test lint bench lock

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/scm demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q -n 4 --dist loadfile

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy scm ingest transforms orchestration dashboards simulator

bench: setup
	.venv/bin/python -m bench

# Re-pin every Python package (exact versions with hashes) after changing pyproject.toml.
lock: setup
	.venv/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -q -o requirements.lock
