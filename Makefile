# `make demo` and `make test` create the virtual environment themselves on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch pinned to the wheels this project's machines serve from disk; override for yours:
#   make test TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
OUT ?= kinediff-quickstart

.PHONY: demo body-demo test lint docs bench clean-venv

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[test,viz]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/quickstart.py --out $(OUT)

body-demo: $(VENV)/.installed
	$(PY) examples/body_demo.py --out outputs/body-demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

# the layer contracts (pyproject's [tool.importlinter]) and ruff's rules (pyproject's [tool.ruff])
lint: $(VENV)/.installed
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

$(VENV)/.docs: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

# the documentation site; warnings are errors
docs: $(VENV)/.docs
	rm -rf docs/api/generated
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_body.py
	$(PY) benchmarks/bench_forward.py
	$(PY) benchmarks/bench_decoder.py
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_train.py

clean-venv:
	rm -rf $(VENV)
