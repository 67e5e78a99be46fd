# The two commands of the README:
#   make run    set up (first time) and run the server on the embedded SQLite store
#   make test   set up (first time) and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
TESTS  ?= tests
# two test workers (trial -j): the suite spends much of its time waiting on peers and
# real time, and one worker per core of the two-core CI machine halves it
TRIAL_ARGS ?= --jobs=2

.PHONY: run test setup clean-venv

# the media engine's C extension is built by the editable install
$(STAMP): pyproject.toml setup.py $(wildcard portaum_tx/rtp/csrc/*)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/twistd -n portaum $(ARGS)

test: $(STAMP)
	$(BIN)/python -m twisted.trial $(TRIAL_ARGS) $(TESTS)

clean-venv:
	rm -rf $(VENV)
