# Two commands matter: `make site` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KATEX_DIR := site_src/vendor/katex

.PHONY: site test setup venv katex minisearch npmcheck sysdeps bench clean

site: setup
	$(PY) build.py build content

test: setup sysdeps npmcheck
	$(PY) -m pytest -q

setup: venv katex minisearch

# Debian packages some tests use; never fails (see tools/sysdeps).
sysdeps:
	@./tools/sysdeps

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# KaTeX CSS and fonts, from the npm package whose version matches pykatex's renderer.
katex: $(KATEX_DIR)/katex.min.css

$(KATEX_DIR)/katex.min.css: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	rm -rf $(KATEX_DIR) && mkdir -p $(KATEX_DIR)
	cp node_modules/katex/dist/katex.min.css $(KATEX_DIR)/
	cp -r node_modules/katex/dist/fonts $(KATEX_DIR)/fonts
	cp node_modules/katex/LICENSE $(KATEX_DIR)/LICENSE

# The npm packages themselves, for the tests that compare the shipped copies with them
# (without npm those tests skip, saying so).
npmcheck:
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: the KaTeX and MiniSearch cross-checks will skip"; fi

# MiniSearch, for the search page (the index itself is built by the site build).
MINISEARCH_DIR := site_src/vendor/minisearch
minisearch: $(MINISEARCH_DIR)/minisearch.js

$(MINISEARCH_DIR)/minisearch.js: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	rm -rf $(MINISEARCH_DIR) && mkdir -p $(MINISEARCH_DIR)
	cp node_modules/minisearch/dist/umd/index.js $@
	cp node_modules/minisearch/LICENSE.txt $(MINISEARCH_DIR)/LICENSE

bench: setup
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) bench/engine.py
	$(PY) bench/index.py
	$(PY) bench/site.py
	$(PY) bench/build.py

clean:
	rm -rf _site .cache
