#!/usr/bin/env bash
# Fetch the browser scripts the built book needs, from the npm registry, into .vendor/,
# so that equations and widget snapshots render with no network (book/_ext/offline_assets.py
# serves them). Without npm the book falls back to the CDNs and this script says so.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned versions: MathJax 3 is what Sphinx's mathjax extension targets; html-manager 1.x
# embeds ipywidgets 8 widget state; RequireJS loads it (the AMD build myst-nb uses).
MATHJAX=mathjax@3.2.2
REQUIREJS=requirejs@2.3.8
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.6
VENDOR=.vendor
STAMP="$VENDOR/.versions"
WANT="$MATHJAX $REQUIREJS $HTML_MANAGER"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch_book_assets: npm not found; the book will load MathJax and widget scripts from CDNs" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent $WANT >/dev/null)
rm -rf "$VENDOR"
mkdir -p "$VENDOR/mathjax" "$VENDOR/requirejs" "$VENDOR/html-manager"
for tgz in "$tmp"/*.tgz; do
  dir="$tmp/$(basename "$tgz" .tgz)"
  mkdir -p "$dir" && tar xzf "$tgz" -C "$dir"
done
cp -r "$tmp"/mathjax-*/package/es5 "$VENDOR/mathjax/"
cp "$tmp"/requirejs-*/package/require.js "$VENDOR/requirejs/"
cp -r "$tmp"/jupyter-widgets-html-manager-*/package/dist "$VENDOR/html-manager/"
find "$VENDOR" -name '*.map' -delete  # source maps: 20 MB that no reader needs
echo "$WANT" > "$STAMP"
echo "fetch_book_assets: $WANT -> $VENDOR/"
