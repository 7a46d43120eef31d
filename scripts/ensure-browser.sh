#!/usr/bin/env bash
# Install what the /docs browser test needs: Debian's chromium (the browser is the
# distribution's, no browser download of Playwright's own) and the npm package
# playwright-core to drive it, per checkout under .cache/, never committed.
set -euo pipefail
dir=${1:-.cache/browser}
version=1.65.1
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if [ ! -x /usr/bin/chromium ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null 2>&1 || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null; }
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"name":"jamhost-browser-test","private":true}' > "$dir/package.json"
  # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing anyway; say so.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund --silent \
    "playwright-core@$version"
fi
echo "browser: /usr/bin/chromium and playwright-core $version in $dir"
