// @vitest-environment happy-dom
/**
 * The React bindings, imported as an app imports them: the built package through its `exports` map
 * (`@opencode-gateway/client`, `@opencode-gateway/client/react`; `npm test` builds dist/ first). The server side is
 * played by hand through a fake transport.
 */
import { act, renderHook, waitFor } from '@testing-library/react';
import { createElement, StrictMode, version as reactVersion, type ReactNode } from 'react';
import { version as reactDomVersion } from 'react-dom';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createGatewayClient,
  type ChatStatus,
  type GatewayClient,
  type JoinRequest,
  type ListSessionsRequest,
  type SessionMetadata,
} from '@opencode-gateway/client';
import { GatewayProvider, useGatewayClient, usePendingRequests, useSession, useSessions } from '@opencode-gateway/client/react';
import { ev, FakeTransport, partUpdated, settle, snapshot, snapshotResult, textPart } from './helpers.js';

const E = 1_700_000_000_000_001;
const SID = 'ses_test1';

function userMessage(id: string) {
  return ev(E, 0, 'message.updated', { messageId: id, info: { id, sessionID: SID, role: 'user', time: { created: 1 } } });
}

function assistantMessage(id: string) {
  return ev(E, 0, 'message.updated', { messageId: id, info: { id, sessionID: SID, role: 'assistant', time: { created: 2 } } });
}

describe('React bindings', () => {
  it('run on the React this vitest project is for (react18 / react19), with its own react-dom', () => {
    expect(reactVersion.split('.')[0]).toBe(process.env.EXPECTED_REACT_MAJOR);
    expect(reactDomVersion).toBe(reactVersion);
  });

  let transport: FakeTransport;
  let client: GatewayClient;
  let seq: number;

  /** Pushes events of SID with the next seqs, and lets React render. */
  async function push(...events: ReturnType<typeof ev>[]): Promise<void> {
    await act(async () => {
      for (const e of events) transport.push({ ...e, seq: ++seq });
      await settle();
    });
  }

  function wrapper({ children }: { children?: ReactNode }) {
    return createElement(StrictMode, null, createElement(GatewayProvider, { client }, children));
  }

  /** Answers the pending Join of SID with a snapshot at the current seq. */
  async function answerJoin(messages = snapshot(E, 0).messages): Promise<JoinRequest> {
    let request: JoinRequest | undefined;
    await waitFor(() => expect(transport.invocations.some((i) => i.method === 'Join')).toBe(true));
    await act(async () => {
      // All of them: StrictMode may have joined and left once already (the client drops a stale result).
      for (const join of transport.take('Join')) {
        request = join.args[0] as JoinRequest;
        join.resolve(snapshotResult(snapshot(E, seq, messages)));
      }
      await settle();
    });
    return request!;
  }

  /** The pending invocation of `method` (hub calls go out a microtask after the hook call). */
  async function takeCall(method: string) {
    await waitFor(() => expect(transport.invocations.some((i) => i.method === method)).toBe(true));
    return transport.take(method)[0]!;
  }

  beforeEach(() => {
    transport = new FakeTransport();
    seq = 0;
    client = createGatewayClient({ url: 'http://gateway.invalid/hubs/session', transport, scheduleFlush: (f) => queueMicrotask(f) });
  });

  afterEach(async () => {
    await client.stop();
  });

  it('useSession goes connecting → ready → submitted → streaming → ready, with an optimistic user message', async () => {
    const statuses: ChatStatus[] = [];
    const { result } = renderHook(() => {
      const session = useSession(SID);
      if (statuses[statuses.length - 1] !== session.status) statuses.push(session.status);
      return session;
    }, { wrapper });
    expect(result.current.status).toBe('connecting');
    expect(await answerJoin()).toEqual({ sessionId: SID, since: null });
    await waitFor(() => expect(result.current.status).toBe('ready'));

    // The prompt shows at once, before the gateway answered the call.
    let prompted: Promise<unknown> | undefined;
    act(() => {
      prompted = result.current.prompt('hello there');
    });
    expect(result.current.status).toBe('submitted');
    expect(result.current.messages.map((m) => [m.info.role, m.optimistic, m.parts.map((p) => p.type === 'text' && p.text)])).toEqual([
      ['user', true, ['hello there']],
    ]);
    const call = await takeCall('Prompt');
    expect(call.args[0]).toEqual({ sessionId: SID, text: 'hello there' });

    // opencode's user message arrives in two steps: its info (not shown yet: no text), then its text part.
    await push(ev(E, 0, 'status', { status: { type: 'busy' } }), userMessage('msg_0001'));
    expect(result.current.messages).toHaveLength(1);
    expect(result.current.messages[0]!.optimistic).toBe(true);
    await push(partUpdated(E, 0, textPart('prt_0001', 'hello there', 'msg_0001')));
    expect(result.current.messages.map((m) => [m.info.id, m.optimistic])).toEqual([['msg_0001', false]]);
    await act(async () => {
      call.resolve({ sessionId: SID, queued: false });
      await prompted;
    });
    expect(result.current.status).toBe('submitted'); // busy, no answer yet

    await push(assistantMessage('msg_0002'), partUpdated(E, 0, textPart('prt_0002', 'Hi', 'msg_0002')));
    expect(result.current.status).toBe('streaming');
    await push(ev(E, 0, 'part.delta', { messageId: 'msg_0002', partId: 'prt_0002', field: 'text', offset: 2, delta: '!' }));
    const answer = result.current.messages[1]!.parts[0]!;
    expect(answer.type === 'text' && answer.text).toBe('Hi!');
    await push(ev(E, 0, 'status', { status: { type: 'idle' } }));
    expect(result.current.status).toBe('ready');
    expect(statuses).toEqual(['connecting', 'ready', 'submitted', 'streaming', 'ready']);
    expect(result.current.error).toBeNull();
  });

  it('stays submitted while opencode shows the prompt before it turns busy, and after an abort is ready', async () => {
    const { result } = renderHook(() => useSession(SID), { wrapper });
    await answerJoin();
    await waitFor(() => expect(result.current.status).toBe('ready'));
    act(() => void result.current.prompt('first'));
    const call = await takeCall('Prompt');
    await act(async () => {
      call.resolve({ sessionId: SID, queued: false });
      await settle();
    });
    await push(userMessage('msg_0001'), partUpdated(E, 0, textPart('prt_0001', 'first', 'msg_0001')));
    expect(result.current.messages.map((m) => m.optimistic)).toEqual([false]);
    expect(result.current.status).toBe('submitted'); // echoed, still idle: the answer has not started
    await push(ev(E, 0, 'status', { status: { type: 'busy' } }));
    expect(result.current.status).toBe('submitted');
    await push(assistantMessage('msg_0002'), partUpdated(E, 0, textPart('prt_0002', 'ok', 'msg_0002')));
    expect(result.current.status).toBe('streaming');
    await push(ev(E, 0, 'status', { status: { type: 'idle' } }));
    expect(result.current.status).toBe('ready');

    // A second prompt, aborted before opencode started answering it.
    act(() => void result.current.prompt('second'));
    await act(async () => {
      (await takeCall('Prompt')).resolve({ sessionId: SID, queued: false });
      await settle();
    });
    await push(userMessage('msg_0003'), partUpdated(E, 0, textPart('prt_0003', 'second', 'msg_0003')));
    expect(result.current.status).toBe('submitted');
    let aborted: Promise<void> | undefined;
    act(() => {
      aborted = result.current.abort();
    });
    await act(async () => {
      (await takeCall('Abort')).resolve(undefined);
      await aborted;
    });
    expect(result.current.status).toBe('ready');
  });

  it('removes the optimistic message and reports the error when the prompt fails', async () => {
    const { result } = renderHook(() => useSession(SID), { wrapper });
    await answerJoin();
    await waitFor(() => expect(result.current.status).toBe('ready'));

    let outcome: Promise<unknown> | undefined;
    act(() => {
      outcome = result.current.prompt('too big');
    });
    expect(result.current.messages.map((m) => m.optimistic)).toEqual([true]);
    const call = await takeCall('Prompt');
    await act(async () => {
      call.reject(new Error(
        "An unexpected error occurred invoking 'Prompt' on the server. HubException: payload_too_large: text: at most 100000 characters."));
      await outcome;
    });
    await expect(outcome).resolves.toBeUndefined();
    expect(result.current.messages).toEqual([]);
    expect(result.current.status).toBe('error');
    expect(result.current.error).toEqual({ source: 'prompt', code: 'payload_too_large', message: 'text: at most 100000 characters.' });

    // The next prompt clears it.
    act(() => void result.current.prompt('small'));
    expect(result.current.error).toBeNull();
    expect(result.current.status).toBe('submitted');
  });

  it("takes opencode's echo even when its text differs, once the gateway accepted the prompt", async () => {
    const { result } = renderHook(() => useSession(SID), { wrapper });
    await answerJoin();
    await waitFor(() => expect(result.current.status).toBe('ready'));
    act(() => void result.current.prompt('  spaced  '));
    const call = await takeCall('Prompt');
    await act(async () => {
      call.resolve({ sessionId: SID, queued: false });
      await settle();
    });
    await push(userMessage('msg_0001'), partUpdated(E, 0, textPart('prt_0001', 'spaced', 'msg_0001')));
    expect(result.current.messages.map((m) => [m.info.id, m.optimistic])).toEqual([['msg_0001', false]]);
  });

  it('reports opencode errors and join errors as status error', async () => {
    const { result } = renderHook(() => useSession(SID), { wrapper });
    await answerJoin();
    await push(ev(E, 0, 'status', { status: { type: 'busy' } }));
    await push(ev(E, 0, 'error', { error: { name: 'APIError', data: { message: 'mock failure' } } }), ev(E, 0, 'status', { status: { type: 'idle' } }));
    expect(result.current.status).toBe('error');
    expect(result.current.error).toMatchObject({ source: 'session', code: 'APIError', message: 'mock failure' });

    const missing = renderHook(() => useSession('ses_missing'), { wrapper });
    await waitFor(() => expect(transport.invocations.some((i) => i.method === 'Join')).toBe(true));
    await act(async () => {
      // All of them, as in answerJoin: React 18's StrictMode joins, leaves and joins again here.
      for (const join of transport.take('Join')) {
        join.reject(new Error("HubException: session_not_found: Session 'ses_missing' was not found."));
      }
      await settle();
    });
    expect(missing.result.current.status).toBe('error');
    expect(missing.result.current.error).toEqual({ source: 'join', code: 'session_not_found', message: "Session 'ses_missing' was not found." });
  });

  it('is connecting while the connection is down, and leaves the session on unmount', async () => {
    const { result, unmount } = renderHook(() => useSession(SID), { wrapper });
    await answerJoin();
    await waitFor(() => expect(result.current.status).toBe('ready'));
    act(() => transport.drop());
    expect(result.current.status).toBe('connecting');
    expect(result.current.connection).toBe('reconnecting');
    act(() => transport.reconnected());
    await act(async () => {
      const [join] = transport.take('Join');
      expect(join!.args[0]).toEqual({ sessionId: SID, upstream: 'default', since: { epoch: E, seq: 0 } });
      join!.resolve({ upstream: 'default', sessionId: SID, epoch: E, seq: 0, recovered: true, events: [] });
      await settle();
    });
    expect(result.current.status).toBe('ready');
    unmount();
    await settle();
    expect(transport.take('Leave').map((i) => i.args)).toEqual([[SID]]);
  });

  it('two components on one session share its state and its optimistic message', async () => {
    const { result } = renderHook(() => [useSession(SID), useSession(SID)] as const, { wrapper });
    await answerJoin();
    act(() => void result.current[0].prompt('shared'));
    expect(result.current[1].messages.map((m) => m.optimistic)).toEqual([true]);
    expect(transport.invocations.filter((i) => i.method === 'Join')).toHaveLength(0); // one Join for both
  });

  it('usePendingRequests shows a subagent\'s permission and question and answers them through the watched session', async () => {
    const CHILD = 'ses_child1';
    const child = { id: CHILD, parentId: SID, title: 'sub task (@general subagent)', status: { type: 'busy' as const } };
    const { result } = renderHook(() => usePendingRequests(SID), { wrapper });
    await waitFor(() => expect(transport.invocations.some((i) => i.method === 'Join')).toBe(true));
    await act(async () => {
      for (const join of transport.take('Join')) join.resolve(snapshotResult(snapshot(E, seq, [], SID, { children: [child] })));
      await settle();
    });
    expect(result.current.children).toEqual([child]);
    const before = result.current;
    await push(ev(E, 0, 'status', { status: { type: 'busy' } }));
    expect(result.current).toBe(before); // nothing it holds changed

    const question = { id: 'que_1', sessionID: CHILD, questions: [{ question: 'Which color?', header: 'Color', options: [{ label: 'Red', description: 'r' }] }] };
    await push(
      ev(E, 0, 'permission.asked', { permission: { id: 'per_1', sessionID: CHILD, permission: 'bash', patterns: ['ls'] }, childSessionId: CHILD }),
      ev(E, 0, 'question.asked', { question, childSessionId: CHILD }),
    );
    expect(result.current.permissions.map((p) => [p.id, p.sessionID])).toEqual([['per_1', CHILD]]);
    expect(result.current.questions).toEqual([question]);

    act(() => void result.current.replyPermission('per_1', 'once'));
    expect((await takeCall('ReplyPermission')).args[0]).toEqual({ sessionId: SID, requestId: 'per_1', reply: 'once' });
    act(() => void result.current.replyQuestion('que_1', [['Red']]));
    expect((await takeCall('ReplyQuestion')).args[0]).toEqual({ sessionId: SID, requestId: 'que_1', answers: [['Red']] });
    act(() => void result.current.rejectQuestion('que_1'));
    expect((await takeCall('RejectQuestion')).args[0]).toEqual({ sessionId: SID, requestId: 'que_1' });
    await push(
      ev(E, 0, 'permission.replied', { requestId: 'per_1', reply: 'once', childSessionId: CHILD }),
      ev(E, 0, 'question.replied', { question: { id: 'que_1', sessionID: CHILD, answers: [['Red']] }, childSessionId: CHILD }),
    );
    expect([result.current.permissions, result.current.questions]).toEqual([[], []]);
  });

  it('useSession pages earlier messages in, saying when it loads and whether more are left', async () => {
    const { result } = renderHook(() => useSession(SID), { wrapper });
    await waitFor(() => expect(transport.invocations.some((i) => i.method === 'Join')).toBe(true));
    const newest = { info: { id: 'msg_0003', sessionID: SID, role: 'user' as const }, parts: [textPart('prt_0003', 'newest', 'msg_0003')] };
    await act(async () => {
      for (const join of transport.take('Join')) join.resolve(snapshotResult(snapshot(E, seq, [newest], SID, { earlier: { cursor: 'c3' } })));
      await settle();
    });
    expect([result.current.hasEarlier, result.current.loadingEarlier]).toEqual([true, false]);

    let loaded: Promise<boolean> | undefined;
    act(() => {
      loaded = result.current.loadEarlier();
    });
    expect(result.current.loadingEarlier).toBe(true);
    const call = await takeCall('LoadEarlier');
    expect(call.args[0]).toEqual({ sessionId: SID, before: 'c3' });
    await act(async () => {
      call.resolve({ messages: [{ info: { id: 'msg_0001', sessionID: SID, role: 'user' }, parts: [textPart('prt_0001', 'oldest', 'msg_0001')] }] });
      await loaded;
    });
    expect(await loaded).toBe(true);
    expect(result.current.messages.map((m) => m.info.id)).toEqual(['msg_0001', 'msg_0003']);
    expect([result.current.hasEarlier, result.current.loadingEarlier]).toEqual([false, false]);
  });

  it('shows an attachment prompt at once and takes opencode\'s echo of it', async () => {
    const { result } = renderHook(() => useSession(SID), { wrapper });
    await answerJoin();
    const file = { type: 'file' as const, mime: 'image/png', url: 'data:image/png;base64,iVBORw0KGgo=', filename: 'pixel.png' };
    act(() => void result.current.prompt([file]));
    expect(result.current.messages.map((m) => [m.optimistic, m.parts.map((p) => p.type === 'file' && [p.mime, p.filename])])).toEqual([
      [true, [['image/png', 'pixel.png']]],
    ]);
    const call = await takeCall('Prompt');
    expect(call.args[0]).toEqual({ sessionId: SID, parts: [file] });
    await act(async () => {
      call.resolve({ sessionId: SID, queued: false });
      await settle();
    });
    await push(userMessage('msg_0001'), partUpdated(E, 0, { id: 'prt_0001', messageID: 'msg_0001', type: 'file', mime: 'image/png', url: file.url, filename: 'pixel.png' }));
    expect(result.current.messages.map((m) => [m.info.id, m.optimistic])).toEqual([['msg_0001', false]]);
  });

  it('useSessions loads the list, reloads it after createSession and after a reconnect', async () => {
    const items: SessionMetadata[] = [meta('ses_a')];
    const lists: ListSessionsRequest[] = [];
    const answerLists = async () => {
      await waitFor(() => expect(transport.invocations.some((i) => i.method === 'ListSessions')).toBe(true));
      await act(async () => {
        for (const call of transport.take('ListSessions')) {
          lists.push(call.args[0] as ListSessionsRequest);
          call.resolve({ items: [...items], nextCursor: null });
        }
        await settle();
      });
    };
    const { result } = renderHook(() => useSessions({ tag: 'demo' }), { wrapper });
    expect(result.current.status).toBe('connecting');
    await answerLists();
    expect(result.current.status).toBe('ready');
    expect(result.current.sessions.map((s) => s.sessionId)).toEqual(['ses_a']);
    expect(lists[0]).toEqual({ tag: 'demo', cursor: null });

    let created: Promise<unknown> | undefined;
    act(() => {
      created = result.current.createSession({ title: 'new one', tags: ['demo'] });
    });
    const create = await takeCall('CreateSession');
    expect(create.args[0]).toEqual({ title: 'new one', tags: ['demo'] });
    await act(async () => {
      items.unshift(meta('ses_b'));
      create.resolve({ id: 'ses_b', title: 'new one' });
      await settle();
    });
    await answerLists();
    await expect(created).resolves.toEqual({ id: 'ses_b', title: 'new one' });
    expect(result.current.sessions.map((s) => s.sessionId)).toEqual(['ses_b', 'ses_a']);

    items.unshift(meta('ses_c'));
    act(() => transport.drop());
    act(() => transport.reconnected());
    await answerLists();
    expect(result.current.sessions.map((s) => s.sessionId)).toEqual(['ses_c', 'ses_b', 'ses_a']);
  });

  it('useSessions applies what other tabs change (SessionListChanged), also while a reload is in flight', async () => {
    const { result } = renderHook(() => useSessions({ tag: 'demo' }), { wrapper });
    const answer = async (items: SessionMetadata[]) => {
      await waitFor(() => expect(transport.invocations.some((i) => i.method === 'ListSessions')).toBe(true));
      await act(async () => {
        for (const call of transport.take('ListSessions')) call.resolve({ items, nextCursor: null });
        await settle();
      });
    };
    await answer([meta('ses_a')]);

    // Another tab creates a session: it appears first, without a reload.
    const b = { ...meta('ses_b'), updatedAt: '2025-01-01T00:00:01Z' };
    act(() => transport.pushListChange({ kind: 'created', session: b }));
    expect(result.current.sessions.map((s) => s.sessionId)).toEqual(['ses_b', 'ses_a']);
    expect(transport.invocations.filter((i) => i.method === 'ListSessions')).toHaveLength(0);
    const before = result.current.sessions;
    act(() => transport.pushListChange({ kind: 'created', session: b })); // heard again (as owner and as member)
    expect(result.current.sessions).toBe(before);

    // Renamed elsewhere while this list reloads: the page (older) does not undo the rename.
    act(() => transport.drop());
    act(() => transport.reconnected());
    const renamed = { ...meta('ses_a'), title: 'renamed', updatedAt: '2025-01-01T00:00:02Z' };
    act(() => transport.pushListChange({ kind: 'updated', session: renamed }));
    await answer([b, meta('ses_a')]);
    expect(result.current.sessions.map((s) => [s.sessionId, s.title])).toEqual([['ses_a', 'renamed'], ['ses_b', undefined]]);

    // Untagged, then archived: each leaves the list.
    act(() => transport.pushListChange({ kind: 'updated', session: { ...b, tags: [], updatedAt: '2025-01-01T00:00:03Z' } }));
    act(() => transport.pushListChange({ kind: 'archived', session: { ...renamed, archivedAt: '2025-01-01T00:00:04Z', updatedAt: '2025-01-01T00:00:04Z' } }));
    expect(result.current.sessions).toEqual([]);
  });

  it('useSessions reports a failed load as status error', async () => {
    const { result } = renderHook(() => useSessions(), { wrapper });
    await waitFor(() => expect(transport.invocations.some((i) => i.method === 'ListSessions')).toBe(true));
    await act(async () => {
      for (const call of transport.take('ListSessions')) call.reject(new Error('HubException: unauthorized: The token expired.'));
      await settle();
    });
    expect(result.current.status).toBe('error');
    expect(result.current.error).toEqual({ code: 'unauthorized', message: 'The token expired.' });
  });

  it('a provider given options has no client during the first render, then creates one and stops it on unmount', async () => {
    const seen: (GatewayClient | null)[] = [];
    const { result, unmount } = renderHook(
      () => {
        const c = useGatewayClient();
        seen.push(c);
        return { client: c, session: useSession(SID) };
      },
      {
        wrapper: ({ children }) =>
          createElement(GatewayProvider, { options: { url: 'http://gateway.invalid/hubs/session', transport, autoStart: false } }, children),
      },
    );
    expect(seen[0]).toBeNull();
    expect(seen[0] === null && result.current.session.status).toBe('connecting');
    await waitFor(() => expect(result.current.client).not.toBeNull());
    const created = result.current.client!;
    expect(created.state).toBe('connecting');
    unmount();
    await settle();
    expect(created.state).toBe('offline');
  });

  it('hooks outside a provider say so', () => {
    expect(() => renderHook(() => useSession(SID))).toThrow('useSession must be used inside a <GatewayProvider>.');
  });
});

function meta(sessionId: string): SessionMetadata {
  return { sessionId, upstream: 'local', ownerId: 'u1', tags: ['demo'], createdAt: '2025-01-01T00:00:00Z', updatedAt: '2025-01-01T00:00:00Z' };
}
