#!/bin/sh
# The npm `vsock` command (package.json "bin"): runs the built CLI (dist/cli.js)
# on Bun when it is on PATH, otherwise on Node 26+ (node:ffi). VSOCK_RUNTIME=bun
# or VSOCK_RUNTIME=node picks one. A shell launcher rather than a shebang, so
# `npx` on a Node-only machine and `bunx` on a Bun-only machine both work.
here=$(dirname "$(readlink -f "$0")")
cli="$here/../dist/cli.js"
runtime=${VSOCK_RUNTIME:-}
if [ -z "$runtime" ]; then
  if command -v bun >/dev/null 2>&1; then runtime=bun; else runtime=node; fi
fi
case $runtime in
  bun) exec bun "$cli" "$@" ;;
  node) exec node --disable-warning=ExperimentalWarning "$cli" "$@" ;;
  *)
    echo "vsock: VSOCK_RUNTIME must be bun or node, got \"$runtime\"" >&2
    exit 2
    ;;
esac
