# The two commands that matter: `make run` (start everything) and `make test` (run every test).
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export FLASK_APP := app

.PHONY: install run migrate token test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(VENV)/bin/alembic upgrade head

token: migrate
	@$(VENV)/bin/flask orchestration create-token --actor user:admin --role admin

run: migrate
	@echo "First admin token (keep it; it is stored hashed only):"
	@$(VENV)/bin/flask orchestration create-token --actor user:admin --role admin
	@echo "API:  http://127.0.0.1:$(PORT)/api/orchestration   docs: http://127.0.0.1:$(PORT)/docs   console: http://127.0.0.1:$(PORT)/console"
	@rm -rf var/metrics && mkdir -p var/metrics
	PATH="$(abspath $(VENV))/bin:$$PATH" PORT=$(PORT) PROMETHEUS_MULTIPROC_DIR="$(abspath var/metrics)" \
		$(PY) -m app.procfile start -f Procfile

# Every test, then the real-worker automation tests again with RabbitMQ as the broker
# (the four built-in rules, redelivery, a worker killed mid-rule), each run in a vhost of its own.
test: install
	$(VENV)/bin/pytest
	ORCH_TEST_BROKER=rabbitmq $(VENV)/bin/pytest tests/integration/automation -q -k postgresql

lint: install
	$(VENV)/bin/ruff check app workers tests bench
	$(VENV)/bin/mypy app workers
	# strict on the app itself; flask-smorest/flask-httpauth decorators are untyped, the one exception
	$(VENV)/bin/mypy --strict --disable-error-code untyped-decorator app

bench: install
	$(PY) -m bench fair backtest_scan scale

clean:
	rm -rf $(VENV) var .pytest_cache
