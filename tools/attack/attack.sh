#!/usr/bin/env bash
# The attack harness (docs/attacks.md): builds what it needs, then runs tools/attack/attack.py
# (a clean swarm, then every attack with 1 and 2 attackers among the nodes). Flags go to attack.py:
#   tools/attack/attack.sh --out out/attack            # full matrix (default 4 min a run)
#   tools/attack/attack.sh --out out/attack --quick    # 1 attacker, 0.75 min a run
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ "${NOLOCO_SKIP_BUILD:-0}" != 1 ]]; then
  cmake --build --preset release --target noloco noloco-attacker linkemu >/dev/null
fi
exec /usr/bin/python3 tools/attack/attack.py "$@"
