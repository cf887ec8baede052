#!/usr/bin/env bash
# Installs every Debian package noloco needs to build, test and run its demo.
# Idempotent: packages already present are left alone; safe to run again.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-pthread          # trainer; OpenBLAS makes matmuls ~12x faster than reference BLAS
  libasio-dev libsodium-dev                  # p2p
  libgloo-dev                                # tools/bench/gloo_allreduce: the all-reduce we compare against
  librocksdb-dev                             # storage
  libmsgpack-cxx-dev libzstd-dev             # wire payloads, compression
  libxxhash-dev                              # xxh3_64 checksums (codec, store records, checkpoints)
  xxhash                                     # xxhsum: computed the xxh3_64 test vectors (tests/common/hash_test.cc)
  libspdlog-dev libcli11-dev nlohmann-json3-dev
  prometheus                                 # tests/metrics: a real server scrapes `noloco run --metrics`
  catch2                                     # tests (Catch2 v2)
  fortunes                                   # default corpus: real English text
  libcairo2-dev fonts-dejavu-core            # the demo's PNG chart (cli/png_chart.cc)
  python3 python3-matplotlib                 # plots from tools/
  iproute2 iptables                          # network namespaces and NAT routers: tools/journeys, tests/p2p/nat_netns_e2e
  nodejs                                     # js-libp2p interop peer (tools/interop); needs Node >= 20
  clang libclang-rt-14-dev                   # fuzz preset: libFuzzer + sanitizer runtimes (tools/fuzz.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

# npm comes with the nodesource nodejs package; Debian's own nodejs needs Debian's npm beside it.
if ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
fi
