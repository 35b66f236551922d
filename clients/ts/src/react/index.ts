'use client';
/**
 * React bindings (`@opencode-gateway/client/react`): a provider holding one `GatewayClient`, and hooks on
 * `useSyncExternalStore` over the framework-free stores of `stores.ts`. React 18 or 19.
 *
 *   <GatewayProvider options={{ url, accessTokenFactory, skipNegotiation: true }}>…</GatewayProvider>
 *   const { status, messages, prompt, loadEarlier } = useSession(sessionId);
 *   const { permissions, questions, children, replyQuestion } = usePendingRequests(sessionId);
 *   const { sessions, createSession } = useSessions({ tag: 'demo' });
 */
import { createContext, createElement, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import { createGatewayClient, type GatewayClient, type GatewayClientOptions, type PromptOptions } from '../client.js';
import type {
  ChildSession,
  CreateSessionRequest,
  ListSessionsRequest,
  PermissionReply,
  PermissionRequest,
  PromptPart,
  PromptResult,
  QuestionRequest,
  SessionInfo,
} from '../contracts.js';
import { GatewayError } from '../errors.js';
import {
  GatewayStores,
  type SessionChatState,
  type SessionListOptions,
  type SessionListState,
} from '../stores.js';

export type {
  ChatError,
  ChatMessage,
  ChatStatus,
  ListStatus,
  SessionChatState,
  SessionListOptions,
  SessionListState,
} from '../stores.js';
export { partText, userText } from '../stores.js';

/** null: a provider whose client is not created yet (server rendering, or before the first effect ran). */
const GatewayContext = createContext<GatewayStores | null | undefined>(undefined);

export interface GatewayProviderProps {
  /** A client you created (and stop yourself). */
  client?: GatewayClient;
  /**
   * Or the options of a client the provider creates in the browser when it mounts and stops when it unmounts. It is
   * created again when `url`, `skipNegotiation` or `events` change; `accessTokenFactory` is read at each (re)connect, so
   * a new function does not reconnect; `hubProtocol` is the one of the first render that creates the client.
   */
  options?: GatewayClientOptions;
  children?: ReactNode;
}

/** Makes a gateway client available to the hooks below it. */
export function GatewayProvider({ client, options, children }: GatewayProviderProps): ReactNode {
  if (!client && !options) {
    throw new Error('GatewayProvider needs a `client` or `options`.');
  }

  const optionsRef = useRef(options);
  useEffect(() => {
    optionsRef.current = options; // the latest accessTokenFactory, read at each (re)connect
  });
  const [owned, setOwned] = useState<GatewayClient | null>(null);
  const url = options?.url;
  const skipNegotiation = options?.skipNegotiation ?? false;
  const events = options?.events;
  useEffect(() => {
    if (client || url === undefined) {
      return;
    }

    const { accessTokenFactory, ...rest } = optionsRef.current ?? { url };
    const created = createGatewayClient({
      ...rest,
      url,
      skipNegotiation,
      ...(events ? { events } : {}),
      ...(accessTokenFactory ? { accessTokenFactory: () => optionsRef.current!.accessTokenFactory!() } : {}),
    });
    setOwned(created);
    return () => {
      setOwned((current) => (current === created ? null : current));
      void created.stop();
    };
  }, [client, url, skipNegotiation, events]);

  const active = client ?? owned;
  const stores = useMemo(() => (active ? new GatewayStores(active) : null), [active]);
  return createElement(GatewayContext.Provider, { value: stores }, children);
}

function useStores(hook: string): GatewayStores | null {
  const stores = useContext(GatewayContext);
  if (stores === undefined) {
    throw new Error(`${hook} must be used inside a <GatewayProvider>.`);
  }

  return stores;
}

/** The provider's client; null while it is being created (first render, server rendering). */
export function useGatewayClient(): GatewayClient | null {
  return useStores('useGatewayClient')?.client ?? null;
}

export interface UseSessionResult extends SessionChatState {
  /**
   * Sends a prompt, a text or parts (text and attachments: `filePromptPart(file)`): its user message shows at once
   * (`optimistic: true`) until opencode's own replaces it. Never rejects: on failure the optimistic message is removed,
   * `error` says why and the promise resolves to undefined.
   */
  prompt(content: string | readonly PromptPart[], options?: PromptOptions): Promise<PromptResult | undefined>;
  /** Stops the answer in progress. */
  abort(): Promise<void>;
  /** Answers a permission request of the session or of a subagent's (`once`, `always`, `reject`). */
  replyPermission(requestId: string, reply: PermissionReply, message?: string): Promise<void>;
  /** Answers a question of the session or of a subagent's: one array of chosen labels per question. */
  replyQuestion(requestId: string, answers: readonly (readonly string[])[]): Promise<void>;
  /** Dismisses a question (its tool call ends with an error, the run goes on). */
  rejectQuestion(requestId: string): Promise<void>;
  /** Pages older messages in, while `hasEarlier`; true when a page was added. */
  loadEarlier(limit?: number): Promise<boolean>;
}

const noSubscription = () => () => undefined;
const notConnected = (): Promise<never> => Promise.reject(new GatewayError('disconnected', 'Not connected to the gateway yet.'));

function connectingSession(sessionId: string): SessionChatState {
  return {
    sessionId, status: 'connecting', connection: 'connecting', view: null, messages: [], permissions: [], questions: [],
    children: [], hasEarlier: false, loadingEarlier: false, error: null,
  };
}

/**
 * A live session: joins it on mount (shared by every component watching it), leaves it on unmount. Rejoins by
 * itself after reconnects and reloads; `status` goes `connecting` → `ready`, and `submitted` → `streaming` → `ready`
 * for each answer.
 */
export function useSession(sessionId: string): UseSessionResult {
  const stores = useStores('useSession');
  const store = useMemo(() => stores?.session(sessionId) ?? null, [stores, sessionId]);
  const placeholder = useMemo(() => connectingSession(sessionId), [sessionId]);
  const state = useSyncExternalStore(
    store?.subscribe ?? noSubscription,
    store?.getSnapshot ?? (() => placeholder),
    () => placeholder,
  );
  return useMemo(
    () => ({
      ...state,
      prompt: store?.prompt ?? (() => Promise.resolve(undefined)),
      abort: store?.abort ?? notConnected,
      replyPermission: store?.replyPermission ?? notConnected,
      replyQuestion: store?.replyQuestion ?? notConnected,
      rejectQuestion: store?.rejectQuestion ?? notConnected,
      loadEarlier: store?.loadEarlier ?? (() => Promise.resolve(false)),
    }),
    [state, store],
  );
}

export interface UsePendingRequestsResult {
  /** Pending permission requests of the session and of its descendants (a request's `sessionID` says whose). */
  readonly permissions: readonly PermissionRequest[];
  /** Pending questions of the session and of its descendants. */
  readonly questions: readonly QuestionRequest[];
  /** The descendant sessions (subagents'), to name the one that asked: `children.find((c) => c.id === r.sessionID)`. */
  readonly children: readonly ChildSession[];
  replyPermission(requestId: string, reply: PermissionReply, message?: string): Promise<void>;
  replyQuestion(requestId: string, answers: readonly (readonly string[])[]): Promise<void>;
  rejectQuestion(requestId: string): Promise<void>;
}

/**
 * What a run of the session waits for: every pending permission request and question, the session's own and its
 * subagents', each answered through the watched session. Shares `useSession`'s join; the result keeps its identity
 * while none of them changes.
 */
export function usePendingRequests(sessionId: string): UsePendingRequestsResult {
  const { permissions, questions, children, replyPermission, replyQuestion, rejectQuestion } = useSession(sessionId);
  return useMemo(
    () => ({ permissions, questions, children, replyPermission, replyQuestion, rejectQuestion }),
    [permissions, questions, children, replyPermission, replyQuestion, rejectQuestion],
  );
}

export interface UseSessionsResult extends SessionListState {
  /** Reloads the first page. */
  refresh(): Promise<void>;
  /** Appends the next page (when `hasMore`). */
  loadMore(): Promise<void>;
  /** Creates a session owned by the caller, then reloads every session list in use. */
  createSession(request?: CreateSessionRequest): Promise<SessionInfo>;
}

const connectingList: SessionListState = { status: 'connecting', sessions: [], hasMore: false, loading: false, error: null };

/**
 * The caller's sessions matching `filter` (workspace, tag, archived, q, limit), most recently updated first.
 * Loaded on mount and after every reconnect; `options.refreshIntervalMs` also reloads it periodically.
 */
export function useSessions(filter: ListSessionsRequest = {}, options: SessionListOptions = {}): UseSessionsResult {
  const stores = useStores('useSessions');
  const key = JSON.stringify([filter, options]);
  // The filter is compared by value: a literal object per render is fine.
  const store = useMemo(() => stores?.sessionList(filter, options) ?? null, [stores, key]);
  const state = useSyncExternalStore(
    store?.subscribe ?? noSubscription,
    store?.getSnapshot ?? (() => connectingList),
    () => connectingList,
  );
  return useMemo(
    () => ({
      ...state,
      refresh: store?.refresh ?? (() => Promise.resolve()),
      loadMore: store?.loadMore ?? (() => Promise.resolve()),
      createSession: (request?: CreateSessionRequest) => (stores ? stores.createSession(request) : notConnected()),
    }),
    [state, store, stores],
  );
}
