# make demo — run every party locally with demo data (SQLite);  make test — the whole test suite.
.PHONY: demo test test-postgres install lint bench bench-smpp bench-documents bench-auth bench-journey
export UV_PYTHON_DOWNLOADS := never

install:
	scripts/install-system-deps
	scripts/install-python-deps

demo: install
	.venv/bin/tasdid demo

test: install
	scripts/test

test-postgres: install
	scripts/with-postgres scripts/test

lint: install
	.venv/bin/ruff check src tests bench examples
	.venv/bin/lint-imports --no-cache

bench: install
	.venv/bin/python bench/import_bench.py

bench-smpp: install
	.venv/bin/python bench/smpp_bench.py

bench-documents: install
	.venv/bin/python bench/documents_bench.py

bench-auth: install
	TASDID_PG_DURABLE=1 scripts/with-postgres nice -n 10 .venv/bin/python bench/auth_bench.py --json docs/benchmarks-auth.json

# The end-to-end payment: virtual customers paying over HTTP against every party started as in production
# (SQLite; ARGS="--database postgres" for PostgreSQL). Table on stdout, JSON in bench/results/.
bench-journey: install
	nice -n 10 .venv/bin/python -m bench.journey $(ARGS)
