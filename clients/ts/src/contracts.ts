/**
 * The gateway's wire contract, mirroring `src/Gateway.Contracts/*.cs` (JSON protocol, camelCase).
 *
 * `contractFields` lists every type's members; `test/contracts.test.ts` compares it with the C# declarations, and the
 * `ContractFieldsMatch` assertion at the bottom of this file makes the build fail when it disagrees with the interfaces.
 */

/** Any JSON value (opencode's objects are passed through as they are). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

// ---------------------------------------------------------------------------------------------------------------
// opencode shapes the gateway passes through (loose: only what clients commonly read is named).

/** opencode's session info (`ses_…`). */
export interface SessionInfo {
  id: string;
  title?: string;
  directory?: string;
  parentID?: string;
  time?: { created?: number; updated?: number; [key: string]: unknown };
  [key: string]: unknown;
}

/** opencode's message info (user or assistant message). */
export interface MessageInfo {
  id: string;
  sessionID?: string;
  role?: 'user' | 'assistant' | string;
  time?: { created?: number; completed?: number; [key: string]: unknown };
  error?: { name?: string; data?: { message?: string; [key: string]: unknown } } & JsonObject;
  [key: string]: unknown;
}

export type ToolStatus = 'pending' | 'running' | 'completed' | 'error';

/** opencode's message part. `type` is text | reasoning | tool | step-start | step-finish | file | …; undefined for a
 * placeholder created by a delta that arrived before its part. */
export interface Part {
  id: string;
  messageID: string;
  sessionID?: string;
  type: string | undefined;
  text?: string;
  tool?: string;
  callID?: string;
  state?: {
    status?: ToolStatus | string;
    input?: Json;
    output?: string;
    title?: string;
    error?: string;
    metadata?: Json;
    [key: string]: unknown;
  };
  time?: { start?: number; end?: number; [key: string]: unknown };
  [key: string]: unknown;
}

/** `{"type":"idle"|"busy"|"retry",…}` (retry also has attempt, message, next). */
export interface SessionStatus {
  type: 'idle' | 'busy' | 'retry' | string;
  attempt?: number;
  message?: string;
  next?: number;
  [key: string]: unknown;
}

/** A pending permission request (`permission.asked`). */
export interface PermissionRequest {
  id: string;
  sessionID?: string;
  permission: string;
  patterns?: string[];
  metadata?: JsonObject;
  always?: string[];
  tool?: { messageID?: string; callID?: string };
  [key: string]: unknown;
}

export interface Todo {
  id?: string;
  content?: string;
  status?: string;
  priority?: string;
  [key: string]: unknown;
}

/** opencode's error object (`{name, data:{message,…}}`). */
export interface OpencodeError {
  name?: string;
  data?: { message?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export type PermissionReply = 'once' | 'always' | 'reject';

// ---------------------------------------------------------------------------------------------------------------
// HubContracts.cs

/** A position in a session's stream: the last event a client applied. */
export interface StreamPosition {
  epoch: number;
  seq: number;
}

export interface JoinRequest {
  sessionId: string;
  upstream?: string | null;
  since?: StreamPosition | null;
}

export interface JoinResult {
  upstream: string;
  sessionId: string;
  epoch: number;
  seq: number;
  recovered: boolean;
  events?: SessionEvent[] | null;
  snapshot?: SessionSnapshot | null;
}

export interface CreateSessionRequest {
  title?: string | null;
  upstream?: string | null;
  workspace?: string | null;
  tags?: string[] | null;
  metadata?: Json;
}

export interface PromptPart {
  type: string;
  text: string;
}

export interface PromptRequest {
  sessionId: string;
  text?: string | null;
  parts?: PromptPart[] | null;
  agent?: string | null;
  model?: string | null;
}

export interface PromptResult {
  sessionId: string;
  queued: boolean;
}

export interface PermissionReplyRequest {
  sessionId: string;
  requestId: string;
  reply: PermissionReply;
  message?: string | null;
}

/** The gateway's record of a session (owner, workspace, tags, free-form metadata). Dates are ISO 8601 strings. */
export interface SessionMetadata {
  sessionId: string;
  upstream: string;
  ownerId?: string | null;
  workspace?: string | null;
  title?: string | null;
  tags: string[];
  metadata?: Json;
  createdAt: string;
  updatedAt: string;
  archivedAt?: string | null;
}

// ---------------------------------------------------------------------------------------------------------------
// SessionCatalogContracts.cs

/** Argument of `ListSessions` (and the query of `GET /api/sessions`). */
export interface ListSessionsRequest {
  workspace?: string | null;
  tag?: string | null;
  /** Null or false: active sessions only; true: archived only. */
  archived?: boolean | null;
  /** Case-insensitive substring of the title. */
  q?: string | null;
  cursor?: string | null;
  /** 1–200, default 50. */
  limit?: number | null;
}

/** One page of sessions, most recently updated first. */
export interface SessionList {
  items: SessionMetadata[];
  nextCursor?: string | null;
}

/** Argument of `UpdateMetadata`: title, tags (replaced), metadata (JSON Merge Patch: null deletes a key). */
export interface UpdateSessionRequest {
  sessionId: string;
  title?: string | null;
  tags?: string[] | null;
  metadata?: Json;
}

/** Body of `POST /api/sessions/{id}/adopt` (admins). */
export interface AdoptSessionRequest {
  ownerId: string;
  workspace?: string | null;
  upstream?: string | null;
  tags?: string[] | null;
  metadata?: Json;
}

/** Answer of `POST /api/sessions`. */
export interface CreatedSession {
  session: SessionMetadata;
  info: Json;
}

/** Answer of `GET /api/sessions/{id}`: the record joined with opencode's live state. */
export interface SessionDetails {
  session: SessionMetadata;
  info?: Json;
  status?: Json;
  lastAssistantMessage?: Json;
  liveError?: string | null;
}

// ---------------------------------------------------------------------------------------------------------------
// SessionEvent.cs

export const SessionEventTypes = {
  PartUpdated: 'part.updated',
  PartDelta: 'part.delta',
  PartRemoved: 'part.removed',
  MessageUpdated: 'message.updated',
  MessageRemoved: 'message.removed',
  Status: 'status',
  Error: 'error',
  PermissionAsked: 'permission.asked',
  PermissionReplied: 'permission.replied',
  TodoUpdated: 'todo.updated',
  SessionUpdated: 'session.updated',
  SessionDeleted: 'session.deleted',
} as const;

export type SessionEventType = (typeof SessionEventTypes)[keyof typeof SessionEventTypes];

/** One event of one session. The envelope is flat: `type` says which optional members are set. */
export interface SessionEvent {
  upstream: string;
  sessionId: string;
  /** Changes whenever the gateway lost continuity for this session. */
  epoch: number;
  /** 1, 2, 3… within an epoch, without gaps. */
  seq: number;
  type: SessionEventType | string;
  messageId?: string | null;
  partId?: string | null;
  /** part.delta: the part field the text is appended to (`text`). */
  field?: string | null;
  /** part.delta: the field's length in UTF-16 code units before this delta. */
  offset?: number | null;
  delta?: string | null;
  /** part.updated: the part; when it has no `text` member the text is unchanged. */
  part?: Part | null;
  /** message.updated: message info; session.updated: session info. */
  info?: (MessageInfo | SessionInfo) | null;
  status?: SessionStatus | null;
  error?: OpencodeError | null;
  permission?: PermissionRequest | null;
  requestId?: string | null;
  reply?: PermissionReply | string | null;
  todos?: Todo[] | null;
}

// ---------------------------------------------------------------------------------------------------------------
// SessionSnapshot.cs

export interface MessageWithParts {
  info: MessageInfo;
  parts: Part[];
}

/** A session's full state, consistent with `seq` in `epoch`. */
export interface SessionSnapshot {
  upstream: string;
  sessionId: string;
  epoch: number;
  seq: number;
  session: SessionInfo;
  messages: MessageWithParts[];
  status: SessionStatus;
  permissions: PermissionRequest[];
  todos?: Todo[] | null;
  metadata?: SessionMetadata | null;
}

// ---------------------------------------------------------------------------------------------------------------
// GatewayErrorCodes.cs (plus codes the client produces itself)

export const GatewayErrorCodes = {
  SessionNotFound: 'session_not_found',
  UpstreamUnavailable: 'upstream_unavailable',
  UpstreamError: 'upstream_error',
  BadRequest: 'bad_request',
  PermissionNotFound: 'permission_not_found',
  Unauthorized: 'unauthorized',
  Forbidden: 'forbidden',
  Conflict: 'conflict',
  PayloadTooLarge: 'payload_too_large',
} as const;

/** Codes the hub filter produces that are not in GatewayErrorCodes.cs. */
export const HubFilterErrorCodes = {
  InternalError: 'internal_error',
  Cancelled: 'cancelled',
} as const;

/** Codes this client produces for failures that never reached the server or carry no code. */
export const ClientErrorCodes = {
  /** Not connected (and not within the wait), or the connection closed during the call. */
  Disconnected: 'disconnected',
  /** The server does not have this hub method (yet). */
  MethodNotFound: 'method_not_found',
  /** A HubException without a code, or any other error. */
  Unknown: 'unknown',
} as const;

export type GatewayErrorCode =
  | (typeof GatewayErrorCodes)[keyof typeof GatewayErrorCodes]
  | (typeof HubFilterErrorCodes)[keyof typeof HubFilterErrorCodes]
  | (typeof ClientErrorCodes)[keyof typeof ClientErrorCodes]
  | (string & {});

// ---------------------------------------------------------------------------------------------------------------
// Drift check: the members of every contract type, camelCased.

export const contractFields = {
  StreamPosition: ['epoch', 'seq'],
  JoinRequest: ['sessionId', 'upstream', 'since'],
  JoinResult: ['upstream', 'sessionId', 'epoch', 'seq', 'recovered', 'events', 'snapshot'],
  CreateSessionRequest: ['title', 'upstream', 'workspace', 'tags', 'metadata'],
  PromptPart: ['type', 'text'],
  PromptRequest: ['sessionId', 'text', 'parts', 'agent', 'model'],
  PromptResult: ['sessionId', 'queued'],
  PermissionReplyRequest: ['sessionId', 'requestId', 'reply', 'message'],
  SessionMetadata: ['sessionId', 'upstream', 'ownerId', 'workspace', 'title', 'tags', 'metadata', 'createdAt', 'updatedAt',
    'archivedAt'],
  SessionEvent: ['upstream', 'sessionId', 'epoch', 'seq', 'type', 'messageId', 'partId', 'field', 'offset', 'delta', 'part',
    'info', 'status', 'error', 'permission', 'requestId', 'reply', 'todos'],
  SessionSnapshot: ['upstream', 'sessionId', 'epoch', 'seq', 'session', 'messages', 'status', 'permissions', 'todos',
    'metadata'],
  MessageWithParts: ['info', 'parts'],
  ListSessionsRequest: ['workspace', 'tag', 'archived', 'q', 'cursor', 'limit'],
  SessionList: ['items', 'nextCursor'],
  UpdateSessionRequest: ['sessionId', 'title', 'tags', 'metadata'],
  AdoptSessionRequest: ['ownerId', 'workspace', 'upstream', 'tags', 'metadata'],
  CreatedSession: ['session', 'info'],
  SessionDetails: ['session', 'info', 'status', 'lastAssistantMessage', 'liveError'],
} as const;

/** Contract types the client speaks that the server's C# contracts do not declare (none at the moment). */
export const plannedContracts: readonly (keyof typeof contractFields)[] = [];

interface ContractTypes {
  StreamPosition: StreamPosition;
  JoinRequest: JoinRequest;
  JoinResult: JoinResult;
  CreateSessionRequest: CreateSessionRequest;
  PromptPart: PromptPart;
  PromptRequest: PromptRequest;
  PromptResult: PromptResult;
  PermissionReplyRequest: PermissionReplyRequest;
  SessionMetadata: SessionMetadata;
  SessionEvent: SessionEvent;
  SessionSnapshot: SessionSnapshot;
  MessageWithParts: MessageWithParts;
  ListSessionsRequest: ListSessionsRequest;
  SessionList: SessionList;
  UpdateSessionRequest: UpdateSessionRequest;
  AdoptSessionRequest: AdoptSessionRequest;
  CreatedSession: CreatedSession;
  SessionDetails: SessionDetails;
}

type SameKeys<T, K extends PropertyKey> = [Exclude<keyof T, K>] extends [never]
  ? [Exclude<K, keyof T>] extends [never] ? true : { missingInList: Exclude<keyof T, K>; notInInterface: Exclude<K, keyof T> }
  : { missingInList: Exclude<keyof T, K>; notInInterface: Exclude<K, keyof T> };

/** Compile-time: every interface has exactly the keys `contractFields` lists for it, and every type is listed. */
export type ContractFieldsMatch = {
  [N in keyof ContractTypes]: SameKeys<ContractTypes[N], (typeof contractFields)[N][number]>;
};
const contractFieldsMatch: { [N in keyof ContractTypes]: true } & { [N in Exclude<keyof typeof contractFields, keyof ContractTypes>]: never } =
  null as unknown as ContractFieldsMatch;
void contractFieldsMatch;
