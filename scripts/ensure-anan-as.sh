#!/usr/bin/env bash
# Install the reference PVM (@fluffylabs/anan-as) for the differential tests and the PVM
# benchmark baseline. Installed per checkout under .cache/, never committed.
set -euo pipefail
dir=${1:-.cache/anan-as}
version=1.2.0
if [ -f "$dir/node_modules/@fluffylabs/anan-as/package.json" ]; then exit 0; fi
command -v node >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"jamhost-anan-as","private":true}' > "$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --silent "@fluffylabs/anan-as@$version"
echo "anan-as $version installed in $dir"
