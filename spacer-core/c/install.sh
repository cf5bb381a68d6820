#!/bin/sh
# Builds spacer-core's C library (static and shared, release, features ffi,std) and
# installs it under PREFIX (default /usr/local) with what a C or C++ build needs:
#
#   PREFIX/include/spacer.h
#   PREFIX/lib/libspacer_core.a
#   PREFIX/lib/libspacer_core.so.2 (+ libspacer_core.so link; 2 = SPACER_ABI_VERSION)
#   PREFIX/lib/cmake/spacer/spacerConfig.cmake, spacerConfigVersion.cmake
#       find_package(spacer 0.1 REQUIRED): targets spacer::spacer (shared) and
#       spacer::spacer_static
#   PREFIX/lib/pkgconfig/spacer.pc (shared), spacer-static.pc (static)
#
# Usage: spacer-core/c/install.sh [PREFIX]
# Needs cargo; CARGO_TARGET_DIR (default target/c-library) is where it builds.
set -eu
prefix="${1:-/usr/local}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target/c-library}"
version="0.1.0"
abi="2"
soname="libspacer_core.so.$abi"
# Static libraries the Rust standard library needs (rustc --print native-static-libs).
static_deps="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

grep -q "SPACER_ABI_VERSION $abi\$" "$root/spacer-core/include/spacer.h" || {
  echo "install.sh: ABI version $abi does not match spacer.h" >&2
  exit 1
}
cargo rustc --quiet --manifest-path "$root/spacer-core/Cargo.toml" --release \
  --features ffi,std --crate-type staticlib,cdylib --target-dir "$target" \
  -- -C "link-arg=-Wl,-soname,$soname"

mkdir -p "$prefix/include" "$prefix/lib/cmake/spacer" "$prefix/lib/pkgconfig"
cp "$root/spacer-core/include/spacer.h" "$prefix/include/spacer.h"
cp "$target/release/libspacer_core.a" "$prefix/lib/libspacer_core.a"
cp "$target/release/libspacer_core.so" "$prefix/lib/$soname"
ln -sf "$soname" "$prefix/lib/libspacer_core.so"

cat > "$prefix/lib/cmake/spacer/spacerConfig.cmake" <<CMAKE
# spacer $version: spacer-core's C library (installed by spacer-core/c/install.sh).
#   spacer::spacer         the shared library, libspacer_core.so.$abi
#   spacer::spacer_static  the static library, with the system libraries it needs
# Both carry the include directory of spacer.h. SPACER_ABI_VERSION is $abi.
get_filename_component(_spacer_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(SPACER_ABI_VERSION $abi)
if(NOT TARGET spacer::spacer)
  add_library(spacer::spacer SHARED IMPORTED)
  set_target_properties(spacer::spacer PROPERTIES
    IMPORTED_LOCATION "\${_spacer_prefix}/lib/$soname"
    IMPORTED_SONAME "$soname"
    INTERFACE_INCLUDE_DIRECTORIES "\${_spacer_prefix}/include")
endif()
if(NOT TARGET spacer::spacer_static)
  add_library(spacer::spacer_static STATIC IMPORTED)
  set_target_properties(spacer::spacer_static PROPERTIES
    IMPORTED_LOCATION "\${_spacer_prefix}/lib/libspacer_core.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_spacer_prefix}/include"
    INTERFACE_LINK_LIBRARIES "gcc_s;util;rt;pthread;m;dl;c")
endif()
unset(_spacer_prefix)
CMAKE

major="${version%%.*}"
minor="${version#*.}"
minor="${minor%%.*}"
cat > "$prefix/lib/cmake/spacer/spacerConfigVersion.cmake" <<CMAKE
# spacer $version: compatible with requests for $major.$minor.x up to $version (before 1.0
# a minor version may break the API, so only the same major.minor matches).
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION STREQUAL "")
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major" AND PACKAGE_FIND_VERSION_MINOR STREQUAL "$minor")
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
else()
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
CMAKE

cat > "$prefix/lib/pkgconfig/spacer.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: spacer
Description: spacer-core C ABI: SPACeR sim-agent policy, observations, tokens, kinematics
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lspacer_core
PC

cat > "$prefix/lib/pkgconfig/spacer-static.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: spacer-static
Description: spacer-core C ABI, static library
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libspacer_core.a $static_deps
PC

echo "installed spacer $version (ABI $abi) under $prefix"
