import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createGatewayClient, type ConnectionState, type GatewayClient } from '../src/client.js';
import type { JoinRequest } from '../src/contracts.js';
import { GatewayError } from '../src/errors.js';
import type { SessionView } from '../src/session-state.js';
import {
  assistant,
  delta,
  ev,
  FakeTransport,
  partText,
  recoveredResult,
  settle,
  snapshot,
  snapshotResult,
  textPart,
} from './helpers.js';

const E = 1_700_000_000_000_001;
const SESSIONS = ['ses_aaa', 'ses_bbb', 'ses_ccc'];

function textOf(view: SessionView | undefined): string {
  return view?.messages.flatMap((m) => m.parts.map((p) => partText(p) ?? '')).join('') ?? '';
}

describe('GatewayClient with a fake transport', () => {
  let transport: FakeTransport;
  let flushes: (() => void)[];
  let client: GatewayClient;
  let states: ConnectionState[];

  function flush(): void {
    for (const f of flushes.splice(0)) f();
  }

  function create(options: Partial<Parameters<typeof createGatewayClient>[0]> = {}): GatewayClient {
    client = createGatewayClient({
      url: 'http://gateway.invalid/hubs/session',
      transport,
      scheduleFlush: (f) => flushes.push(f),
      reconnectDelaysMs: [0, 1000, 2000],
      ...options,
    });
    client.onStateChange((s) => states.push(s));
    return client;
  }

  /** Answers every pending Join: a snapshot for a first join, recovered events (from `recovered`) for one with since. */
  function answerJoins(answer: (request: JoinRequest) => unknown): JoinRequest[] {
    const joins = transport.take('Join');
    for (const join of joins) join.resolve(answer(join.args[0] as JoinRequest));
    return joins.map((j) => j.args[0] as JoinRequest);
  }

  beforeEach(() => {
    transport = new FakeTransport();
    flushes = [];
    states = [];
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('refuses a call over the hub\'s size limit without sending it, and maps the hub\'s close to payload_too_large', async () => {
    create({ maxMessageBytes: 64 * 1024 });
    await settle();
    const refused = await client.prompt('ses_aaa', 'x'.repeat(70 * 1024)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GatewayError);
    expect((refused as GatewayError).code).toBe('payload_too_large');
    expect(transport.take('Prompt')).toHaveLength(0);

    // Within the limit it goes out; multi-byte text counts in UTF-8 bytes.
    expect(await client.prompt('ses_aaa', 'é'.repeat(40 * 1024)).catch((e: unknown) => (e as GatewayError).code)).toBe('payload_too_large');
    const sent = client.prompt('ses_aaa', 'hello');
    await settle();
    const [call] = transport.take('Prompt');
    call!.reject(new Error('Server returned an error on close: Connection closed with an error. InvalidDataException: The maximum message size of 1048576B was exceeded. The message size can be configured in AddHubOptions.'));
    expect(await sent.catch((e: unknown) => (e as GatewayError).code)).toBe('payload_too_large');
  });

  it('connects, joins a watched session and batches notifications per frame', async () => {
    create();
    expect(client.state).toBe('connecting');
    const listener = vi.fn();
    const handle = client.watch('ses_aaa', listener);
    await settle();
    expect(client.state).toBe('connected');
    const joins = answerJoins(() => snapshotResult(snapshot(E, 0, [assistant('msg_1', [textPart('prt_1', '', 'msg_1')])], 'ses_aaa')));
    expect(joins).toEqual([{ sessionId: 'ses_aaa', since: null }]);
    await settle();

    for (let i = 0; i < 100; i++) {
      transport.push({ ...delta(E, i + 1, i, 'x', 'prt_1', 'msg_1'), sessionId: 'ses_aaa' });
    }

    expect(listener).not.toHaveBeenCalled();
    expect(flushes.length).toBe(1); // one scheduled frame for all of it
    flush();
    expect(listener).toHaveBeenCalledTimes(1);
    expect(textOf(listener.mock.calls[0]![0])).toBe('x'.repeat(100));
    expect(handle.view.seq).toBe(100);
    flush();
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it('rejoins every watched session with since after a reconnect, by itself', async () => {
    create();
    const handles = SESSIONS.map((id) => client.watch(id, () => undefined));
    await settle();
    answerJoins((r) => snapshotResult(snapshot(E, 0, [assistant('msg_1', [textPart('prt_1', '', 'msg_1')])], r.sessionId)));
    await settle();

    // Each session streams a little.
    SESSIONS.forEach((id, n) => {
      for (let i = 0; i <= n; i++) transport.push({ ...delta(E, i + 1, i, 'a', 'prt_1', 'msg_1'), sessionId: id });
    });
    expect(handles.map((h) => h.view.seq)).toEqual([1, 2, 3]);

    // The connection drops: no event reaches us while reconnecting.
    transport.drop();
    expect(client.state).toBe('reconnecting');
    transport.retry(0);
    transport.retry(1);
    expect(client.state).toBe('reconnecting');
    transport.retry(3);
    expect(client.state).toBe('offline');
    transport.reconnected();
    expect(client.state).toBe('connected');

    // Every session asks for what it missed from its own position.
    const missed = new Map(SESSIONS.map((id, n) => [id, [
      { ...delta(E, n + 2, n + 1, 'b', 'prt_1', 'msg_1'), sessionId: id },
      { ...ev(E, n + 3, 'status', { status: { type: 'idle' } }), sessionId: id },
    ]]));
    // An event pushed on the new connection before the Join result is buffered, and its duplicate dropped.
    transport.push(missed.get('ses_bbb')![1]!);
    const rejoins = answerJoins((r) => recoveredResult(E, r.since!.seq + 2, missed.get(r.sessionId)!, r.sessionId));
    expect(rejoins).toEqual(SESSIONS.map((id, n) => ({ sessionId: id, upstream: 'default', since: { epoch: E, seq: n + 1 } })));
    await settle();
    expect(handles.map((h) => h.view.seq)).toEqual([3, 4, 5]);
    expect(handles.map((h) => textOf(h.view))).toEqual(['ab', 'aab', 'aaab']);
    expect(handles.map((h) => h.view.status.type)).toEqual(['idle', 'idle', 'idle']);
    expect(states).toEqual(['connected', 'reconnecting', 'offline', 'connected']);
  });

  it('restarts the connection after it closed for good, and rejoins', async () => {
    vi.useFakeTimers();
    let fail = false;
    transport.startImpl = () => (fail ? Promise.reject(new Error('Failed to complete negotiation')) : Promise.resolve());
    create({ offlineAfterAttempts: 2 });
    const handle = client.watch('ses_aaa', () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    answerJoins((r) => snapshotResult(snapshot(E, 4, [], r.sessionId)));
    await vi.advanceTimersByTimeAsync(0);
    expect(handle.view.seq).toBe(4);

    fail = true;
    transport.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(1000); // second attempt fails too
    expect(client.state).toBe('offline');
    fail = false;
    await vi.advanceTimersByTimeAsync(3000);
    expect(client.state).toBe('connected');
    expect(transport.startCalls).toBeGreaterThanOrEqual(4);
    const rejoins = answerJoins((r) => recoveredResult(E, 4, [], r.sessionId));
    expect(rejoins).toEqual([{ sessionId: 'ses_aaa', upstream: 'default', since: { epoch: E, seq: 4 } }]);
  });

  it('rejoins with since on a gap and without since on a new epoch', async () => {
    create();
    const handle = client.watch('ses_aaa');
    await settle();
    answerJoins((r) => snapshotResult(snapshot(E, 2, [], r.sessionId)));
    await settle();

    transport.push({ ...ev(E, 5, 'status', { status: { type: 'busy' } }), sessionId: 'ses_aaa' });
    let joins = answerJoins((r) => recoveredResult(E, 5, [
      { ...ev(E, 3, 'status', { status: { type: 'busy' } }), sessionId: r.sessionId },
      { ...ev(E, 4, 'todo.updated', { todos: [] }), sessionId: r.sessionId },
      { ...ev(E, 5, 'status', { status: { type: 'busy' } }), sessionId: r.sessionId },
    ], r.sessionId));
    expect(joins).toEqual([{ sessionId: 'ses_aaa', upstream: 'default', since: { epoch: E, seq: 2 } }]);
    await settle();
    expect(handle.view).toMatchObject({ seq: 5, todos: [], status: { type: 'busy' } });

    transport.push({ ...ev(E + 1, 1, 'status', { status: { type: 'idle' } }), sessionId: 'ses_aaa' });
    joins = answerJoins((r) => snapshotResult(snapshot(E + 1, 1, [], r.sessionId)));
    expect(joins).toEqual([{ sessionId: 'ses_aaa', upstream: 'default', since: null }]);
    await settle();
    expect(handle.view).toMatchObject({ epoch: E + 1, seq: 1, status: { type: 'idle' } });
  });

  it('reports a permanent join error in the view and retries a transient one', async () => {
    vi.useFakeTimers();
    create();
    const missing = client.watch('ses_missing');
    const flaky = client.watch('ses_flaky');
    await vi.advanceTimersByTimeAsync(0);
    for (const join of transport.take('Join')) {
      const id = (join.args[0] as JoinRequest).sessionId;
      join.reject(new Error(id === 'ses_missing'
        ? "An unexpected error occurred invoking 'Join' on the server. HubException: session_not_found: Session 'ses_missing' was not found."
        : "An unexpected error occurred invoking 'Join' on the server. HubException: upstream_unavailable: opencode did not answer."));
    }

    await vi.advanceTimersByTimeAsync(0);
    expect(missing.view.joinError).toEqual({ code: 'session_not_found', message: "Session 'ses_missing' was not found." });
    expect(flaky.view.joinError).toBeNull();
    await vi.advanceTimersByTimeAsync(300);
    const retries = answerJoins((r) => snapshotResult(snapshot(E, 0, [], r.sessionId)));
    expect(retries).toEqual([{ sessionId: 'ses_flaky', since: null }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(flaky.view.ready).toBe(true);
  });

  it('leaves a session when its last watcher unsubscribes and ignores its later events', async () => {
    create();
    const a = client.watch('ses_aaa', () => undefined);
    const b = client.watch('ses_aaa', () => undefined);
    await settle();
    expect(transport.take('Join')).toHaveLength(1);
    a.unsubscribe();
    expect(transport.take('Leave')).toHaveLength(0);
    b.unsubscribe();
    expect(transport.take('Leave').map((l) => l.args)).toEqual([['ses_aaa']]);
    expect(client.view('ses_aaa')).toBeUndefined();
  });

  it('sends typed calls and turns hub errors into GatewayError', async () => {
    create();
    await settle();
    const prompt = client.prompt('ses_aaa', 'hello tokens=5');
    const reply = client.replyPermission('ses_aaa', 'per_1', 'always');
    const list = client.listSessions({ tag: 'x', limit: 10 });
    const update = client.updateMetadata({ sessionId: 'ses_aaa', tags: ['a'] });
    const created = client.createSession({ title: 'T' });
    const aborted = client.abort('ses_aaa');
    await settle();
    const calls = transport.invocations.splice(0);
    expect(calls.map((c) => [c.method, ...c.args])).toEqual([
      ['Prompt', { sessionId: 'ses_aaa', text: 'hello tokens=5' }],
      ['ReplyPermission', { sessionId: 'ses_aaa', requestId: 'per_1', reply: 'always' }],
      ['ListSessions', { tag: 'x', limit: 10 }],
      ['UpdateMetadata', { sessionId: 'ses_aaa', tags: ['a'] }],
      ['CreateSession', { title: 'T' }],
      ['Abort', 'ses_aaa'],
    ]);
    calls[0]!.resolve({ sessionId: 'ses_aaa', queued: false });
    calls[1]!.reject(new Error("An unexpected error occurred invoking 'ReplyPermission' on the server. HubException: permission_not_found: Permission request 'per_1' is not pending."));
    calls[2]!.reject(new Error("Failed to invoke 'ListSessions' due to an error on the server. HubException: Method does not exist."));
    calls[3]!.resolve({ sessionId: 'ses_aaa', upstream: 'default', tags: ['a'], createdAt: '', updatedAt: '' });
    calls[4]!.resolve({ id: 'ses_new', title: 'T' });
    calls[5]!.resolve(null);
    await expect(prompt).resolves.toEqual({ sessionId: 'ses_aaa', queued: false });
    await expect(reply).rejects.toMatchObject({ name: 'GatewayError', code: 'permission_not_found', message: "Permission request 'per_1' is not pending." });
    await expect(list).rejects.toMatchObject({ code: 'method_not_found' });
    await expect(update).resolves.toMatchObject({ tags: ['a'] });
    await expect(created).resolves.toEqual({ id: 'ses_new', title: 'T' });
    await expect(aborted).resolves.toBeUndefined();
    await reply.catch((e: unknown) => expect(e).toBeInstanceOf(GatewayError));
  });

  it('makes calls wait for the connection, and fails them after the timeout', async () => {
    vi.useFakeTimers();
    transport.startImpl = () => Promise.reject(new Error('down'));
    create({ connectTimeoutMs: 5000 });
    const call = client.abort('ses_aaa');
    const failed = expect(call).rejects.toMatchObject({ code: 'disconnected' });
    await vi.advanceTimersByTimeAsync(5001);
    await failed;
    transport.startImpl = () => Promise.resolve();
    const later = client.abort('ses_aaa');
    await vi.advanceTimersByTimeAsync(2500);
    expect(client.state).toBe('connected');
    transport.take('Abort').forEach((c) => c.resolve(null));
    await expect(later).resolves.toBeUndefined();
  });
});
