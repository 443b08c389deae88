# Two commands do everything on a fresh machine:
#   make run    the main job: `filmroll demo` (sandbox + filmroll on SQLite, live in the terminal)
#   make test   lint (ruff, mypy) + every test (unit, integration over real HTTP, e2e in Chromium)
.PHONY: run test lint bench clean

# Test processes (pytest-xdist). Most tests wait on sockets, subprocesses and the sandbox, so on two cores four
# processes keep both busy; an idle one takes tests queued for a busy one (worksteal), so no process ends the run
# alone. `make test TEST_WORKERS=0` runs in one process (for -s, pdb, a single test).
TEST_WORKERS ?= 4

run:
	@scripts/bootstrap
	.venv/bin/filmroll demo $(ARGS)

test:
	@scripts/bootstrap --test
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/pytest -n $(TEST_WORKERS) --dist worksteal --durations 15 $(ARGS)

lint:
	@scripts/bootstrap
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy

bench:
	@scripts/bootstrap
	.venv/bin/python bench/sandbox_load.py $(ARGS)

clean:
	rm -rf .venv build *.egg-info .pytest_cache .ruff_cache .hypothesis
