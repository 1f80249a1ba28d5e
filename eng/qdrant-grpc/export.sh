#!/usr/bin/env bash
# Writes the gRPC schema compiled into Qdrant.Client (the version Directory.Packages.props pins) back out as .proto
# files into tests/CrossStoreSync.Qdrant.Fake/Protos, from which Grpc.Tools generates the fake server's base classes at
# build time. Run it after upgrading Qdrant.Client, then build and run tests/CrossStoreSync.Qdrant.Tests: its schema
# test fails while the fake's .proto files and the client's embedded schema differ.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run --project eng/qdrant-grpc -c Release -- tests/CrossStoreSync.Qdrant.Fake/Protos CrossStoreSync.Qdrant.Fake.Api
