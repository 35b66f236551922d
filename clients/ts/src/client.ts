/**
 * The gateway client: one hub connection that never gives up reconnecting, live views of watched sessions (rejoined
 * by themselves after every reconnect), and typed hub calls.
 */
import type {
  CompactDelta,
  CreateSessionRequest,
  EventForm,
  JoinRequest,
  JoinResult,
  ListSessionsRequest,
  LoadEarlierRequest,
  MessagePage,
  SessionList,
  SessionListChange,
  PermissionReply,
  PermissionReplyRequest,
  PromptPart,
  PromptRequest,
  PromptResult,
  QuestionRejectRequest,
  QuestionReplyRequest,
  SessionEvent,
  SessionInfo,
  SessionMetadata,
  SessionSnapshot,
  StreamPosition,
  UpdateSessionRequest,
} from './contracts.js';
import { ClientErrorCodes, defaultMaxAttachmentBytes } from './contracts.js';
import { GatewayError, isTransientError, toGatewayError } from './errors.js';
import { toJoinResult, toMessagePage, toSessionEvent, toSessionSnapshot } from './normalize.js';
import { SessionState, type RejoinAction, type SessionView } from './session-state.js';
import type { IHubProtocol } from '@microsoft/signalr';
import { createSignalRTransport, defaultReconnectDelaysMs, reconnectDelay, type HubTransport } from './transport.js';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export interface GatewayClientOptions {
  /** The session hub's URL, e.g. `https://gateway.example/hubs/session` or `/hubs/session`. */
  url: string;
  /** Called for every (re)connect; its token goes in the `Authorization` header (WebSockets: `access_token` query). */
  accessTokenFactory?: () => string | Promise<string>;
  /**
   * Connect straight over WebSockets, without SignalR's negotiate request. Needed behind a load balancer without
   * sticky sessions (a negotiate answered by one node and a socket opened on another fail), and saves a round trip.
   */
  skipNegotiation?: boolean;
  /**
   * The gateway's `Gateway:Hub:MaximumReceiveMessageSize` (default `defaultMaxMessageBytes`, 7,842,476 bytes: one
   * attachment at `Gateway:Prompts:MaxAttachmentBytes`' 5 MiB plus the longest text prompt): a call whose arguments
   * are bigger is refused here with `payload_too_large` instead of being sent (the hub would close the connection).
   */
  maxMessageBytes?: number;
  /**
   * How the gateway sends events: `compact` (default; text deltas as a few numbers and the text, about a fifth of the
   * bytes) or `full` (every event a whole `SessionEvent`). The client applies either the same way.
   */
  events?: EventForm;
  /**
   * The hub protocol, JSON by default. For MessagePack (about half the bytes again), install
   * `@microsoft/signalr-protocol-msgpack` and pass `new MessagePackHubProtocol()`.
   */
  hubProtocol?: IHubProtocol;
  /** Delays between reconnect attempts; the last one repeats forever. Default 0, 1 s, 2 s, 5 s, 10 s, 20 s, 30 s. */
  reconnectDelaysMs?: readonly number[];
  /** Failed reconnect attempts after which the state is `offline` rather than `reconnecting`. Default 3. */
  offlineAfterAttempts?: number;
  /** How long a call made while disconnected waits for the connection before failing `disconnected`. Default 20 s. */
  connectTimeoutMs?: number;
  /** Connect at once (default true); otherwise call `start()`. */
  autoStart?: boolean;
  /** A custom transport (tests); by default a SignalR connection to `url`. */
  transport?: HubTransport;
  /** Schedules the batched listener notification; default requestAnimationFrame, else a 16 ms timer. */
  scheduleFlush?: (flush: () => void) => void;
}

export type SessionListener = (view: SessionView) => void;

export interface WatchHandle {
  /** The session's current view (a new object whenever it changed). */
  readonly view: SessionView;
  /** `client.loadEarlier` of this session. */
  loadEarlier(limit?: number): Promise<boolean>;
  /** Stops this listener; the session is left when no listener remains. */
  unsubscribe(): void;
}

export interface WatchOptions {
  /** The upstream of the session, when known (saves the gateway a lookup). */
  upstream?: string;
}

export interface PromptOptions {
  agent?: string;
  /** `provider/model`. */
  model?: string;
}

export interface GatewayClient {
  readonly state: ConnectionState;
  /** Calls `listener` whenever `state` changes; returns a function that removes it. */
  onStateChange(listener: (state: ConnectionState) => void): () => void;
  /** Joins the session (once, however many watchers) and keeps its view current; listeners run at most once a frame. */
  watch(sessionId: string, listener?: SessionListener, options?: WatchOptions): WatchHandle;
  /** The current view of a watched session. */
  view(sessionId: string): SessionView | undefined;
  createSession(request?: CreateSessionRequest): Promise<SessionInfo>;
  /** Sends a text, or parts: text and attachments (`filePromptPart` makes one from a `File` or `Blob`). */
  prompt(sessionId: string, content: string | readonly PromptPart[], options?: PromptOptions): Promise<PromptResult>;
  abort(sessionId: string): Promise<void>;
  /** Answers a permission request of the session or of a descendant (`sessionId`: the watched session will do). */
  replyPermission(sessionId: string, requestId: string, reply: PermissionReply, message?: string): Promise<void>;
  /** Answers a question of the session or of a descendant: one array of chosen labels (or typed text) per question. */
  replyQuestion(sessionId: string, requestId: string, answers: readonly (readonly string[])[]): Promise<void>;
  /** Dismisses a question: its tool call ends with an error and the run goes on. */
  rejectQuestion(sessionId: string, requestId: string): Promise<void>;
  /**
   * Pages the messages before a watched session's view in (`LoadEarlier` from its `earlier.cursor`; `limit` 1–100,
   * default the gateway's page size). Resolves true when it added a page, false when there was nothing to load or a
   * new snapshot replaced the view meanwhile (call it again). One call per cursor at a time: a second one shares it.
   */
  loadEarlier(sessionId: string, limit?: number): Promise<boolean>;
  listSessions(request?: ListSessionsRequest): Promise<SessionList>;
  /**
   * Calls `listener` for every `SessionListChanged`: a session the caller may see was created, changed or archived
   * (by any tab, on any node, through the hub or `/api/sessions`). Returns a function that removes it. Changes made
   * while disconnected are not replayed: list again after a reconnect (`SessionListStore` does both).
   */
  onSessionListChanged(listener: (change: SessionListChange) => void): () => void;
  updateMetadata(request: UpdateSessionRequest): Promise<SessionMetadata>;
  /** Connects (done by itself unless `autoStart: false`). */
  start(): Promise<void>;
  /** Disconnects for good. */
  stop(): Promise<void>;
}

interface Watched {
  readonly state: SessionState;
  readonly listeners: Set<SessionListener>;
  readonly fresh: Set<SessionListener>;
  upstream: string | undefined;
  /** Bumped for every Join sent and on leave: a result for an older one is dropped. */
  joinGen: number;
  /** The `since` of the Join in flight or wanted. */
  wantedSince: StreamPosition | null;
  /** Join failures in a row (transient ones) and rejoins in a row, for backoff. */
  failures: number;
  rejoinStreak: number;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  notifiedVersion: number;
  left: boolean;
  /** The session handle this session is registered under in `byHandle` (compact deltas name it). */
  handle: number | null;
  /** The `LoadEarlier` in flight, by the cursor it was sent with. */
  earlierLoad: { readonly cursor: string; readonly promise: Promise<boolean> } | null;
}

/**
 * The gateway's default `Gateway:Hub:MaximumReceiveMessageSize`: it follows `Gateway:Prompts:MaxAttachmentBytes` so
 * that one attachment at the limit (base64: 4/3 of it) plus the longest text prompt (262,144 characters, 3 UTF-8
 * bytes each at most) and 64 KiB of JSON fit.
 */
export const defaultMaxMessageBytes = Math.floor((defaultMaxAttachmentBytes + 2) / 3) * 4 + 262_144 * 3 + 64 * 1024;

function defaultScheduleFlush(flush: () => void): void {
  if (typeof globalThis.requestAnimationFrame === 'function') {
    globalThis.requestAnimationFrame(() => flush());
  } else {
    setTimeout(flush, 16);
  }
}

export function createGatewayClient(options: GatewayClientOptions): GatewayClient {
  return new GatewayClientImpl(options);
}

class GatewayClientImpl implements GatewayClient {
  private readonly transport: HubTransport;
  private readonly delays: readonly number[];
  private readonly maxMessageBytes: number;
  private readonly offlineAfter: number;
  private readonly connectTimeoutMs: number;
  private readonly scheduleFlush: (flush: () => void) => void;
  private readonly sessions = new Map<string, Watched>();
  /** Watched sessions by the `s` of their compact deltas on the current connection. */
  private readonly byHandle = new Map<number, Watched>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly listListeners = new Set<(change: SessionListChange) => void>();
  private readonly connectedWaiters = new Set<() => void>();
  private currentState: ConnectionState = 'connecting';
  private connected = false;
  private everConnected = false;
  private connectLoopRunning = false;
  private stopped = false;
  private flushScheduled = false;
  private startPromise: Promise<void> | undefined;

  constructor(options: GatewayClientOptions) {
    this.delays = options.reconnectDelaysMs ?? defaultReconnectDelaysMs;
    this.maxMessageBytes = options.maxMessageBytes ?? defaultMaxMessageBytes;
    this.offlineAfter = options.offlineAfterAttempts ?? 3;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
    this.scheduleFlush = options.scheduleFlush ?? defaultScheduleFlush;
    this.transport =
      options.transport ??
      createSignalRTransport({
        url: options.url,
        ...(options.accessTokenFactory ? { accessTokenFactory: options.accessTokenFactory } : {}),
        ...(options.skipNegotiation ? { skipNegotiation: true } : {}),
        ...(options.events ? { events: options.events } : {}),
        ...(options.hubProtocol ? { hubProtocol: options.hubProtocol } : {}),
        reconnectDelaysMs: this.delays,
      });

    this.transport.onSessionEvent((event) => this.onSessionEvent(event));
    this.transport.onSessionSnapshot((snapshot) => this.onSessionSnapshot(snapshot));
    this.transport.onCompactDelta((delta) => this.onCompactDelta(delta));
    this.transport.onSessionListChanged((change) => {
      for (const listener of [...this.listListeners]) {
        listener(change);
      }
    });
    this.transport.onReconnecting(() => {
      this.connected = false;
      this.setState('reconnecting');
    });
    this.transport.onRetry((attempt) => {
      if (!this.connected && attempt >= this.offlineAfter) {
        this.setState('offline');
      }
    });
    this.transport.onReconnected(() => this.onConnected());
    this.transport.onClose(() => {
      this.connected = false;
      if (!this.stopped) {
        void this.connectLoop();
      }
    });

    if (options.autoStart ?? true) {
      void this.start();
    }
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  onSessionListChanged(listener: (change: SessionListChange) => void): () => void {
    this.listListeners.add(listener);
    return () => void this.listListeners.delete(listener);
  }

  start(): Promise<void> {
    this.stopped = false;
    return (this.startPromise ??= this.connectLoop().finally(() => (this.startPromise = undefined)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.connected = false;
    for (const w of this.sessions.values()) {
      clearTimeout(w.retryTimer);
    }

    await this.transport.stop();
    this.setState('offline');
  }

  watch(sessionId: string, listener?: SessionListener, options?: WatchOptions): WatchHandle {
    let w = this.sessions.get(sessionId);
    if (!w) {
      w = {
        state: new SessionState(sessionId),
        listeners: new Set(),
        fresh: new Set(),
        upstream: options?.upstream,
        joinGen: 0,
        wantedSince: null,
        failures: 0,
        rejoinStreak: 0,
        retryTimer: undefined,
        notifiedVersion: -1,
        left: false,
        handle: null,
        earlierLoad: null,
      };
      this.sessions.set(sessionId, w);
      this.join(w, w.state.beginJoin());
    }

    const watched = w;
    if (listener) {
      watched.listeners.add(listener);
      if (watched.state.view().ready) {
        watched.fresh.add(listener);
        this.requestFlush();
      }
    }

    let active = true;
    return {
      get view() {
        return watched.state.view();
      },
      loadEarlier: (limit?: number) => this.loadEarlier(sessionId, limit),
      unsubscribe: () => {
        if (!active) {
          return;
        }

        active = false;
        if (listener) {
          watched.listeners.delete(listener);
          watched.fresh.delete(listener);
        }

        if (watched.listeners.size === 0) {
          this.leave(watched);
        }
      },
    };
  }

  view(sessionId: string): SessionView | undefined {
    return this.sessions.get(sessionId)?.state.view();
  }

  createSession(request?: CreateSessionRequest): Promise<SessionInfo> {
    return this.call<SessionInfo>('CreateSession', request ?? {});
  }

  prompt(sessionId: string, content: string | readonly PromptPart[], options?: PromptOptions): Promise<PromptResult> {
    const request: PromptRequest = typeof content === 'string'
      ? { sessionId, text: content, ...options }
      : { sessionId, parts: [...content], ...options };
    return this.call<PromptResult>('Prompt', request);
  }

  async abort(sessionId: string): Promise<void> {
    await this.call<void>('Abort', sessionId);
  }

  async replyPermission(sessionId: string, requestId: string, reply: PermissionReply, message?: string): Promise<void> {
    const request: PermissionReplyRequest = { sessionId, requestId, reply, ...(message !== undefined ? { message } : {}) };
    await this.call<void>('ReplyPermission', request);
  }

  async replyQuestion(sessionId: string, requestId: string, answers: readonly (readonly string[])[]): Promise<void> {
    const request: QuestionReplyRequest = { sessionId, requestId, answers: answers.map((a) => [...a]) };
    await this.call<void>('ReplyQuestion', request);
  }

  async rejectQuestion(sessionId: string, requestId: string): Promise<void> {
    const request: QuestionRejectRequest = { sessionId, requestId };
    await this.call<void>('RejectQuestion', request);
  }

  loadEarlier(sessionId: string, limit?: number): Promise<boolean> {
    const w = this.sessions.get(sessionId);
    const cursor = w?.state.view().earlier?.cursor;
    if (!w || !cursor) {
      return Promise.resolve(false);
    }

    if (w.earlierLoad?.cursor === cursor) {
      return w.earlierLoad.promise;
    }

    const request: LoadEarlierRequest = { sessionId, before: cursor, ...(limit !== undefined ? { limit } : {}) };
    const promise = this.call<MessagePage>('LoadEarlier', request)
      .then((page) => {
        const added = !w.left && w.state.applyEarlier(cursor, toMessagePage(page));
        if (added) {
          this.markChanged();
        }

        return added;
      })
      .finally(() => {
        if (w.earlierLoad?.promise === promise) {
          w.earlierLoad = null;
        }
      });
    w.earlierLoad = { cursor, promise };
    return promise;
  }

  listSessions(request?: ListSessionsRequest): Promise<SessionList> {
    return this.call<SessionList>('ListSessions', request ?? {});
  }

  async updateMetadata(request: UpdateSessionRequest): Promise<SessionMetadata> {
    const metadata = await this.call<SessionMetadata>('UpdateMetadata', request);
    const w = this.sessions.get(request.sessionId);
    if (w && metadata) {
      w.state.setMetadata(metadata);
      this.requestFlush();
    }

    return metadata;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Connection

  private setState(state: ConnectionState): void {
    if (state === this.currentState) {
      return;
    }

    this.currentState = state;
    for (const listener of [...this.stateListeners]) {
      try {
        listener(state);
      } catch (e) {
        console.error(e);
      }
    }
  }

  private async connectLoop(): Promise<void> {
    if (this.connectLoopRunning) {
      return;
    }

    this.connectLoopRunning = true;
    try {
      for (let attempt = 0; !this.stopped; attempt++) {
        if (attempt >= this.offlineAfter) {
          this.setState('offline');
        } else {
          this.setState(this.everConnected ? 'reconnecting' : 'connecting');
        }

        try {
          await this.transport.start();
        } catch {
          if (this.stopped) {
            return;
          }

          if (attempt + 1 >= this.offlineAfter) {
            this.setState('offline');
          }

          await new Promise((resolve) => setTimeout(resolve, reconnectDelay(this.delays, attempt) || 250));
          continue;
        }

        if (!this.stopped) {
          this.onConnected();
        }

        return;
      }
    } finally {
      this.connectLoopRunning = false;
    }
  }

  /** A new connection: it has joined nothing, so every watched session joins again from where it is. */
  private onConnected(): void {
    this.connected = true;
    this.everConnected = true;
    this.setState('connected');
    for (const resolve of [...this.connectedWaiters]) {
      resolve();
    }

    // Session handles belong to a connection: each rejoin's result names the new one.
    this.byHandle.clear();
    for (const w of this.sessions.values()) {
      w.handle = null;
      w.state.forgetSessionHandle();
    }

    for (const w of this.sessions.values()) {
      clearTimeout(w.retryTimer);
      w.retryTimer = undefined;
      // Mid-join (e.g. asked for a snapshot after an epoch change): ask for the same again; else from our position.
      const since = w.state.isJoining ? w.wantedSince : w.state.beginJoin();
      this.join(w, since);
    }
  }

  private waitConnected(): Promise<void> {
    if (this.connected) {
      return Promise.resolve();
    }

    if (this.stopped) {
      return Promise.reject(new GatewayError(ClientErrorCodes.Disconnected, 'The client was stopped.'));
    }

    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.connectedWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.connectedWaiters.delete(done);
        reject(new GatewayError(ClientErrorCodes.Disconnected, 'Not connected to the gateway.'));
      }, this.connectTimeoutMs);
      this.connectedWaiters.add(done);
    });
  }

  private async call<T>(method: string, ...args: unknown[]): Promise<T> {
    // The hub cannot answer a message over its size limit (it closes the connection instead): refuse it here.
    const size = utf8Length(JSON.stringify(args));
    if (size > this.maxMessageBytes) {
      throw new GatewayError('payload_too_large',
        `The call is ${size} bytes; the gateway accepts at most ${this.maxMessageBytes} (Gateway:Hub:MaximumReceiveMessageSize).`);
    }

    await this.waitConnected();
    try {
      return await this.transport.invoke<T>(method, ...args);
    } catch (e) {
      throw toGatewayError(e);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Sessions

  /** Sends Join (the state is already buffering). While disconnected it waits for the reconnect, which joins all. */
  private join(w: Watched, since: StreamPosition | null): void {
    const gen = ++w.joinGen;
    w.wantedSince = since;
    clearTimeout(w.retryTimer);
    w.retryTimer = undefined;
    if (!this.connected) {
      return;
    }

    const request: JoinRequest = { sessionId: w.state.sessionId, ...(w.upstream ? { upstream: w.upstream } : {}), since };
    this.transport.invoke<JoinResult>('Join', request).then(
      (result) => {
        if (w.left || gen !== w.joinGen) {
          return;
        }

        w.failures = 0;
        w.upstream ??= result.upstream;
        this.handleAction(w, w.state.completeJoin(toJoinResult(result)));
        this.markChanged();
      },
      (error: unknown) => {
        if (w.left || gen !== w.joinGen) {
          return;
        }

        const e = toGatewayError(error);
        if (!isTransientError(e)) {
          w.state.failJoin(e);
          this.markChanged();
          return;
        }

        // Keep buffering? No: the next Join (with since) brings back whatever arrives meanwhile.
        w.state.failJoin();
        if (this.connected) {
          const delay = reconnectDelay(this.delays, w.failures++) || 250;
          w.retryTimer = setTimeout(() => {
            w.retryTimer = undefined;
            if (!w.left && this.connected && !w.state.isJoining) {
              this.join(w, w.state.beginJoin());
            }
          }, delay);
        } else {
          w.state.beginJoin(); // buffer until the reconnect joins again
        }
      },
    );
  }

  private handleAction(w: Watched, action: RejoinAction | null): void {
    this.syncHandle(w);
    if (!action) {
      w.rejoinStreak = 0;
      return;
    }

    // A rejoin normally fixes things at once; if it keeps being asked for, slow down rather than loop.
    const streak = w.rejoinStreak++;
    if (streak < 3) {
      this.join(w, action.since);
      return;
    }

    const gen = ++w.joinGen;
    w.wantedSince = action.since;
    w.retryTimer = setTimeout(() => {
      w.retryTimer = undefined;
      if (!w.left && gen === w.joinGen) {
        this.join(w, action.since);
      }
    }, reconnectDelay(this.delays, streak - 2) || 250);
  }

  private leave(w: Watched): void {
    w.left = true;
    if (w.handle !== null && this.byHandle.get(w.handle) === w) {
      this.byHandle.delete(w.handle);
    }

    w.joinGen++;
    clearTimeout(w.retryTimer);
    if (this.sessions.get(w.state.sessionId) === w) {
      this.sessions.delete(w.state.sessionId);
    }

    if (this.connected) {
      this.transport.invoke('Leave', w.state.sessionId).catch(() => undefined);
    }
  }

  private onSessionEvent(event: SessionEvent): void {
    const w = this.sessions.get(event.sessionId);
    if (!w) {
      return;
    }

    this.handleAction(w, w.state.receiveEvent(toSessionEvent(event)));
    this.markChanged();
  }

  /**
   * A compact delta: to the session its `s` names; before a session's join result has named its handle, to every
   * session whose Join is in flight (each buffers it and keeps only its own once its result arrives).
   */
  private onCompactDelta(delta: CompactDelta): void {
    const owner = this.byHandle.get(delta.s);
    const targets = owner ? [owner] : [...this.sessions.values()].filter((w) => w.state.isJoining);
    for (const w of targets) {
      this.handleAction(w, w.state.receiveCompact(delta));
    }

    if (targets.length > 0) {
      this.markChanged();
    }
  }

  /** Keeps `byHandle` in step with the session's handle (a join result or a pushed snapshot may change it). */
  private syncHandle(w: Watched): void {
    const handle = w.left ? null : w.state.sessionHandle;
    if (handle === w.handle) {
      return;
    }

    if (w.handle !== null && this.byHandle.get(w.handle) === w) {
      this.byHandle.delete(w.handle);
    }

    w.handle = handle;
    if (handle !== null) {
      this.byHandle.set(handle, w);
    }
  }

  private onSessionSnapshot(snapshot: SessionSnapshot): void {
    const w = this.sessions.get(snapshot.sessionId);
    if (!w) {
      return;
    }

    this.handleAction(w, w.state.receiveSnapshot(toSessionSnapshot(snapshot)));
    this.markChanged();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Batched notification

  private markChanged(): void {
    this.requestFlush();
  }

  private requestFlush(): void {
    if (this.flushScheduled) {
      return;
    }

    this.flushScheduled = true;
    this.scheduleFlush(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const w of [...this.sessions.values()]) {
      const version = w.state.changeCount;
      const changed = version !== w.notifiedVersion;
      if (!changed && w.fresh.size === 0) {
        continue;
      }

      w.notifiedVersion = version;
      const view = w.state.view();
      const targets = changed ? [...w.listeners] : [...w.fresh];
      w.fresh.clear();
      for (const listener of targets) {
        try {
          listener(view);
        } catch (e) {
          console.error(e);
        }
      }
    }
  }
}

/** Bytes of `text` in UTF-8 (what goes on the wire in the JSON protocol, before framing). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) {
      bytes += 1;
    } else if (c < 0x800) {
      bytes += 2;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else {
      bytes += 3;
    }
  }

  return bytes;
}
