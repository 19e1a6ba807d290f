# PatientLine — `make run` to try it, `make test` to check it.
SHELL := /bin/bash
UV := python3 -m uv
VENV := .venv
PY := $(VENV)/bin/python
VENDOR := src/patientline/web/static/vendor
PATIENTLINE_TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
export PATIENTLINE_TEST_DATABASE_URL

.PHONY: run test lint fmt bench setup assets migrate seed test-setup voice-setup clean

run: setup voice-setup migrate seed
	@echo ""
	@echo "  PatientLine demo — http://127.0.0.1:8000"
	@echo "  Log in as admin, supervisor1, agent01 or handler-xnk with password Demo-8585-2026"
	@echo "  Knowledge panel: /kb   Knowledge editor: /kb/edit   Patient FAQ (no login): /faq"
	@echo "  Calls ring in agent01's bar (press Ready) and open the caller in the workbench: /workbench"
	@echo "  supervisor1: wallboard /routing/wallboard, the simulated HIS (slow it down, make it fail): /admin/his"
	@echo "  Web chat (no login): /chat, the widget on a hospital page: /chat/demo-site; agents answer in /chat/desk"
	@echo "  Phone line: dial 8585 at sip:127.0.0.1:5080 (register a softphone there as agent01, password Demo-8585-2026); IVR flows: /voice/flows"
	@echo ""
	PATIENTLINE_DEMO_TRAFFIC=1 PATIENTLINE_HL7_LISTEN=127.0.0.1:2575 PATIENTLINE_VOICE=1 PATIENTLINE_VOICE_ONCALL_PHONE=13900990000 $(VENV)/bin/patientline serve

setup: $(VENV)/.synced assets

$(VENV)/.synced: pyproject.toml uv.lock
	python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	touch $@

assets: $(VENDOR)/.copied

$(VENDOR)/.copied: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx-ext-sse/dist/sse.min.js \
	   node_modules/alpinejs/dist/cdn.min.js node_modules/echarts/dist/echarts.min.js $(VENDOR)/
	mv $(VENDOR)/cdn.min.js $(VENDOR)/alpine.min.js
	mv $(VENDOR)/sse.min.js $(VENDOR)/sse.js
	touch $@

migrate: setup
	$(VENV)/bin/patientline migrate

seed: migrate
	$(VENV)/bin/patientline seed-demo

# The phone line's Debian tools: Kamailio (SIP front), espeak-ng and sox (prompts), sipp (test callers).
voice-setup:
	@missing=""; [ -x /usr/sbin/kamailio ] || missing="kamailio"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null 2>&1 || missing="$$missing sox"; \
	command -v sipp >/dev/null 2>&1 || missing="$$missing sip-tester"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages: $$missing (install them as root)"; exit 1; fi; \
	fi

test-setup: setup voice-setup
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	fc-list 2>/dev/null | grep -q "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages: $$missing (install them as root)"; exit 1; fi; \
	fi

test: test-setup lint
	$(VENV)/bin/pytest -p no:cacheprovider -x -q

lint: setup
	$(VENV)/bin/ruff check src tests bench migrations
	$(VENV)/bin/mypy src

fmt: setup
	$(VENV)/bin/ruff check --fix src tests bench migrations
	$(VENV)/bin/ruff format src tests bench

bench: setup migrate
	$(PY) bench/http.py
	$(PY) bench/knowledge.py
	$(PY) bench/knowledge_cluster.py
	$(PY) bench/workorders.py
	$(PY) bench/routing.py
	$(PY) bench/patients.py
	$(PY) bench/chat.py
	$(PY) bench/voice.py

clean:
	rm -rf $(VENV) node_modules $(VENDOR) var
