export * from './contracts.js';
export { GatewayError, toGatewayError, isTransientError } from './errors.js';
export { toJoinResult, toMessagePage, toPart, toSessionEvent, toSessionSnapshot } from './normalize.js';
export { filePromptPart, type FilePromptPartOptions } from './attachments.js';
export {
  SessionState,
  fieldText,
  type SessionView,
  type MessageView,
  type RejoinAction,
  type RejoinReason,
} from './session-state.js';
export {
  createSignalRTransport,
  hubUrlFor,
  defaultReconnectDelaysMs,
  reconnectDelay,
  type HubTransport,
  type SignalRTransportOptions,
} from './transport.js';
export {
  createGatewayClient,
  defaultMaxMessageBytes,
  type ConnectionState,
  type GatewayClient,
  type GatewayClientOptions,
  type PromptOptions,
  type SessionListener,
  type WatchHandle,
  type WatchOptions,
} from './client.js';
export {
  GatewayStores,
  SessionChatStore,
  SessionListStore,
  applySessionListChange,
  partText,
  userText,
  type ChatError,
  type ChatMessage,
  type ChatStatus,
  type ListStatus,
  type SessionChatState,
  type SessionListOptions,
  type SessionListState,
} from './stores.js';
