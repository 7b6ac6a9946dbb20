/**
 * gRPC adapters: one handler file per service (services/), request validation (validate.ts),
 * the single error-to-status table (status.ts), and the server that binds them (server.ts).
 */
export { routeGrpcLogs, startServer, type RunningServer, type ServerOptions } from './server.js';
export { statusForReason, toServiceError } from './status.js';
