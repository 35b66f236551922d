/**
 * The small transport interface the client logic needs, and its SignalR implementation. Tests drive the client with
 * a fake object implementing `HubTransport`, so the reconnect/rejoin logic is tested without a server.
 */
import {
  HubConnectionBuilder,
  HubConnectionState,
  HttpTransportType,
  LogLevel,
  type IHttpConnectionOptions,
  type HubConnection,
  type IRetryPolicy,
  type RetryContext,
} from '@microsoft/signalr';
import type { SessionEvent, SessionListChange, SessionSnapshot } from './contracts.js';

export interface HubTransport {
  /** Connects; rejects when the connection could not be made (the client retries). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Calls a hub method; rejects with the server's error (message ending in `HubException: code: message`). */
  invoke<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
  onSessionEvent(handler: (event: SessionEvent) => void): void;
  onSessionSnapshot(handler: (snapshot: SessionSnapshot) => void): void;
  onSessionListChanged(handler: (change: SessionListChange) => void): void;
  /** The connection dropped and automatic reconnection began. */
  onReconnecting(handler: (error?: Error) => void): void;
  /** Before each automatic reconnect attempt: `attempt` counts the failed ones so far (0 for the first). */
  onRetry(handler: (attempt: number) => void): void;
  /** Automatic reconnection succeeded: a new connection, which has joined nothing yet. */
  onReconnected(handler: () => void): void;
  /** The connection closed for good (stopped, or reconnection gave up). */
  onClose(handler: (error?: Error) => void): void;
}

export const defaultReconnectDelaysMs: readonly number[] = [0, 1000, 2000, 5000, 10000, 20000, 30000];

/** The delay before retry number `attempt` (0-based); the last delay repeats forever, with ±20 % jitter. */
export function reconnectDelay(delays: readonly number[], attempt: number, random: () => number = Math.random): number {
  const list = delays.length > 0 ? delays : defaultReconnectDelaysMs;
  const base = list[Math.min(attempt, list.length - 1)]!;
  return base === 0 ? 0 : Math.round(base * (0.8 + 0.4 * random()));
}

export interface SignalRTransportOptions {
  /** The hub's URL, e.g. `https://gateway.example/hubs/session` or `/hubs/session`. */
  url: string;
  accessTokenFactory?: () => string | Promise<string>;
  /** WebSockets only, without the negotiate request (see `GatewayClientOptions.skipNegotiation`). */
  skipNegotiation?: boolean;
  reconnectDelaysMs?: readonly number[];
  logLevel?: LogLevel;
}

/** A SignalR (JSON protocol) connection to the session hub whose automatic reconnect never gives up. */
export function createSignalRTransport(options: SignalRTransportOptions): HubTransport {
  const retryHandlers: ((attempt: number) => void)[] = [];
  const delays = options.reconnectDelaysMs ?? defaultReconnectDelaysMs;
  const retryPolicy: IRetryPolicy = {
    nextRetryDelayInMilliseconds(context: RetryContext): number {
      for (const handler of retryHandlers) {
        handler(context.previousRetryCount);
      }

      return reconnectDelay(delays, context.previousRetryCount);
    },
  };

  const connectionOptions: IHttpConnectionOptions = {
    ...(options.accessTokenFactory ? { accessTokenFactory: options.accessTokenFactory } : {}),
    ...(options.skipNegotiation ? { skipNegotiation: true, transport: HttpTransportType.WebSockets } : {}),
  };
  const builder = new HubConnectionBuilder()
    .withUrl(options.url, connectionOptions)
    .withAutomaticReconnect(retryPolicy)
    .configureLogging(options.logLevel ?? LogLevel.Warning);
  const connection: HubConnection = builder.build();

  return {
    async start() {
      if (connection.state === HubConnectionState.Disconnected) {
        await connection.start();
      }
    },
    stop: () => connection.stop(),
    invoke: <T>(method: string, ...args: unknown[]) => connection.invoke<T>(method, ...args),
    onSessionEvent: (handler) => connection.on('SessionEvent', handler),
    onSessionSnapshot: (handler) => connection.on('SessionSnapshot', handler),
    onSessionListChanged: (handler) => connection.on('SessionListChanged', handler),
    onReconnecting: (handler) => connection.onreconnecting(handler),
    onRetry: (handler) => void retryHandlers.push(handler),
    onReconnected: (handler) => connection.onreconnected(() => handler()),
    onClose: (handler) => connection.onclose(handler),
  };
}
