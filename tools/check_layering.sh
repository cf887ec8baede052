#!/usr/bin/env bash
# Fails when a module includes a header it must not see (docs/architecture.md, "Layers"):
#   torch only under trainer/, RocksDB only under storage/, Asio and libsodium only under p2p/
#   (and trainer/node), and p2p/storage/common never include each other or trainer/.
# CMake link lines enforce the same graph for symbols; this catches header-only leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() { # label, include-regex, allowed-path-regex
  local hits
  hits=$(git ls-files '*.h' '*.hpp' '*.cc' '*.cpp' | grep -v -E '^(tests|tools|fuzz)/' \
    | grep -v -E "$3" | xargs -r grep -n -E "$2" || true)
  if [ -n "$hits" ]; then
    echo "layering: $1 included outside its module:"; echo "$hits"; fail=1
  fi
}
check "libtorch" '#include *[<"](torch/|ATen/|c10/)' '^trainer/'
check "RocksDB" '#include *[<"]rocksdb/' '^storage/'
check "Asio/libsodium" '#include *[<"](asio|sodium)' '^(p2p/|trainer/node/)'
check "trainer headers" '#include *"trainer/' '^(trainer/|cli/)'
check "p2p headers" '#include *"p2p/' '^(p2p/|trainer/node/|cli/)'
check "storage headers" '#include *"storage/' '^(storage/|trainer/node/|cli/)'
if [ $fail -eq 0 ]; then echo "layering: ok"; fi
exit $fail
