/**
 * Framework-free stores over a `GatewayClient`, shaped for `useSyncExternalStore` (and any other UI library):
 * `subscribe(listener)` returns an unsubscribe function, `getSnapshot()` returns the same object until something
 * changed. The React bindings (`@opencode-gateway/client/react`) are thin hooks over these.
 *
 * - `SessionChatStore`: one session's view plus the prompts this client sent that opencode has not shown yet
 *   (optimistic user messages) and a chat status (`connecting`, `submitted`, `streaming`, `ready`, `error`).
 * - `SessionListStore`: a page of the caller's sessions for a filter, kept current by `SessionListChanged` (changes
 *   made in other tabs, on other nodes, over HTTP), reloaded on reconnect and on demand.
 * - `GatewayStores`: one store per session / filter for a client, so every component watching a session shares its
 *   state (and its optimistic messages).
 */
import type { ConnectionState, GatewayClient, PromptOptions, WatchHandle } from './client.js';
import type {
  ChildSession,
  CreateSessionRequest,
  FilePart,
  ListSessionsRequest,
  OpencodeError,
  Part,
  PermissionReply,
  PermissionRequest,
  PromptPart,
  PromptResult,
  QuestionRequest,
  SessionInfo,
  SessionListChange,
  SessionMetadata,
  TextPart,
  UserMessageInfo,
} from './contracts.js';
import { toGatewayError } from './errors.js';
import type { MessageView, SessionView } from './session-state.js';

/**
 * - `connecting`: not connected to the gateway, or the session's state has not arrived yet;
 * - `submitted`: a prompt was sent and no answer has started yet;
 * - `streaming`: opencode is answering (the session is busy and its answer has started);
 * - `ready`: idle;
 * - `error`: joining the session failed, the last prompt failed, or opencode reported an error for the last answer.
 */
export type ChatStatus = 'connecting' | 'submitted' | 'streaming' | 'ready' | 'error';

/** What `error` holds: where the failure came from, a stable code and a human message. */
export type ChatError =
  /** The session could not be joined (e.g. `session_not_found`). */
  | { readonly source: 'join'; readonly code: string; readonly message: string }
  /** The last prompt was refused or could not be sent (its optimistic message was removed). */
  | { readonly source: 'prompt'; readonly code: string; readonly message: string }
  /** opencode's own error for the last answer (`code` is its name, e.g. `APIError`). */
  | { readonly source: 'session'; readonly code: string; readonly message: string; readonly error: OpencodeError };

/** A message as a chat shows it: opencode's, or an optimistic user message this client sent (`optimistic: true`). */
export interface ChatMessage extends MessageView {
  readonly optimistic: boolean;
}

export interface SessionChatState {
  readonly sessionId: string;
  readonly status: ChatStatus;
  readonly connection: ConnectionState;
  /** The session's view from the engine (`SessionState`); null until it is watched. */
  readonly view: SessionView | null;
  /** The view's messages plus optimistic user messages, oldest first. */
  readonly messages: readonly ChatMessage[];
  /** Pending permission requests of the session and of its descendants (subagents'): answer them here. */
  readonly permissions: readonly PermissionRequest[];
  /** Pending questions of the session and of its descendants: answer or dismiss them here. */
  readonly questions: readonly QuestionRequest[];
  /** The descendant sessions (subagents', any depth), oldest first. */
  readonly children: readonly ChildSession[];
  /** Older messages exist than the first one in `messages`: `loadEarlier` pages them in. */
  readonly hasEarlier: boolean;
  /** A `loadEarlier` is in flight. */
  readonly loadingEarlier: boolean;
  readonly error: ChatError | null;
}

/** `connecting`, `ready` or `error` (a list is never `submitted` or `streaming`). */
export type ListStatus = Extract<ChatStatus, 'connecting' | 'ready' | 'error'>;

export interface SessionListState {
  readonly status: ListStatus;
  /** The sessions loaded so far (first page, plus pages added by `loadMore`), most recently updated first. */
  readonly sessions: readonly SessionMetadata[];
  /** Whether `loadMore` has more to load. */
  readonly hasMore: boolean;
  /** A load is in flight (the previous list stays in `sessions` meanwhile). */
  readonly loading: boolean;
  readonly error: { readonly code: string; readonly message: string } | null;
}

type Listener = () => void;

/** The text a user typed: the joined text parts opencode did not add itself. */
export function userText(parts: readonly Part[]): string {
  return parts
    .filter((p): p is TextPart => p.type === 'text' && !p.synthetic)
    .map((p) => p.text ?? '')
    .join('');
}

/** Whether a message's parts hold anything a user sent: text they typed or an attachment. */
function hasUserContent(parts: readonly Part[]): boolean {
  return userText(parts) !== '' || parts.some((p) => p.type === 'file');
}

/** The text of a part that has one (text, reasoning, and a placeholder created by a delta), else `''`. */
export function partText(part: Part): string {
  return part.type === 'text' || part.type === 'reasoning' || part.type === undefined ? (part.text ?? '') : '';
}

interface PendingPrompt {
  readonly message: ChatMessage;
  readonly text: string;
  /** User messages that existed when it was sent: none of them can be its echo. */
  readonly knownUserIds: ReadonlySet<string>;
  /** The gateway accepted it (opencode will show it, possibly with a text it changed). */
  accepted: boolean;
}

let optimisticCounter = 0;

export class SessionChatStore {
  readonly sessionId: string;
  private readonly client: GatewayClient;
  private readonly listeners = new Set<Listener>();
  private pending: PendingPrompt[] = [];
  /**
   * The echo of the last prompt, until its answer is seen: opencode shows the user message before the session turns
   * busy, so without this the status would read `ready` in between.
   */
  private awaiting: { readonly echoId: string; sawBusy: boolean } | null = null;
  private promptError: ChatError | null = null;
  private loadingEarlier = false;
  private handle: WatchHandle | null = null;
  private stopStateListener: (() => void) | null = null;
  private state: SessionChatState;
  private lastView: SessionView | null = null;
  private readonly onActiveChange: ((active: boolean) => void) | undefined;

  /** `onActiveChange` tells a registry when the store starts or stops being needed (see `active`). */
  constructor(client: GatewayClient, sessionId: string, onActiveChange?: (active: boolean) => void) {
    this.client = client;
    this.sessionId = sessionId;
    this.onActiveChange = onActiveChange;
    this.state = this.compute(client.view(sessionId) ?? null);
  }

  /** Starts watching the session with the first listener; leaves it after the last one. */
  readonly subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    this.onActiveChange?.(true);
    if (!this.handle) {
      this.stopStateListener = this.client.onStateChange(() => this.update());
      this.handle = this.client.watch(this.sessionId, () => this.update());
      this.update();
    }

    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) {
        return;
      }

      this.handle?.unsubscribe();
      this.handle = null;
      this.stopStateListener?.();
      this.stopStateListener = null;
      this.onActiveChange?.(this.active);
    };
  };

  readonly getSnapshot = (): SessionChatState => this.state;

  /** True while someone is subscribed or a prompt is on its way (the store must then be kept). */
  get active(): boolean {
    return this.listeners.size > 0 || this.pending.length > 0;
  }

  /**
   * Sends a prompt: a text, or parts (text and attachments). Its user message shows at once (`optimistic: true`) and is
   * replaced by opencode's own when that arrives. Never rejects: when the prompt fails, the optimistic message is
   * removed, `error` says why (source `prompt`), and the promise resolves to undefined.
   */
  readonly prompt = async (content: string | readonly PromptPart[], options?: PromptOptions): Promise<PromptResult | undefined> => {
    const view = this.handle?.view ?? this.client.view(this.sessionId) ?? null;
    const localId = `optimistic_${++optimisticCounter}`;
    const info: UserMessageInfo = { id: localId, sessionID: this.sessionId, role: 'user', time: { created: Date.now() } };
    const parts = optimisticParts(typeof content === 'string' ? [{ type: 'text', text: content }] : content, localId, this.sessionId);
    const pending: PendingPrompt = {
      message: { info, parts, optimistic: true },
      text: userText(parts),
      knownUserIds: new Set(view?.messages.filter((m) => m.info.role === 'user').map((m) => m.info.id) ?? []),
      accepted: false,
    };
    this.pending.push(pending);
    this.promptError = null;
    this.update();
    try {
      const result = await this.client.prompt(this.sessionId, content, options);
      pending.accepted = true;
      this.lastView = null; // look for its echo again: any new user message may now be it
      this.update();
      return result;
    } catch (e) {
      const error = toGatewayError(e);
      this.pending = this.pending.filter((p) => p !== pending);
      this.promptError = { source: 'prompt', code: error.code, message: error.message };
      this.update();
      this.onActiveChange?.(this.active);
      return undefined;
    }
  };

  readonly abort = async (): Promise<void> => {
    await this.client.abort(this.sessionId);
    this.awaiting = null;
    this.update();
  };

  readonly replyPermission = (requestId: string, reply: PermissionReply, message?: string): Promise<void> =>
    this.client.replyPermission(this.sessionId, requestId, reply, message);

  readonly replyQuestion = (requestId: string, answers: readonly (readonly string[])[]): Promise<void> =>
    this.client.replyQuestion(this.sessionId, requestId, answers);

  readonly rejectQuestion = (requestId: string): Promise<void> => this.client.rejectQuestion(this.sessionId, requestId);

  /** Pages earlier messages in (see `GatewayClient.loadEarlier`); `loadingEarlier` is true meanwhile. */
  readonly loadEarlier = async (limit?: number): Promise<boolean> => {
    this.loadingEarlier = true;
    this.update();
    try {
      return await this.client.loadEarlier(this.sessionId, limit);
    } finally {
      this.loadingEarlier = false;
      this.update();
    }
  };

  // -------------------------------------------------------------------------------------------------------------

  private update(): void {
    const view = this.handle?.view ?? this.client.view(this.sessionId) ?? null;
    const next = this.compute(view);
    const prev = this.state;
    if (
      next.status === prev.status &&
      next.connection === prev.connection &&
      next.view === prev.view &&
      next.loadingEarlier === prev.loadingEarlier &&
      next.error === prev.error &&
      next.messages.length === prev.messages.length &&
      next.messages.every((m, i) => m === prev.messages[i])
    ) {
      return;
    }

    this.state = next;
    for (const listener of [...this.listeners]) {
      listener();
    }
  }

  private compute(view: SessionView | null): SessionChatState {
    const messages = view ? this.mergeOptimistic(view) : this.pending.map((p) => p.message);
    const connection = this.client.state;
    const error = this.error(view);
    return {
      sessionId: this.sessionId,
      status: this.status(view, connection, error),
      connection,
      view,
      messages: this.sameMessages(messages),
      permissions: view?.permissions ?? noPermissions,
      questions: view?.questions ?? noQuestions,
      children: view?.children ?? noChildren,
      hasEarlier: Boolean(view?.earlier),
      loadingEarlier: this.loadingEarlier,
      error: sameError(error, this.state?.error) ? this.state.error : error,
    };
  }

  /** Keeps the previous array when the messages are the same objects (cheap re-render checks). */
  private sameMessages(messages: ChatMessage[]): readonly ChatMessage[] {
    const prev = this.state?.messages;
    return prev && prev.length === messages.length && messages.every((m, i) => m === prev[i]) ? prev : messages;
  }

  /**
   * opencode's messages with the optimistic ones still waiting for their echo appended. An echo is a user message
   * that did not exist when the prompt was sent, with the prompt's text (or, once the gateway accepted the prompt, any
   * text: opencode may have changed it). A new user message whose text has not arrived yet is hidden while a prompt
   * waits, so the chat does not show an empty bubble next to the optimistic one.
   */
  private mergeOptimistic(view: SessionView): ChatMessage[] {
    if (view !== this.lastView) {
      this.lastView = view;
      this.claimEchoes(view);
      this.trackAnswer(view);
    }

    const waiting = this.pending.length > 0;
    const result: ChatMessage[] = [];
    for (const message of view.messages) {
      if (waiting && message.info.role === 'user' && !hasUserContent(message.parts) && !this.pending[0]!.knownUserIds.has(message.info.id)) {
        continue;
      }

      result.push(asChatMessage(message));
    }

    for (const p of this.pending) {
      result.push(p.message);
    }

    return result;
  }

  private claimEchoes(view: SessionView): void {
    if (this.pending.length === 0) {
      return;
    }

    const claimed = new Set<string>();
    const candidates = view.messages.filter((m) => m.info.role === 'user' && hasUserContent(m.parts));
    this.pending = this.pending.filter((p) => {
      const fresh = candidates.filter((m) => !p.knownUserIds.has(m.info.id) && !claimed.has(m.info.id));
      const echo = fresh.find((m) => userText(m.parts) === p.text) ?? (p.accepted ? fresh[0] : undefined);
      if (echo) {
        claimed.add(echo.info.id);
        this.awaiting = { echoId: echo.info.id, sawBusy: false };
        return false;
      }

      return true;
    });
  }

  /** The answer to the last echo was seen once the session was busy and then idle again, or its message exists. */
  private trackAnswer(view: SessionView): void {
    const awaiting = this.awaiting;
    if (!awaiting) {
      return;
    }

    const busy = view.status.type !== 'idle';
    const answered = view.messages.some((m) => m.info.role === 'assistant' && m.info.id > awaiting.echoId);
    if ((awaiting.sawBusy && !busy) || (answered && !busy) || view.error) {
      this.awaiting = null;
    } else if (busy) {
      awaiting.sawBusy = true;
    }
  }

  private error(view: SessionView | null): ChatError | null {
    if (view?.joinError) {
      return { source: 'join', code: view.joinError.code, message: view.joinError.message };
    }

    if (this.promptError) {
      return this.promptError;
    }

    const e = view?.error;
    if (e && e.name !== 'MessageAbortedError') {
      return { source: 'session', code: e.name ?? 'UnknownError', message: e.data?.message ?? e.name ?? 'The answer failed.', error: e };
    }

    return null;
  }

  private status(view: SessionView | null, connection: ConnectionState, error: ChatError | null): ChatStatus {
    if (error?.source === 'join') {
      return 'error';
    }

    if (!view?.ready || connection !== 'connected') {
      return 'connecting';
    }

    if (this.pending.length > 0) {
      return 'submitted';
    }

    if (view.status.type !== 'idle') {
      const last = view.messages[view.messages.length - 1];
      return last?.info.role === 'assistant' && last.parts.length > 0 ? 'streaming' : 'submitted';
    }

    if (this.awaiting) {
      return 'submitted';
    }

    return error ? 'error' : 'ready';
  }
}

const noPermissions: readonly PermissionRequest[] = [];
const noQuestions: readonly QuestionRequest[] = [];
const noChildren: readonly ChildSession[] = [];

/** The parts an optimistic user message shows for a prompt's parts. */
function optimisticParts(parts: readonly PromptPart[], messageId: string, sessionId: string): Part[] {
  return parts.map((p, i): TextPart | FilePart => {
    const base = { id: `${messageId}_${i}`, messageID: messageId, sessionID: sessionId };
    return p.type === 'text'
      ? { ...base, type: 'text', text: p.text }
      : { ...base, type: 'file', mime: p.mime, url: p.url, ...(p.filename ? { filename: p.filename } : {}) };
  });
}

function sameError(a: ChatError | null, b: ChatError | null | undefined): b is ChatError | null {
  return a === b || (a !== null && b !== null && b !== undefined && a.source === b.source && a.code === b.code && a.message === b.message);
}

const chatMessages = new WeakMap<MessageView, ChatMessage>();

/** The same ChatMessage object for the same MessageView (the engine keeps unchanged messages' identity). */
function asChatMessage(message: MessageView): ChatMessage {
  let chat = chatMessages.get(message);
  if (!chat) {
    chat = { info: message.info, parts: message.parts, optimistic: false };
    chatMessages.set(message, chat);
  }

  return chat;
}

export interface SessionListOptions {
  /** Reload the first page this often while subscribed (0 = only on subscribe, reconnect and `refresh`). */
  refreshIntervalMs?: number;
}

export class SessionListStore {
  readonly filter: Readonly<ListSessionsRequest>;
  private readonly client: GatewayClient;
  private readonly refreshIntervalMs: number;
  private readonly listeners = new Set<Listener>();
  private state: SessionListState = { status: 'connecting', sessions: [], hasMore: false, loading: false, error: null };
  private cursor: string | null = null;
  private generation = 0;
  private stopStateListener: (() => void) | null = null;
  private stopChangeListener: (() => void) | null = null;
  /** Changes heard while a load is in flight: applied again on top of the page it brings (it may predate them). */
  private heardDuringLoad: SessionListChange[] | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly onActiveChange: ((active: boolean) => void) | undefined;

  constructor(client: GatewayClient, filter: ListSessionsRequest = {}, options: SessionListOptions = {},
    onActiveChange?: (active: boolean) => void) {
    this.client = client;
    this.filter = { ...filter };
    this.refreshIntervalMs = options.refreshIntervalMs ?? 0;
    this.onActiveChange = onActiveChange;
  }

  readonly subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    this.onActiveChange?.(true);
    if (this.listeners.size === 1) {
      this.stopChangeListener = this.client.onSessionListChanged((change) => {
        this.heardDuringLoad?.push(change);
        this.set({ sessions: this.applyChange(this.state.sessions, change) });
      });
      // Every new connection may have missed changes: reload when it comes (back).
      this.stopStateListener = this.client.onStateChange((state) => {
        if (state === 'connected') {
          void this.refresh();
        }
      });
      if (this.refreshIntervalMs > 0) {
        this.timer = setInterval(() => void this.refresh(), this.refreshIntervalMs);
      }

      void this.refresh();
    }

    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) {
        return;
      }

      this.stopStateListener?.();
      this.stopStateListener = null;
      this.stopChangeListener?.();
      this.stopChangeListener = null;
      clearInterval(this.timer);
      this.timer = undefined;
      this.onActiveChange?.(false);
    };
  };

  readonly getSnapshot = (): SessionListState => this.state;

  get active(): boolean {
    return this.listeners.size > 0;
  }

  /** Reloads the first page (the list shown so far stays until it arrives). */
  readonly refresh = async (): Promise<void> => {
    const generation = ++this.generation;
    this.heardDuringLoad = [];
    this.set({ loading: true });
    try {
      const page = await this.client.listSessions({ ...this.filter, cursor: null });
      if (generation === this.generation) {
        this.cursor = page.nextCursor ?? null;
        const heard = this.heardDuringLoad ?? [];
        this.heardDuringLoad = null;
        let sessions: readonly SessionMetadata[] = page.items;
        for (const change of heard) {
          sessions = this.applyChange(sessions, change);
        }

        this.set({ status: 'ready', sessions, hasMore: this.cursor !== null, loading: false, error: null });
      }
    } catch (e) {
      if (generation === this.generation) {
        const error = toGatewayError(e);
        this.set({ status: 'error', loading: false, error: { code: error.code, message: error.message } });
      }
    }
  };

  /** Appends the next page. */
  readonly loadMore = async (): Promise<void> => {
    const cursor = this.cursor;
    if (cursor === null || this.state.loading) {
      return;
    }

    const generation = ++this.generation;
    this.set({ loading: true });
    try {
      const page = await this.client.listSessions({ ...this.filter, cursor });
      if (generation === this.generation) {
        this.cursor = page.nextCursor ?? null;
        const seen = new Set(this.state.sessions.map((s) => s.sessionId));
        const sessions = [...this.state.sessions, ...page.items.filter((s) => !seen.has(s.sessionId))];
        this.set({ status: 'ready', sessions, hasMore: this.cursor !== null, loading: false, error: null });
      }
    } catch (e) {
      if (generation === this.generation) {
        const error = toGatewayError(e);
        this.set({ status: 'error', loading: false, error: { code: error.code, message: error.message } });
      }
    }
  };

  /** `sessions` with the change applied, for this store's filter and loaded page. */
  private applyChange(sessions: readonly SessionMetadata[], change: SessionListChange): readonly SessionMetadata[] {
    return applySessionListChange(sessions, change, this.filter, this.cursor !== null);
  }

  private set(change: Partial<SessionListState>): void {
    this.state = { ...this.state, ...change };
    for (const listener of [...this.listeners]) {
      listener();
    }
  }
}

/**
 * Applies a `SessionListChange` to a list ordered as the gateway orders it (latest `updatedAt` first, then session id
 * descending): the session takes its place by its new `updatedAt`, or leaves the list when it no longer matches
 * `filter`. A change no newer than the one the list holds (a repeat, or one that arrived late) changes nothing. With
 * `partial` (more pages to load) a session that would sort after the last loaded one is left for `loadMore`.
 * Returns `sessions` itself when nothing changed.
 */
export function applySessionListChange(sessions: readonly SessionMetadata[], change: SessionListChange,
  filter: Readonly<ListSessionsRequest>, partial = false): readonly SessionMetadata[] {
  const session = change.session;
  const index = sessions.findIndex((s) => s.sessionId === session.sessionId);
  if (index >= 0 && compareInstants(sessions[index]!.updatedAt, session.updatedAt) >= 0) {
    return sessions;
  }

  const others = index >= 0 ? sessions.filter((_, i) => i !== index) : sessions;
  if (!matchesListFilter(session, filter)) {
    return index >= 0 ? others : sessions;
  }

  const at = others.findIndex((s) => listOrder(session, s) < 0);
  if (at < 0 && partial) {
    return index >= 0 ? others : sessions;
  }

  const result = [...others];
  result.splice(at < 0 ? result.length : at, 0, session);
  return result;
}

/** Whether the gateway's list for `filter` holds `session` (the same rules as `ListSessions`). */
function matchesListFilter(session: SessionMetadata, filter: Readonly<ListSessionsRequest>): boolean {
  const archived = session.archivedAt !== null && session.archivedAt !== undefined;
  return archived === (filter.archived ?? false)
    && (!filter.workspace || session.workspace === filter.workspace)
    && (!filter.tag || session.tags.includes(filter.tag))
    && (!filter.q || (session.title ?? '').toLowerCase().includes(filter.q.toLowerCase()));
}

/** Negative when `a` comes before `b` in the gateway's order (latest `updatedAt` first, then id descending). */
function listOrder(a: SessionMetadata, b: SessionMetadata): number {
  return compareInstants(b.updatedAt, a.updatedAt) || (a.sessionId < b.sessionId ? 1 : a.sessionId > b.sessionId ? -1 : 0);
}

/** Compares two ISO 8601 instants to the microsecond and beyond (`Date.parse` stops at the millisecond). */
function compareInstants(a: string, b: string): number {
  const [secondsA, fractionA] = splitInstant(a);
  const [secondsB, fractionB] = splitInstant(b);
  return secondsA !== secondsB ? secondsA - secondsB : fractionA < fractionB ? -1 : fractionA > fractionB ? 1 : 0;
}

function splitInstant(iso: string): [number, string] {
  const match = /^([^.]*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$/.exec(iso);
  return match ? [Date.parse(match[1]! + (match[3] ?? 'Z')), (match[2] ?? '').padEnd(12, '0')] : [Date.parse(iso), ''];
}

/** A stable key for a filter, whatever the order of its members. */
function filterKey(filter: ListSessionsRequest, options: SessionListOptions): string {
  const entries = Object.entries(filter).filter(([, v]) => v !== undefined && v !== null).sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([entries, options.refreshIntervalMs ?? 0]);
}

/**
 * The stores of one client: one per session and one per list filter, shared by everything that uses them while
 * they are in use (subscribed, or a prompt on its way), forgotten after.
 */
export class GatewayStores {
  readonly client: GatewayClient;
  private readonly sessions = new Map<string, SessionChatStore>();
  private readonly lists = new Map<string, SessionListStore>();

  constructor(client: GatewayClient) {
    this.client = client;
  }

  session(sessionId: string): SessionChatStore {
    let store = this.sessions.get(sessionId);
    if (!store) {
      const created: SessionChatStore = new SessionChatStore(this.client, sessionId, (active) =>
        GatewayStores.track(this.sessions, sessionId, created, active));
      this.sessions.set(sessionId, created);
      store = created;
    }

    return store;
  }

  sessionList(filter: ListSessionsRequest = {}, options: SessionListOptions = {}): SessionListStore {
    const key = filterKey(filter, options);
    let store = this.lists.get(key);
    if (!store) {
      const created: SessionListStore = new SessionListStore(this.client, filter, options, (active) =>
        GatewayStores.track(this.lists, key, created, active));
      this.lists.set(key, created);
      store = created;
    }

    return store;
  }

  /** A store in use is the one its key gives (again, after it was forgotten); one no longer in use is forgotten. */
  private static track<T extends { readonly active: boolean }>(map: Map<string, T>, key: string, store: T, active: boolean): void {
    if (active) {
      if (!map.has(key)) map.set(key, store);
    } else if (map.get(key) === store && !store.active) {
      map.delete(key);
    }
  }

  /**
   * Creates a session (owned by the caller) and reloads every list in use: the lists of other tabs hear of it
   * (`SessionListChanged`); this one does not depend on that message arriving.
   */
  async createSession(request?: CreateSessionRequest): Promise<SessionInfo> {
    const info = await this.client.createSession(request);
    await Promise.all([...this.lists.values()].filter((l) => l.active).map((l) => l.refresh()));
    return info;
  }
}
