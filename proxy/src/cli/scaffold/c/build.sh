#!/bin/sh
# Builds {{name}}.wasm, a faultgate plugin component, from the C sources:
# clang compiles them to a core WebAssembly module (wasi-libc gives malloc
# and string functions; nothing here imports WASI), then wasm-tools embeds
# the contract's {{world}} world into it and makes it a component.
set -eu
CC=${CC:-clang}
WASM_TOOLS=${WASM_TOOLS:-wasm-tools}
mkdir -p build
"$CC" --target=wasm32-wasi -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
  -mexec-model=reactor -Ibindings \
  -o build/{{file}}.core.wasm {{file}}.c attributes.c bindings/{{bindings}}.c bindings/type_info.c
"$WASM_TOOLS" component embed wit --world {{world}} \
  build/{{file}}.core.wasm -o build/{{file}}.embedded.wasm
"$WASM_TOOLS" component new build/{{file}}.embedded.wasm -o build/{{file}}.wasm
echo "built build/{{file}}.wasm"
