#!/usr/bin/env bash
# A content fingerprint of the sources (not of git metadata): tools/gpu_check.sh prints it
# next to the commit, because the GPU machine's copy of .git can lag behind the working
# tree it builds. Run it in a checkout to see which tree a logged run built.
set -euo pipefail
cd "$(dirname "$0")/.."
find src apps tests bench tools CMakeLists.txt -type f \
  \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.sh' -o -name '*.py' \
  -o -name 'CMakeLists.txt' \) -print0 | LC_ALL=C sort -z | xargs -0 sha1sum | sha1sum | cut -c1-12
