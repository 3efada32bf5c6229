#!/usr/bin/env bash
# The README's first command: set up, then train the default preset (a DCGAN on
# Fashion-MNIST) into runs/quickstart. Look at runs/quickstart/samples/latest.png after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
rm -rf runs/quickstart
exec .venv/bin/fastgan train configs/fashion-dcgan.toml --out runs/quickstart "$@"
