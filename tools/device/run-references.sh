#!/usr/bin/env bash
# The PyTorch reference dumps that need transformers (the device machine has it; this one does not):
# DPO parity (dpo_dump.py), the chat templates' apply_chat_template strings (chat_template_dump.py,
# which rewrites the fixture in place) and the longrope model past its original context
# (longrope_dump.py). Everything lands in one archive, $OUT/references.tar.gz, to unpack at the repo
# root here and commit: apps/trainer/fixtures/dpo/reference.safetensors,
# packages/model-grin/fixtures/chat-templates/cases.json, packages/model-grin/fixtures/mha-longrope-long/.
# Usage (repo root, on the device): bash tools/device/run-references.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/grin-out}
mkdir -p "$out"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
status=0
python3 tools/reference/dpo_dump.py --model packages/model-grin/fixtures/gqa2-window5 --out apps/trainer/fixtures/dpo || status=1
python3 tools/reference/chat_template_dump.py packages/model-grin/fixtures/chat-templates/cases.json || status=1
python3 tools/reference/longrope_dump.py --out packages/model-grin/fixtures || status=1
tar czf "$out/references.tar.gz" --ignore-failed-read apps/trainer/fixtures/dpo/reference.safetensors \
  packages/model-grin/fixtures/chat-templates/cases.json packages/model-grin/fixtures/mha-longrope-long
tar tzvf "$out/references.tar.gz"
exit $status
