#!/usr/bin/env bash
# The full log-retention soak (issue 13): 1,000,000 changes over a small key space with retention on, for the SQLite
# files and the PostgreSQL log, with the same assertions CI runs on the short version (log rows and sizes bounded).
#
#   bash eng/soak.sh                    # 1,000,000 changes each
#   CSS_SOAK_CHANGES=200000 bash eng/soak.sh
#
# Prints each run's figures (throughput, log rows max/end, bytes at start, a quarter in, peak after, end) and appends
# them to benchmarks/results/retention-soak.md with the date and machine. Starts PostgreSQL like eng/test.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."

export CSS_SOAK_CHANGES="${CSS_SOAK_CHANGES:-1000000}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
report="$(mktemp)"
export CSS_SOAK_REPORT="$report"

if [ -z "${CSS_PG_CONNECTION:-}" ]; then
  bash eng/postgres.sh start >/dev/null
fi

dotnet build CrossStoreSync.sln -c Release >/dev/null
status=0
dotnet test tests/CrossStoreSync.Sqlite.Tests -c Release --no-build \
  --filter "FullyQualifiedName~RetentionSoakTests" --logger "console;verbosity=normal" || status=$?
dotnet test tests/CrossStoreSync.PostgreSql.Tests -c Release --no-build \
  --filter "FullyQualifiedName~Log_rows_and_database_size_stay_bounded" --logger "console;verbosity=normal" || status=$?

results="benchmarks/results/retention-soak.md"
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ), ${CSS_SOAK_CHANGES} changes, $(nproc) cores, $(uname -srm)"
  echo
  sed 's/^/- /' "$report"
} >>"$results"
cat "$report"
rm -f "$report"
exit "$status"
