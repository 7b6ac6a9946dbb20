/**
 * What every command that talks to a broker shares: the `--broker` option (default
 * 127.0.0.1:7070, or `RUNNEL_BROKER`), building a client for it, and turning its failures
 * into one line that says what to do (cli-error.ts).
 *
 * The client library retries unavailable brokers for a minute by default, which suits an
 * application but not a person at a prompt: commands here give up after
 * `CLI_RETRY_TIMEOUT_MS`, enough to ride out a broker restart of a few seconds. Streams
 * (produce batches, consume subscriptions) keep their own, longer, retry budgets.
 */
import { Option, type Command } from 'commander';
import { createClient, describeBrokerAddressProblem, type RunnelClient } from '../client/index.js';
import { CliError, toCliError } from './cli-error.js';

export const BROKER_ADDRESS_DEFAULT = '127.0.0.1:7070';

/** How long admin calls, ListOffsets and metadata loads keep retrying an unreachable broker. */
const CLI_RETRY_TIMEOUT_MS = 5_000;
/** Deadline of one such call: generous for a busy broker, short enough for a person. */
const CLI_REQUEST_TIMEOUT_MS = 15_000;

export interface ClientFlags {
  broker?: string;
}

/** Adds `--broker` to a command that talks to a broker. */
export function addClientOptions(command: Command): Command {
  return command.addOption(
    new Option('--broker <host:port,...>', `broker(s) to bootstrap from (default ${BROKER_ADDRESS_DEFAULT}, env RUNNEL_BROKER)`),
  );
}

/** The bootstrap list: `--broker`, else `RUNNEL_BROKER`, else the default; validated. */
export function brokerAddresses(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): string[] {
  const text = flags.broker ?? (env.RUNNEL_BROKER !== undefined && env.RUNNEL_BROKER !== '' ? env.RUNNEL_BROKER : BROKER_ADDRESS_DEFAULT);
  const addresses = text
    .split(',')
    .map((address) => address.trim())
    .filter((address) => address !== '');
  for (const address of addresses) {
    // The client library's own check (it would refuse the address too), worded for the command line.
    const problem = describeBrokerAddressProblem(address);
    if (problem !== undefined) throw new CliError(`broker address ${JSON.stringify(address)} ${problem}: pass e.g. --broker 127.0.0.1:7070`);
  }
  if (addresses.length === 0) throw new CliError('no broker address given: pass e.g. --broker 127.0.0.1:7070');
  return addresses;
}

export interface ClientSession {
  client: RunnelClient;
  brokers: string[];
}

/**
 * Runs `action` with a client for the command's brokers and closes the client afterwards
 * (delivering what producers still hold), whatever happened. Failures come out as `CliError`s
 * naming the brokers and `topic`.
 */
export async function withClient<T>(flags: ClientFlags, topic: string | undefined, action: (session: ClientSession) => Promise<T>): Promise<T> {
  const brokers = brokerAddresses(flags);
  const context = { brokers, ...(topic === undefined ? {} : { topic }) };
  const client = createClient({
    brokers,
    clientId: 'runnel-cli',
    requestTimeoutMs: CLI_REQUEST_TIMEOUT_MS,
    retry: { timeoutMs: CLI_RETRY_TIMEOUT_MS },
  });
  try {
    return await action({ client, brokers });
  } catch (error) {
    throw toCliError(error, context);
  } finally {
    await client.close().catch(() => undefined); // a producer's failure was already reported by the action
  }
}
