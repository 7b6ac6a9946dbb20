/**
 * `startHungServer`: a port on 127.0.0.1 that accepts TCP connections and never answers, as a
 * stopped broker process or a frozen host does. grpc-js waits there for the HTTP/2 handshake,
 * so a call or stream to it hangs until the client's own deadline.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface HungServer {
  address: string;
  sockets: Set<Socket>;
  /** Connections accepted since the start, closed ones included. */
  acceptedCount: () => number;
  close: () => Promise<void>;
}

/** Listens on 127.0.0.1, port 0; `sockets` are the connections open now. */
export async function startHungServer(): Promise<HungServer> {
  const sockets = new Set<Socket>();
  let acceptedCount = 0;
  const server: Server = createServer((socket) => {
    acceptedCount++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    sockets,
    acceptedCount: () => acceptedCount,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
