#!/usr/bin/env bash
# Runs the multi-node convergence harness (tests/CrossStoreSync.Peering.Tests/Harness) over many random seeds: real node
# processes on loopback behind TCP fault proxies, faults, a partition with writes on both sides, heal, then the checker.
# CI runs three seeds with three nodes; this runs more.
#
#   bash eng/peer-harness.sh [first-seed] [count] [nodes]      # default: seeds 1..50, 5 nodes
#   bash eng/peer-harness.sh partition [seconds] [writes/s]     # convergence after a partition under load (60 s, 1000/s)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "partition" ]; then
  dotnet build tests/CrossStoreSync.Peering.Tests -c Release >/dev/null
  CSS_HARNESS_PARTITION_SECONDS="${2:-60}" CSS_HARNESS_RATE="${3:-1000}" dotnet test tests/CrossStoreSync.Peering.Tests -c Release --no-build \
    --filter "FullyQualifiedName~Harness.PartitionLoadTests" --logger "console;verbosity=detailed" 2>&1 \
    | grep -E "^\s+(Passed|Failed) |partition [0-9]+ s|Error Message|Assert" || true
  exit 0
fi
first="${1:-1}"
count="${2:-50}"
nodes="${3:-5}"
seeds=$(seq -s, "$first" $((first + count - 1)))
dotnet build tests/CrossStoreSync.Peering.Tests -c Release >/dev/null
started=$(date +%s)
CSS_HARNESS_SEEDS="$seeds" CSS_HARNESS_NODES="$nodes" dotnet test tests/CrossStoreSync.Peering.Tests -c Release --no-build \
  --filter "FullyQualifiedName~Harness.ConvergenceTests" --logger "console;verbosity=detailed" 2>&1 \
  | grep -E "^\s+(Passed|Failed) |seed [0-9]+:|Total tests|Passed:|Failed:" || true
echo "seeds ${first}..$((first + count - 1)), ${nodes} nodes, $(( $(date +%s) - started )) s"
