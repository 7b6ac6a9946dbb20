#!/usr/bin/env bash
# Regenerates the TypeScript types of the gRPC contract (src/protocol/generated/) from proto/
# with proto-loader's own generator. Run after changing a .proto file; the output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf src/protocol/generated
npx proto-loader-gen-types --longs String --enums String --defaults --oneofs --includeComments \
  --grpcLib @grpc/grpc-js -I proto -O src/protocol/generated runnel/v1/common.proto runnel/v1/log.proto runnel/v1/admin.proto
# NodeNext resolution wants explicit .js extensions on relative imports.
find src/protocol/generated -name '*.ts' -print0 | xargs -0 sed -i -E "s#(from '\.{1,2}/[^']*)'#\1.js'#"
