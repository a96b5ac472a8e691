#!/usr/bin/env bash
# `make test-fresh`: the README's promise, tested. A minimal Debian 12 root (debootstrap
# --variant=minbase, plus only what `make` needs to start) receives a clean clone of HEAD, and
# the README's commands run in it as root, in a chroot: `make CONFIG=configs/tiny.toml`, then
# `make test`. Everything else the build and the tests need must be installed by the project.
#
#   FRESH_CACHE   where the pristine root is cached between runs (default /var/cache/minitx-fresh);
#                 it is rebuilt when the suite, the extra packages or scripts/install-deps.sh change
#   FRESH_SUITE   the Debian release (default bookworm)
#   FRESH_KEEP=1  keep the work root after the run (for a look inside); it is removed otherwise
#
# Prints the time of each step, and on failure the step that failed; exits non-zero then.
# Mounts (/proc, /sys, /dev, /dev/pts) are undone on every exit path, and the script checks that
# none is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

suite=${FRESH_SUITE:-bookworm}
cache=${FRESH_CACHE:-/var/cache/minitx-fresh}
# What `make` itself needs to start, beyond minbase (bash, coreutils, sed, grep, findutils and
# mawk are in minbase). Keep this list and the README's "A fresh machine" section in step.
start_packages=(make)

[ "$(id -u)" -eq 0 ] || { echo "test-fresh: needs root (debootstrap, chroot and mounts)" >&2; exit 1; }
command -v git >/dev/null || { echo "test-fresh: needs git, to clone HEAD" >&2; exit 1; }

steps=() times=()
current=""
step_start=0
begin() { current=$1; step_start=$(date +%s); echo "== test-fresh: $1"; }
end() {
  steps+=("$current") times+=($(( $(date +%s) - step_start )))
  current=""
}
report() {
  local i
  echo
  echo "test-fresh: step                                       seconds"
  for i in "${!steps[@]}"; do printf 'test-fresh:   %-44s %7d\n' "${steps[$i]}" "${times[$i]}"; done
}

work=""
mounts=()
cleanup() {
  local rc=$? m i
  for (( i=${#mounts[@]}-1; i>=0; i-- )); do
    m=${mounts[$i]}
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "test-fresh: could not unmount $m" >&2
  done
  if [ -n "$work" ] && grep -qF " $work/" /proc/mounts; then
    echo "test-fresh: mounts left under $work:" >&2
    grep -F " $work/" /proc/mounts >&2
    rc=1
  elif [ -n "$work" ] && [ "${FRESH_KEEP:-0}" != 1 ]; then
    rm -rf --one-file-system "$work"
  fi
  if [ -n "$current" ]; then
    report
    echo "test-fresh: FAILED at step '$current' (exit $rc)" >&2
    [ "$rc" -eq 0 ] && rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The host's own apt sources and Acquire settings (mirrors, proxies, snapshot validity) are what
# a fresh machine on this network would be given; copy them rather than naming a mirror here.
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $1}' | grep -v security | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "'"$suite"'" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "test-fresh: no Debian mirror found in /etc/apt/sources.list(.d)" >&2; exit 1; }

key=$( { echo "$suite minbase ${start_packages[*]}"; cat scripts/install-deps.sh; } | sha256sum | cut -c1-16)
pristine="$cache/$suite-minbase-$key"

begin "debootstrap ($suite, minbase)"
if [ -f "$pristine/.complete" ]; then
  echo "test-fresh: using the cached root $pristine"
else
  command -v debootstrap >/dev/null || {
    echo "test-fresh: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap; }
  }
  mkdir -p "$cache"
  find "$cache" -mindepth 1 -maxdepth 1 -name "$suite-minbase-*" -exec rm -rf --one-file-system {} +
  partial="$pristine.partial"
  rm -rf --one-file-system "$partial"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${start_packages[*]}")" "$suite" "$partial" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 || { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }
  rm -rf "$partial/var/cache/apt/archives/"*.deb "$partial/var/lib/apt/lists/"*_Packages
  touch "$partial/.complete"
  mv "$partial" "$pristine"
fi
end

begin "copy the root and a clean clone of HEAD"
mkdir -p "$cache/work"
work=$(mktemp -d "$cache/work/run.XXXXXX")
cp -a "$pristine/." "$work/"
rm -f "$work/.complete"
cp /etc/resolv.conf "$work/etc/resolv.conf"
rm -f "$work/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] && cp "$f" "$work$f"
done
for f in /etc/apt/apt.conf.d/*; do
  [ -f "$f" ] && grep -q 'Acquire' "$f" && cp "$f" "$work/etc/apt/apt.conf.d/"
done
# The network's own certificate authorities (e.g. a TLS-inspecting egress proxy) and the npm
# settings that point at them are this network's machine setup, not the project's: a fresh
# machine here gets them too. ca-certificates, once make installs it, folds them into the bundle.
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$work/usr/local/share/ca-certificates"
  cp -r /usr/local/share/ca-certificates/. "$work/usr/local/share/ca-certificates/"
fi
for f in /etc/npmrc /usr/etc/npmrc /root/.npmrc; do
  [ -f "$f" ] && mkdir -p "$work$(dirname "$f")" && cp "$f" "$work$f"
done
# dpkg without an fsync per file, as Debian's own container images set it: only what survives a
# power cut changes, not what is installed, and the install is a large part of this test's time.
echo force-unsafe-io > "$work/etc/dpkg/dpkg.cfg.d/unsafe-io"
git clone -q --no-local "$repo" "$work/root/minitx"
git -C "$work/root/minitx" log -1 --format='test-fresh: HEAD is %h %s'
end

for m in proc sys dev dev/pts; do
  mkdir -p "$work/$m"
  case $m in
    proc) mount -t proc proc "$work/proc" ;;
    sys) mount -t sysfs sysfs "$work/sys" ;;
    dev) mount --bind /dev "$work/dev" ;;
    dev/pts) mount --bind /dev/pts "$work/dev/pts" ;;
  esac
  mounts+=("$work/$m")
done

# As a new user would: root, a plain environment, nothing typed in between.
in_root() {
  chroot "$work" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb ${NODE_EXTRA_CA_CERTS:+NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS} ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
    ${no_proxy:+no_proxy=$no_proxy} /bin/bash -c "cd /root/minitx && $1"
}

begin "make CONFIG=configs/tiny.toml"
in_root "make CONFIG=configs/tiny.toml" 2>&1 | sed 's/^/    /'
end

begin "make test"
in_root "make test" 2>&1 | tee "$cache/work/make-test.log" | sed 's/^/    /'
grep -E '^tests: [0-9]+ passed, 0 failed' "$cache/work/make-test.log" >/dev/null ||
  { echo "test-fresh: make test did not end with 0 failed" >&2; exit 1; }
end

report
echo "test-fresh: passed ($(grep -E '^tests: ' "$cache/work/make-test.log"))"
