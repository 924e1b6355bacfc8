# The README's two commands.  Each does all of its own set-up on a fresh machine.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
# ONNX Runtime build: gpu (onnxruntime-gpu, falls back to the CPU provider) or cpu.
ORT     ?= gpu
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP   := $(VENV)/.installed
BUNDLES ?= bundles

.PHONY: demo test test-gpu setup browser clean

demo: setup
	$(VENV)/bin/apptool demo --bundles $(BUNDLES) --train-missing

test: setup browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -p no:cacheprovider -n 2 --dist loadscope

# The CUDA checks (tests/gpu, under 8 minutes on one GPU, a summary table at the end); one line where no GPU is.
test-gpu: setup
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  $(PY) -m pytest tests/gpu -m gpu -p no:cacheprovider -q; \
	else echo "test-gpu: skipped: no CUDA device here (torch.cuda.is_available() is False)"; fi

setup: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix pyproject.toml,$(PLUGINS))
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[$(ORT),train,demo,test]" $(addprefix -e ./,$(PLUGINS))
	touch $@

# Debian's Chromium for the browser tests (never `playwright install`: no downloads here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

clean:
	rm -rf $(VENV) $(BUNDLES)
