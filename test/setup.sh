# Sourced by test/run.sh and examples/demo.sh: installs what a fresh machine
# lacks — Debian packages for the peers (the VM's own are installed by
# test/vm/run.sh) and the npm packages pinned in package-lock.json — or says
# exactly what is missing and how to get it.
BUN=node_modules/.bin/bun
DENO=node_modules/.bin/deno
NODE=node_modules/.bin/node

# A stage header with the seconds since the script started, so a slow stage shows in CI's log.
say() { printf '\n== %s (at %d s)\n' "$*" "$SECONDS"; }

install() {
  local missing=()
  command -v socat >/dev/null || missing+=(socat)
  command -v python3 >/dev/null || missing+=(python3)
  command -v curl >/dev/null || missing+=(curl)
  command -v cc >/dev/null || missing+=(gcc libc6-dev)
  if ((${#missing[@]})); then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
      say "installing Debian packages: ${missing[*]}"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        { echo "apt-get install ${missing[*]} failed" >&2; exit 2; }
    else
      echo "missing: ${missing[*]} — install them with: sudo apt-get install ${missing[*]}" >&2
      exit 2
    fi
  fi
  if ! command -v npm >/dev/null; then
    echo "missing: npm (Node.js) — it installs the pinned Bun, Deno and TypeScript: sudo apt-get install npm" >&2
    exit 2
  fi
  # Reinstall only when the lock file changed. `npm install` with the lock
  # present installs exactly the pinned versions; `npm ci` is not used because
  # npm leaves other platforms' optional binaries out of the lock and then
  # refuses it (npm/cli#8320).
  local stamp=node_modules/.vsock-lock.sha256 want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [[ ! -x $BUN || ! -x $DENO || ! -x $NODE || $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
    say "npm install (versions pinned by package-lock.json)"
    npm install --no-audit --no-fund || { echo "npm install failed" >&2; exit 2; }
    echo "$want" >"$stamp"
  fi
}

