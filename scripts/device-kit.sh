#!/usr/bin/env bash
# Fills .devbin/ (git-ignored) with what a call on the GPU machine carries: build/minitx and
# build/minitx-tests built here, the shared libraries its image lacks (fmt, PCRE2), the PyTorch
# peers from ../shared/peers, and gnuplot-nox with every library it loads and one font, packed as
# gnuplot-kit.tar.xz (unpacked there at /tmp/gpkit by scripts/device-run.sh). Then name .devbin
# (or the files a call needs) in the device tool's `carry`.
#
# Usage: scripts/device-kit.sh        (after `make build/minitx build/minitx-tests`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.devbin
mkdir -p "$bin"
grep -qxF "/$bin/" .git/info/exclude 2>/dev/null || echo "/$bin/" >> .git/info/exclude
cp build/minitx build/minitx-tests "$bin/"
for lib in libfmt.so libpcre2-8.so; do
  cp -L "$(ldd build/minitx-tests | awk -v l="$lib" 'index($1, l) == 1 { print $3 }')" "$bin/" 2>/dev/null || true
done
for peer in ../shared/peers/*.py; do [ -f "$peer" ] && cp "$peer" "$bin/"; done

# gnuplot: the binary, its libraries except the C runtime's (the image has those), a font and a
# fontconfig file naming it; a wrapper points the loader and fontconfig at them.
kit=$(mktemp -d)/gpkit
trap 'rm -rf "$(dirname "$kit")"' EXIT
mkdir -p "$kit/lib" "$kit/fonts"
gnuplot=$(readlink -f "$(command -v gnuplot)")
cp "$gnuplot" "$kit/gnuplot-bin"
ldd "$gnuplot" | awk '$3 ~ /^\// { print $3 }' |
  grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|ld-linux[^/]*)\.so' | xargs -I{} cp -L {} "$kit/lib/"
cp /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf "$kit/fonts/"
cat > "$kit/fonts.conf" <<'CONF'
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <dir>/tmp/gpkit/fonts</dir>
  <cachedir>/tmp/gpkit/fccache</cachedir>
  <alias><family>sans-serif</family><prefer><family>DejaVu Sans</family></prefer></alias>
</fontconfig>
CONF
cat > "$kit/gnuplot" <<'WRAP'
#!/bin/sh
d=/tmp/gpkit
LD_LIBRARY_PATH=$d/lib FONTCONFIG_FILE=$d/fonts.conf exec "$d/gnuplot-bin" "$@"
WRAP
chmod +x "$kit/gnuplot"
tar -cJf "$bin/gnuplot-kit.tar.xz" -C "$(dirname "$kit")" gpkit
du -sh "$bin"/* | sort -h | tail -n 6
echo "device-kit: $bin ready"
