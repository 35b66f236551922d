export * from './contracts.js';
export { GatewayError, toGatewayError, isTransientError } from './errors.js';
export {
  SessionState,
  type SessionView,
  type MessageView,
  type RejoinAction,
  type RejoinReason,
} from './session-state.js';
export {
  createSignalRTransport,
  defaultReconnectDelaysMs,
  reconnectDelay,
  type HubTransport,
  type SignalRTransportOptions,
} from './transport.js';
export {
  createGatewayClient,
  type ConnectionState,
  type GatewayClient,
  type GatewayClientOptions,
  type PromptOptions,
  type SessionListener,
  type WatchHandle,
  type WatchOptions,
} from './client.js';
