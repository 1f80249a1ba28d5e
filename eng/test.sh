#!/usr/bin/env bash
# Runs every test of the repository on a fresh machine: installs and starts what the tests need, then `dotnet test`.
# Prints a plain "N passed, N failed" line at the end and exits non-zero when a test failed or none ran.
#
# SQLite is embedded; PostgreSQL, the SurrealDB engine and the Cypher linter are installed (when missing) and started
# here; the crash tests start their own child processes (see eng/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

configuration="${CONFIGURATION:-Release}"
results_dir="$(pwd)/TestResults"
rm -rf "$results_dir"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "The .NET SDK (10.0) is required: https://dotnet.microsoft.com/download" >&2
  exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Node packages the tests use, installed from the committed lockfiles when missing (Node.js 20+):
# - eng/surrealdb-host: the real SurrealDB 3 engine from npm @surrealdb/node (tests/CrossStoreSync.SurrealDb.Tests
#   start it);
# - eng/cypher-lint: Neo4j's Cypher parser and semantic analysis from npm @neo4j-cypher/language-support
#   (tests/CrossStoreSync.Neo4j.Tests check every statement of the Neo4j adapter with it).
# Without them those tests fail with the reason.
npm_ci() {
  local dir="$1" marker="$2"
  if [ -d "$dir/node_modules/$marker" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    (apt-get update && apt-get install -y nodejs npm) >/dev/null || true
  fi
  if command -v npm >/dev/null 2>&1; then
    (cd "$dir" && npm ci --no-audit --no-fund) || echo "npm ci in $dir failed; the tests that need it will fail." >&2
  else
    echo "Node.js/npm not found and could not be installed: the tests that need $dir will fail. Install Node.js 20+." >&2
  fi
}
npm_ci eng/surrealdb-host "@surrealdb/node"
npm_ci eng/cypher-lint "@neo4j-cypher/language-support"

# tmux for the css terminal test (tests/CrossStoreSync.Cli.Tests/TerminalTests.cs: keys sent to a real terminal, the
# pane captured), from Debian packages when missing. Without it that test fails in CI and is skipped locally.
if ! command -v tmux >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  (apt-get update && apt-get install -y tmux) >/dev/null || echo "tmux could not be installed; the css terminal test will fail." >&2
fi

# PostgreSQL 15 for tests/CrossStoreSync.PostgreSql.Tests: installed from Debian packages when missing and started on a
# private port (eng/postgres.sh). CSS_PG_CONNECTION points the tests at another server instead.
if [ -z "${CSS_PG_CONNECTION:-}" ]; then
  bash eng/postgres.sh start >/dev/null || echo "PostgreSQL could not be started; the PostgreSQL tests will fail." >&2
fi

dotnet restore CrossStoreSync.sln
dotnet build CrossStoreSync.sln -c "$configuration" --no-restore

status=0
log="$(mktemp)"
dotnet test CrossStoreSync.sln -c "$configuration" --no-build --results-directory "$results_dir" \
  --logger "console;verbosity=normal" 2>&1 | tee "$log" || status=$?

# Sum the per-project summaries that `dotnet test` prints ("Total tests: N" then "Passed: N", "Failed: N", "Skipped: N").
read -r passed failed skipped < <(awk '
  /^[[:space:]]+Passed:[[:space:]]+[0-9]+[[:space:]]*$/  { p += $2 }
  /^[[:space:]]+Failed:[[:space:]]+[0-9]+[[:space:]]*$/  { f += $2 }
  /^[[:space:]]+Skipped:[[:space:]]+[0-9]+[[:space:]]*$/ { s += $2 }
  END { printf "%d %d %d\n", p, f, s }' "$log")
# Name the failed tests again at the end, where a CI log that keeps only its tail still shows them.
if [ "$failed" -ne 0 ]; then
  echo "Failed tests:"
  grep -E '^[[:space:]]+Failed [A-Za-z]' "$log" | sed -E 's/^[[:space:]]+/  /; s/[[:space:]]*\[[^]]*\][[:space:]]*$//' | sort -u || true
fi
rm -f "$log"

echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ]; then
  echo "No test ran." >&2
  exit 1
fi
if [ "$failed" -ne 0 ] || [ "$status" -ne 0 ]; then
  exit 1
fi
