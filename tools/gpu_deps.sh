# Sourced by tools/gpu_check.sh and tools/model_ab.sh: the libraries the whole program
# needs on a GPU machine that may lack PCRE2, utf8proc and OpenBLAS. If .gpudeps/debs
# holds their Debian packages (carried there from a Debian machine: `apt-get download`
# of libpcre2-dev libutf8proc-dev libopenblas-dev and their dependencies), they are
# unpacked into /opt/zcdeps, the loader and pkg-config are pointed there and
# `deps_args` gets the CMake arguments of a full build; without them, only the layers
# the CUDA kernels need (-DZC_GPU_ONLY=ON). `deps_note` says which.
deps_args=()
deps_note=""
if ! pkg-config --exists libpcre2-8 libutf8proc 2>/dev/null && ls .gpudeps/debs/*.deb >/dev/null 2>&1; then
  deps_root=/opt/zcdeps
  mkdir -p $deps_root
  for f in .gpudeps/debs/*.deb; do dpkg -x "$f" $deps_root; done
  deps_lib=$deps_root/usr/lib/x86_64-linux-gnu
  export LD_LIBRARY_PATH=$deps_lib:$deps_lib/openblas-pthread:${LD_LIBRARY_PATH:-}
  export PKG_CONFIG_PATH=$deps_lib/pkgconfig:$deps_root/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$deps_root
  deps_pkgc=$(command -v pkg-config || echo $deps_root/usr/bin/pkgconf)
  deps_args+=(-DZC_GPU_ONLY=OFF -DPKG_CONFIG_EXECUTABLE="$deps_pkgc"
              -DCMAKE_LIBRARY_PATH="$deps_lib/openblas-pthread;$deps_lib"
              -DCMAKE_INCLUDE_PATH="$deps_root/usr/include/x86_64-linux-gnu/openblas-pthread;$deps_root/usr/include")
  deps_note="libraries: Debian packages from .gpudeps/debs unpacked into $deps_root"
elif ! pkg-config --exists libpcre2-8 libutf8proc 2>/dev/null; then
  deps_args+=(-DZC_GPU_ONLY=ON)
  deps_note="missing PCRE2/utf8proc/OpenBLAS -> -DZC_GPU_ONLY=ON (kernel tests only)"
fi
