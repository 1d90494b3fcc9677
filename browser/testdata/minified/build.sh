#!/usr/bin/env bash
# Regenerates app.js and app.min.js with the pinned esbuild (package-lock.json). The tests
# use the committed outputs and need no npm; rerun this only after changing src/.
#   app.js      bundled, not minified: works
#   app.min.js  bundled and minified: BookingWidget is renamed, so mount() finds no
#               component named "BookingWidget" and startup throws before the
#               error-reporting SDK is initialised (seed 003)
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
npx esbuild src/main.js --bundle --format=iife --target=es2020 --outfile=app.js
npx esbuild src/main.js --bundle --format=iife --target=es2020 --minify --outfile=app.min.js
rm -rf node_modules
