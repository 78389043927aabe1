# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BIND ?= 127.0.0.1:8000

.PHONY: run test fuzz lint fmt i18n bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

## run: install, migrate the SQLite database, load the demo alliance, print a key, serve + scheduler
run: $(VENV)/.installed
	$(BIN)/matcher db upgrade
	$(BIN)/matcher demo
	@echo
	@echo "Admin key (shown once): $$($(BIN)/matcher keys create --role admin --name make-run)"
	@password=$$($(BIN)/python -c "import secrets; print(secrets.token_urlsafe(12))"); \
	MATCHER_USER_PASSWORD=$$password $(BIN)/matcher users create --update \
		--email coordinator@emca.example.cn --alliance EMCA >/dev/null 2>&1 && \
	echo "Web page: http://$(BIND)/  sign in as coordinator@emca.example.cn / $$password"
	@echo "API:      http://$(BIND)/api/v1/  (try: curl -H 'Authorization: Bearer <key>' http://$(BIND)/api/v1/alliances)"
	@echo "API docs: http://$(BIND)/docs"
	@echo "Health:   http://$(BIND)/readyz   Metrics: http://$(BIND)/metrics"
	@echo "Scheduler: runs beside the API (queued match runs, reminders, outbox); Ctrl-C stops both"
	@echo "Emails:   without MATCHER_SMTP_URL they are written to instance/outbox/*.eml"
	@echo
	@trap 'kill $$scheduler 2>/dev/null' EXIT INT TERM; \
	$(BIN)/matcher scheduler & scheduler=$$!; \
	$(BIN)/matcher serve --bind $(BIND)

## test: install the test extras and run the whole suite (SQLite and PostgreSQL)
test: $(VENV)/.installed-test
	$(BIN)/pytest

## fuzz: the schema fuzz test at length (200 random examples per operation, plus boundary cases)
fuzz: $(VENV)/.installed-test
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/pytest tests/api/test_fuzz.py

## lint: ruff and mypy, as CI runs them
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## i18n: after changing texts: collect the message ids in use, add new ones to both catalogs
## (fill in their text), drop unused ones, compile the .mo files the service reads
i18n: $(VENV)/.installed
	mkdir -p build
	$(BIN)/pybabel extract -F babel.cfg -k Message -k translate:2 -k N_ --no-location \
		--sort-output --omit-header -o build/messages.pot . 2>/dev/null
	$(BIN)/pybabel update -i build/messages.pot -d matcher/translations --no-fuzzy-matching \
		--ignore-obsolete --width 100
	$(BIN)/pybabel compile -d matcher/translations --statistics

## bench: the hot-path benchmarks (see bench/)
bench: $(VENV)/.installed-test
	$(BIN)/python bench/bulk_upsert.py
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/preferences.py
	$(BIN)/python bench/reminders.py
	$(BIN)/python bench/activity.py
	$(BIN)/python bench/request_path.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/webhooks.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache .hypothesis
