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
// opencode shapes the gateway passes through. Unions are discriminated (`type`, `role`, `status`); members clients
// rarely read are left out. `normalize.ts` turns what arrives into these types: a part of a type this client does not
// know (from a newer opencode) becomes an `UnknownPart` that keeps its members and its original `type` as `wireType`.

/** opencode's session info (`ses_…`). */
export interface SessionInfo {
  id: string;
  title?: string;
  directory?: string;
  /** A subagent's session: the session whose `task` tool started it. */
  parentID?: string;
  time?: { created?: number; updated?: number; [key: string]: unknown };
  [key: string]: unknown;
}

/** opencode's error object (`{name, data:{message,…}}`): `MessageAbortedError`, `APIError`, `ProviderAuthError`, … */
export interface OpencodeError {
  name?: string;
  data?: { message?: string; [key: string]: unknown };
  [key: string]: unknown;
}

interface MessageInfoBase {
  id: string;
  sessionID?: string;
  time?: { created?: number; completed?: number; [key: string]: unknown };
  [key: string]: unknown;
}

export interface UserMessageInfo extends MessageInfoBase {
  role: 'user';
  agent?: string;
  model?: { providerID?: string; modelID?: string };
}

export interface AssistantMessageInfo extends MessageInfoBase {
  role: 'assistant';
  parentID?: string;
  modelID?: string;
  providerID?: string;
  agent?: string;
  cost?: number;
  tokens?: { input?: number; output?: number; reasoning?: number; cache?: { read?: number; write?: number } };
  finish?: string;
  error?: OpencodeError;
}

/** The info of a message whose parts arrived before the message itself (replaced by its `message.updated`). */
export interface PlaceholderMessageInfo extends MessageInfoBase {
  role?: undefined;
}

/** opencode's message info. */
export type MessageInfo = UserMessageInfo | AssistantMessageInfo | PlaceholderMessageInfo;

interface PartBase {
  id: string;
  messageID: string;
  sessionID?: string;
}

export interface TextPart extends PartBase {
  type: 'text';
  /** Absent when a `part.updated` without text created the part (its text then arrives as deltas). */
  text?: string;
  /** Added by opencode, not typed by anyone (e.g. a file's content read for the model). */
  synthetic?: boolean;
  ignored?: boolean;
  time?: { start?: number; end?: number };
  metadata?: JsonObject;
}

export interface ReasoningPart extends PartBase {
  type: 'reasoning';
  text?: string;
  time?: { start?: number; end?: number };
  metadata?: JsonObject;
}

export type ToolStatus = 'pending' | 'running' | 'completed' | 'error';

export interface ToolStatePending {
  status: 'pending';
  input?: JsonObject;
  raw?: string;
}

export interface ToolStateRunning {
  status: 'running';
  input?: JsonObject;
  title?: string;
  metadata?: JsonObject;
  time?: { start?: number };
}

export interface ToolStateCompleted {
  status: 'completed';
  input?: JsonObject;
  output: string;
  title?: string;
  metadata?: JsonObject;
  time?: { start?: number; end?: number; compacted?: number };
}

export interface ToolStateError {
  status: 'error';
  input?: JsonObject;
  error: string;
  metadata?: JsonObject;
  time?: { start?: number; end?: number };
}

export type ToolState = ToolStatePending | ToolStateRunning | ToolStateCompleted | ToolStateError;

export interface ToolPart extends PartBase {
  type: 'tool';
  tool: string;
  callID: string;
  /**
   * Its streamed fields (`StreamedFields.ToolMetadataOutput`, `StreamedFields.ToolOutput`) grow by positioned deltas
   * like a text part's `text`: `state.metadata.output` while the tool runs, `state.output` once it completed.
   */
  state: ToolState;
  metadata?: JsonObject;
}

export interface FilePart extends PartBase {
  type: 'file';
  mime: string;
  url: string;
  filename?: string;
  source?: JsonObject;
}

export interface StepStartPart extends PartBase {
  type: 'step-start';
  snapshot?: string;
}

export interface StepFinishPart extends PartBase {
  type: 'step-finish';
  reason?: string;
  snapshot?: string;
  cost?: number;
  tokens?: { input?: number; output?: number; reasoning?: number; cache?: { read?: number; write?: number } };
}

export interface SubtaskPart extends PartBase {
  type: 'subtask';
  prompt: string;
  description: string;
  agent: string;
}

export interface SnapshotPart extends PartBase {
  type: 'snapshot';
  snapshot: string;
}

export interface PatchPart extends PartBase {
  type: 'patch';
  hash: string;
  files: string[];
}

export interface AgentPart extends PartBase {
  type: 'agent';
  name: string;
}

export interface RetryPart extends PartBase {
  type: 'retry';
  attempt: number;
  error?: OpencodeError;
}

export interface CompactionPart extends PartBase {
  type: 'compaction';
  auto: boolean;
}

/** A part whose deltas arrived before the part itself: only the streamed field is known so far. */
export interface PlaceholderPart extends PartBase {
  type: undefined;
  text?: string;
}

/** A part of a type this client does not know (a newer opencode): its members as sent, its type in `wireType`. */
export interface UnknownPart extends PartBase {
  type: 'unknown';
  wireType: string;
  [member: string]: unknown;
}

/** The part types opencode defines (and this client types). */
export const partTypes = [
  'text', 'reasoning', 'tool', 'file', 'step-start', 'step-finish', 'subtask', 'snapshot', 'patch', 'agent', 'retry',
  'compaction',
] as const;

/** opencode's message part, discriminated by `type`. */
export type Part =
  | TextPart
  | ReasoningPart
  | ToolPart
  | FilePart
  | StepStartPart
  | StepFinishPart
  | SubtaskPart
  | SnapshotPart
  | PatchPart
  | AgentPart
  | RetryPart
  | CompactionPart
  | PlaceholderPart
  | UnknownPart;

/** `{"type":"idle"|"busy"|"retry",…}`. */
export type SessionStatus =
  | { type: 'idle' }
  | { type: 'busy' }
  | { type: 'retry'; attempt?: number; message?: string; next?: number };

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

export type PermissionReply = 'once' | 'always' | 'reject';

/** One question of a `question.asked` request, with the options a user picks from. */
export interface QuestionInfo {
  question: string;
  header?: string;
  options: { label: string; description?: string }[];
  /** More than one option may be chosen. */
  multiple?: boolean;
  [key: string]: unknown;
}

/** A pending question of opencode's `question` tool (`question.asked`): answer with one string array per question. */
export interface QuestionRequest {
  id: string;
  /** The session that asked: the watched one or a descendant (a subagent's). */
  sessionID: string;
  questions: QuestionInfo[];
  tool?: { messageID?: string; callID?: string };
  [key: string]: unknown;
}

/** A descendant session of the watched one (a subagent's session, any depth). */
export interface ChildSession {
  id: string;
  /** Its parent: the watched session or another descendant. */
  parentId: string;
  title?: string | null;
  status: SessionStatus;
}

/** Where the messages older than a snapshot's (or a page's) begin: pass `cursor` to `LoadEarlier`. */
export interface EarlierMessages {
  cursor: string;
}

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
  /**
   * Compact connections only: the session's handle in the result's epoch on this connection, the `s` of every compact
   * delta (`D`) of it. It changes with the epoch (a pushed snapshot brings the new one) and may change on a rejoin.
   */
  sessionHandle?: number | null;
}

export interface CreateSessionRequest {
  title?: string | null;
  upstream?: string | null;
  workspace?: string | null;
  tags?: string[] | null;
  metadata?: Json;
}

export interface TextPromptPart {
  type: 'text';
  text: string;
}

/**
 * An attachment (a screenshot, a file): `url` is a base64 `data:` URL of at most `Gateway:Prompts:MaxAttachmentBytes`
 * decoded bytes (`defaultMaxAttachmentBytes`); the gateway refuses other URLs and paths. `filePromptPart` makes one.
 */
export interface FilePromptPart {
  type: 'file';
  mime: string;
  url: string;
  filename?: string | null;
}

export type PromptPart = TextPromptPart | FilePromptPart;

/** `Gateway:Prompts:MaxAttachmentBytes`'s default: the largest attachment the gateway accepts, in decoded bytes. */
export const defaultMaxAttachmentBytes = 5 * 1024 * 1024;

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
  /** The session that asked or any of its ancestors (the watched one). */
  sessionId: string;
  requestId: string;
  reply: PermissionReply;
  message?: string | null;
}

export interface QuestionReplyRequest {
  /** The session that asked or any of its ancestors (the watched one). */
  sessionId: string;
  requestId: string;
  /** One array of chosen labels (or typed answers) per question of the request, in order. */
  answers: string[][];
}

/** Dismisses a question: its tool call ends with an error and the run goes on. */
export interface QuestionRejectRequest {
  sessionId: string;
  requestId: string;
}

export interface LoadEarlierRequest {
  sessionId: string;
  /** The `earlier.cursor` of a snapshot or of the previous page. */
  before: string;
  /** Messages per page, 1–100 (default: the gateway's `Gateway:Snapshots:MaxMessages`). */
  limit?: number | null;
}

/** The messages just before a cursor, oldest first, as opencode stored them; `earlier` when older ones remain. */
export interface MessagePage {
  messages: MessageWithParts[];
  earlier?: EarlierMessages | null;
}

/** The gateway's record of a session (owner, workspace, tags, free-form metadata). Dates are ISO 8601 strings. */
export interface SessionMetadata {
  sessionId: string;
  upstream: string;
  /** A subagent's session: its parent (it belongs to whoever may see its root, and is left out of session lists). */
  parentId?: string | null;
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

/** The kinds of `SessionListChange`. */
export type SessionListChangeKind = 'created' | 'updated' | 'archived';

/**
 * A change of one session in the lists of the users who may see it (the hub's `SessionListChanged`): its owner, the
 * members of its workspace, admins. Apply it by session id: a connection may receive it more than once, and changes of
 * one session may arrive out of order: keep the one with the latest `updatedAt`.
 */
export interface SessionListChange {
  kind: SessionListChangeKind | (string & {});
  /** The session's record after the change. */
  session: SessionMetadata;
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

/** Body of `POST /api/upstreams` (admins): an opencode server registered at run time. */
export interface RegisterUpstreamRequest {
  id: string;
  baseUrl: string;
  directory?: string | null;
  /** opencode's `OPENCODE_SERVER_PASSWORD`; stored encrypted by the gateway, never returned. */
  password?: string | null;
}

/** One opencode server and its event stream, as `GET /api/upstreams` (admins) reports it (never its password). */
export interface UpstreamStatus {
  id: string;
  baseUrl: string;
  /** From the gateway's configuration (not removable through the API); false: registered at run time. */
  configured: boolean;
  /** Directory new sessions are created in; absent: the server's own. */
  directory?: string | null;
  /** Its event stream is read now, by the node answering or another. */
  connected: boolean;
  /** The node reading it (a cluster's lease holder). */
  holder?: string | null;
  fencingToken?: number | null;
  /** The node answering reads it. */
  heldHere: boolean;
  since?: string | null;
  lastError?: string | null;
  reconnects: number;
}

// ---------------------------------------------------------------------------------------------------------------
// SessionEvent.cs

export const SessionEventTypes = {
  PartUpdated: 'part.updated',
  PartDelta: 'part.delta',
  PartGap: 'part.gap',
  PartRemoved: 'part.removed',
  MessageUpdated: 'message.updated',
  MessageRemoved: 'message.removed',
  Status: 'status',
  Error: 'error',
  PermissionAsked: 'permission.asked',
  PermissionReplied: 'permission.replied',
  TodoUpdated: 'todo.updated',
  QuestionAsked: 'question.asked',
  QuestionReplied: 'question.replied',
  QuestionRejected: 'question.rejected',
  ChildUpdated: 'child.updated',
  SessionUpdated: 'session.updated',
  SessionDeleted: 'session.deleted',
  EpochStarted: 'epoch.started',
} as const;

export type SessionEventType = (typeof SessionEventTypes)[keyof typeof SessionEventTypes];

/**
 * The part fields the gateway streams as positioned deltas (field paths, dot-separated): a text or reasoning part's
 * `text`; a tool part's `state.metadata.output` (while it runs) and `state.output` (once completed).
 */
export const StreamedFields = {
  Text: 'text',
  ToolMetadataOutput: 'state.metadata.output',
  ToolOutput: 'state.output',
} as const;

export type StreamedField = (typeof StreamedFields)[keyof typeof StreamedFields] | (string & {});

/** The envelope every event has. */
export interface SessionEventBase {
  upstream: string;
  sessionId: string;
  /** Changes whenever the gateway lost continuity for this session. */
  epoch: number;
  /** 1, 2, 3… within an epoch, without gaps. */
  seq: number;
}

/**
 * A part was created or changed: replace it, except that a streamed field you hold that `part` lacks keeps your text
 * (for `text`, as always), and a field named in `copies` that `part` lacks becomes the text of that handle.
 */
export interface PartUpdatedEvent extends SessionEventBase {
  type: 'part.updated';
  messageId: string;
  partId: string;
  part: Part;
  /**
   * The handle of `field` when the event has one (a tool part's streamed field it extends), else, when `part` has
   * `text`, of `text` (see `CompactDelta.h`).
   */
  handle?: number;
  /** A tool part's streamed field (a path, e.g. `state.metadata.output`) this update only extends. */
  field?: string;
  /** With `field`: the field's length before `delta` (UTF-16 code units). */
  offset?: number;
  /** With `field`: the text it appended. */
  delta?: string;
  /** A tool part's streamed fields introduced here: field path → handle. */
  handles?: Record<string, number>;
  /** A tool part's streamed fields whose value is the text held for a handle: field path → handle. */
  copies?: Record<string, number>;
}

/** Put `delta` into the part's `field` (opencode streams `text`) at `offset`, its length in UTF-16 code units before. */
export interface PartDeltaEvent extends SessionEventBase {
  type: 'part.delta';
  messageId: string;
  partId: string;
  field: string;
  offset: number;
  delta: string;
  /** The part field's handle (see `CompactDelta.h`). */
  handle?: number;
}

/**
 * The part's `field` stops being continuous at `offset`: the text before it is what opencode streamed, what follows
 * came after text the gateway never received. Show a mark there until a `part.updated` with the field restates it.
 */
export interface PartGapEvent extends SessionEventBase {
  type: 'part.gap';
  messageId: string;
  partId: string;
  field: string;
  offset: number;
  /** The part field's handle (see `CompactDelta.h`). */
  handle?: number;
}

export interface PartRemovedEvent extends SessionEventBase {
  type: 'part.removed';
  messageId?: string;
  partId: string;
}

export interface MessageUpdatedEvent extends SessionEventBase {
  type: 'message.updated';
  messageId: string;
  info: MessageInfo;
}

export interface MessageRemovedEvent extends SessionEventBase {
  type: 'message.removed';
  messageId: string;
}

/** Busy / idle / retry; sent only when it changes. */
export interface StatusEvent extends SessionEventBase {
  type: 'status';
  status: SessionStatus;
}

/** opencode's `session.error`. */
export interface ErrorEvent extends SessionEventBase {
  type: 'error';
  error: OpencodeError;
}

/** A permission request, of the session or (with `childSessionId`) of a descendant. */
export interface PermissionAskedEvent extends SessionEventBase {
  type: 'permission.asked';
  permission: PermissionRequest;
  /** Raised in this descendant session (a subagent's), delivered here as the watched session's own event. */
  childSessionId?: string;
}

export interface PermissionRepliedEvent extends SessionEventBase {
  type: 'permission.replied';
  requestId: string;
  reply: PermissionReply;
  childSessionId?: string;
}

/** opencode's `question` tool waits for an answer (`ReplyQuestion`) or a dismissal (`RejectQuestion`). */
export interface QuestionAskedEvent extends SessionEventBase {
  type: 'question.asked';
  question: QuestionRequest;
  childSessionId?: string;
}

export interface QuestionRepliedEvent extends SessionEventBase {
  type: 'question.replied';
  question: { id: string; sessionID?: string; answers?: string[][] };
  childSessionId?: string;
}

/** The question was dismissed; its tool part ends with `state.status: "error"`. */
export interface QuestionRejectedEvent extends SessionEventBase {
  type: 'question.rejected';
  question: { id: string; sessionID?: string };
  childSessionId?: string;
}

/** A descendant session (a subagent's, any depth) was created, renamed or changed status. */
export interface ChildUpdatedEvent extends SessionEventBase {
  type: 'child.updated';
  childSessionId: string;
  child: ChildSession;
}

export interface TodoUpdatedEvent extends SessionEventBase {
  type: 'todo.updated';
  todos: Todo[];
}

export interface SessionUpdatedEvent extends SessionEventBase {
  type: 'session.updated';
  info: SessionInfo;
}

export interface SessionDeletedEvent extends SessionEventBase {
  type: 'session.deleted';
}

/**
 * The first event of an epoch after a loss of continuity. The gateway pushes the epoch's snapshot before it, so a
 * client normally never applies it; one that sees it has an event of another epoch and rejoins without `since`.
 */
export interface EpochStartedEvent extends SessionEventBase {
  type: 'epoch.started';
}

/**
 * An event of a type this client does not know (a newer gateway): it still takes its place in the sequence (its
 * `seq` is applied), and its members are kept as sent, with the original type in `wireType`.
 */
export interface UnknownSessionEvent extends SessionEventBase {
  type: 'unknown';
  wireType: string;
  [member: string]: unknown;
}

/** The events the gateway defines. */
export type KnownSessionEvent =
  | PartUpdatedEvent
  | PartDeltaEvent
  | PartGapEvent
  | PartRemovedEvent
  | MessageUpdatedEvent
  | MessageRemovedEvent
  | StatusEvent
  | ErrorEvent
  | PermissionAskedEvent
  | PermissionRepliedEvent
  | QuestionAskedEvent
  | QuestionRepliedEvent
  | QuestionRejectedEvent
  | ChildUpdatedEvent
  | TodoUpdatedEvent
  | SessionUpdatedEvent
  | SessionDeletedEvent
  | EpochStartedEvent;

/** One event of one session, discriminated by `type` (`toSessionEvent` makes one from what the hub sends). */
export type SessionEvent = KnownSessionEvent | UnknownSessionEvent;

/** Every member any type of a union has (for events: the flat C# record `SessionEvent`). */
type AllKeys<T> = T extends unknown ? keyof T : never;

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
  /** The newest messages (at most `Gateway:Snapshots:MaxMessages`), oldest first. */
  messages: MessageWithParts[];
  /** Set when older messages exist: page them with `LoadEarlier`. */
  earlier?: EarlierMessages | null;
  status: SessionStatus;
  /** Pending permission requests of the session and of its descendants (a request's `sessionID` says whose). */
  permissions: PermissionRequest[];
  /** Pending questions of the session and of its descendants. */
  questions?: QuestionRequest[];
  /** The descendant sessions (subagents', any depth), oldest first. */
  children?: ChildSession[];
  todos?: Todo[] | null;
  metadata?: SessionMetadata | null;
  /** Where in-flight texts are not continuous: part id → field → sorted UTF-16 offsets (absent: all continuous). */
  gaps?: Record<string, Record<string, number[]>> | null;
  /** The handles of the streamed part fields: part id → field path → handle (see `CompactDelta.h`). */
  handles?: Record<string, Record<string, number>> | null;
  /** Compact connections only: this connection's handle of the session in the snapshot's epoch (`CompactDelta.s`). */
  sessionHandle?: number | null;
}

// ---------------------------------------------------------------------------------------------------------------
// HubContracts.cs: the compact form (ISessionClient.D, EventForms)

/**
 * How a connection receives events, chosen when it connects (`?events=` on the hub URL): `compact` (the default) sends
 * each `part.delta` as a compact delta `D(s, seq, h, offset, delta)`, everything else as a `SessionEvent`; `full` sends
 * every event as a `SessionEvent`.
 */
export const EventForms = {
  Compact: 'compact',
  Full: 'full',
  QueryParameter: 'events',
} as const;

export type EventForm = typeof EventForms.Compact | typeof EventForms.Full;

/** The hub's client method of compact deltas. */
export const CompactDeltaMethod = 'D';

/**
 * The arguments of one compact delta, `D(s, seq, h, offset, delta)`: a `part.delta` of the session and epoch `s` names
 * (the `sessionHandle` of the connection's latest join result or pushed snapshot of it; a delta of any other `s` is of
 * an epoch left behind: ignored), at `seq` in that epoch, into the part field `h` names (introduced by an earlier
 * event's `handle` or the snapshot's `handles`; unknown: the state is not the gateway's, rejoin without since).
 */
export interface CompactDelta {
  s: number;
  seq: number;
  h: number;
  offset: number;
  delta: string;
}

/** `D`'s positional arguments, in order (the drift test compares them with `ISessionClient.D`). */
export const compactDeltaArguments = ['s', 'seq', 'h', 'offset', 'delta'] as const satisfies readonly (keyof CompactDelta)[];

/** A compact delta from `D`'s positional arguments. */
export function toCompactDelta(s: number, seq: number, h: number, offset: number, delta: string): CompactDelta {
  return { s, seq, h, offset, delta };
}

// ---------------------------------------------------------------------------------------------------------------
// GatewayErrorCodes.cs (plus codes the client produces itself)

export const GatewayErrorCodes = {
  SessionNotFound: 'session_not_found',
  UpstreamUnavailable: 'upstream_unavailable',
  UpstreamError: 'upstream_error',
  /** The upstream named, or the one a session lives on, is not the gateway's (never registered, or removed). */
  UpstreamNotFound: 'upstream_not_found',
  BadRequest: 'bad_request',
  PermissionNotFound: 'permission_not_found',
  /** The question is not pending on the session or any of its descendants. */
  QuestionNotFound: 'question_not_found',
  Unauthorized: 'unauthorized',
  Forbidden: 'forbidden',
  Conflict: 'conflict',
  PayloadTooLarge: 'payload_too_large',
  /**
   * A per-user limit (connections, prompts per minute, busy sessions, sessions per connection) or the failed
   * authentications of a client address: HTTP 429 with `Retry-After`; hub errors end with "retry after N s.".
   */
  RateLimited: 'rate_limited',
  /** The gateway's session store, or Redis in a cluster, did not answer in time: retry shortly. */
  ServiceUnavailable: 'service_unavailable',
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
  JoinResult: ['upstream', 'sessionId', 'epoch', 'seq', 'recovered', 'events', 'snapshot', 'sessionHandle'],
  CreateSessionRequest: ['title', 'upstream', 'workspace', 'tags', 'metadata'],
  PromptPart: ['type', 'text', 'mime', 'url', 'filename'],
  PromptRequest: ['sessionId', 'text', 'parts', 'agent', 'model'],
  PromptResult: ['sessionId', 'queued'],
  PermissionReplyRequest: ['sessionId', 'requestId', 'reply', 'message'],
  QuestionReplyRequest: ['sessionId', 'requestId', 'answers'],
  QuestionRejectRequest: ['sessionId', 'requestId'],
  LoadEarlierRequest: ['sessionId', 'before', 'limit'],
  MessagePage: ['messages', 'earlier'],
  SessionMetadata: ['sessionId', 'upstream', 'parentId', 'ownerId', 'workspace', 'title', 'tags', 'metadata', 'createdAt',
    'updatedAt', 'archivedAt'],
  SessionEvent: ['upstream', 'sessionId', 'epoch', 'seq', 'type', 'messageId', 'partId', 'field', 'offset', 'delta', 'part',
    'info', 'status', 'error', 'permission', 'requestId', 'reply', 'todos', 'handle', 'handles', 'copies', 'question',
    'childSessionId', 'child'],
  SessionSnapshot: ['upstream', 'sessionId', 'epoch', 'seq', 'session', 'messages', 'earlier', 'status', 'permissions',
    'questions', 'children', 'todos', 'metadata', 'gaps', 'handles', 'sessionHandle'],
  MessageWithParts: ['info', 'parts'],
  EarlierMessages: ['cursor'],
  ChildSession: ['id', 'parentId', 'title', 'status'],
  ListSessionsRequest: ['workspace', 'tag', 'archived', 'q', 'cursor', 'limit'],
  SessionList: ['items', 'nextCursor'],
  SessionListChange: ['kind', 'session'],
  UpdateSessionRequest: ['sessionId', 'title', 'tags', 'metadata'],
  AdoptSessionRequest: ['ownerId', 'workspace', 'upstream', 'tags', 'metadata'],
  CreatedSession: ['session', 'info'],
  SessionDetails: ['session', 'info', 'status', 'lastAssistantMessage', 'liveError'],
  RegisterUpstreamRequest: ['id', 'baseUrl', 'directory', 'password'],
  UpstreamStatus: ['id', 'baseUrl', 'configured', 'directory', 'connected', 'holder', 'fencingToken', 'heldHere', 'since', 'lastError', 'reconnects'],
} as const;

/** Contract types the client speaks that the server's C# contracts do not declare (none at the moment). */
export const plannedContracts: readonly (keyof typeof contractFields)[] = [];

interface ContractTypes {
  StreamPosition: StreamPosition;
  JoinRequest: JoinRequest;
  JoinResult: JoinResult;
  CreateSessionRequest: CreateSessionRequest;
  PromptPart: { [K in AllKeys<PromptPart>]: unknown };
  PromptRequest: PromptRequest;
  PromptResult: PromptResult;
  PermissionReplyRequest: PermissionReplyRequest;
  QuestionReplyRequest: QuestionReplyRequest;
  QuestionRejectRequest: QuestionRejectRequest;
  LoadEarlierRequest: LoadEarlierRequest;
  MessagePage: MessagePage;
  SessionMetadata: SessionMetadata;
  SessionEvent: { [K in AllKeys<KnownSessionEvent>]: unknown };
  SessionSnapshot: SessionSnapshot;
  MessageWithParts: MessageWithParts;
  EarlierMessages: EarlierMessages;
  ChildSession: ChildSession;
  ListSessionsRequest: ListSessionsRequest;
  SessionList: SessionList;
  SessionListChange: SessionListChange;
  UpdateSessionRequest: UpdateSessionRequest;
  AdoptSessionRequest: AdoptSessionRequest;
  CreatedSession: CreatedSession;
  SessionDetails: SessionDetails;
  RegisterUpstreamRequest: RegisterUpstreamRequest;
  UpstreamStatus: UpstreamStatus;
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
