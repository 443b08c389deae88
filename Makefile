# Two commands do everything on a fresh machine:
#   make run    the main job: `filmroll demo` (sandbox + filmroll on SQLite, live in the terminal)
#   make test   lint (ruff, mypy) + every test (unit, integration over real HTTP, e2e in Chromium)
.PHONY: run test lint bench clean

run:
	@scripts/bootstrap
	.venv/bin/filmroll demo $(ARGS)

test:
	@scripts/bootstrap --test
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/pytest $(ARGS)

lint:
	@scripts/bootstrap
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy

bench:
	@scripts/bootstrap
	.venv/bin/python bench/sandbox_load.py $(ARGS)

clean:
	rm -rf .venv build *.egg-info .pytest_cache .ruff_cache .hypothesis
