#!/usr/bin/env bash
# The README's first command: set up, then train the quickstart preset (R3GAN's recipe on the
# classic MNIST DCGAN tutorial's model, Fashion-MNIST) into runs/quickstart. Look at runs/quickstart/samples/latest.png after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -e runs/quickstart ]; then  # a previous quickstart is the user's: keep it, under a new name
    .venv/bin/python -m fastgan.run.lock runs/quickstart || exit 2  # never move a run a trainer is using
    old="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
    mv runs/quickstart "$old" && echo "quickstart: the previous runs/quickstart is now $old"
fi
exec .venv/bin/fastgan train configs/fashion-r3gan.toml --out runs/quickstart "$@"
