# make demo — run every party locally with demo data (SQLite);  make test — the whole test suite.
.PHONY: demo test test-postgres install lint bench bench-smpp bench-documents bench-auth bench-journey bench-journey-scaleout
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

# The same at 1, 2 and 4 web processes per party on PostgreSQL, then load steps of 1, 2 and 8 customers at 2; one
# JSON (bench/results/journey-scaleout-postgres.json) and the plots in docs/ (bench/journey/plot.py).
bench-journey-scaleout: install
	nice -n 10 .venv/bin/python -m bench.journey.scaleout --web-processes 1,2,4 --customers 4 --journeys 40 \
		--json bench/results/journey-scaleout-postgres.json
	nice -n 10 .venv/bin/python -m bench.journey.scaleout --web-processes 2 --customers 1,2,8 --journeys 40 \
		--json bench/results/journey-scaleout-postgres.json --append
	.venv/bin/python -m bench.journey.plot
