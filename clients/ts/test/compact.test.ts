/**
 * The compact form: `D(s, seq, h, offset, delta)` applied through the session handle (`s`) of the join result or pushed
 * snapshot and the part field handles (`h`) of the snapshot and the events, with the same seq and offset rules as a
 * full `part.delta`.
 */
import { describe, expect, it } from 'vitest';
import { createGatewayClient } from '../src/client.js';
import type { CompactDelta, JoinRequest } from '../src/contracts.js';
import { SessionState } from '../src/session-state.js';
import { hubUrlFor } from '../src/transport.js';
import {
  assistant,
  ev,
  FakeTransport,
  MSG,
  PRT,
  partText,
  partUpdated,
  recoveredResult,
  settle,
  SID,
  snapshot,
  snapshotResult,
  textPart,
} from './helpers.js';

const E = 1_700_000_000_000_001;
const S = 7;
const H = 3;

const d = (seq: number, offset: number, delta: string, h = H, s = S): CompactDelta => ({ s, seq, h, offset, delta });

/** Joined (compact) at (E, seq) with one text part holding `text` whose field handle is H. */
function joined(seq = 0, text = ''): SessionState {
  const state = new SessionState(SID);
  state.beginJoin();
  const snap = snapshot(E, seq, [assistant(MSG, [textPart(PRT, text)])], SID, { handles: { [PRT]: { text: H } }, sessionHandle: S });
  expect(state.completeJoin({ ...snapshotResult(snap), sessionHandle: S })).toBeNull();
  return state;
}

function text(state: SessionState, partId = PRT): string | undefined {
  return partText(state.view().messages.flatMap((m) => m.parts).find((p) => p.id === partId));
}

describe('compact deltas in SessionState', () => {
  it('apply through the snapshot handles with the seq and offset rules of a part.delta', () => {
    const state = joined(2, 'Hel');
    expect(state.receiveCompact(d(3, 3, 'lo'))).toBeNull();
    expect(state.receiveCompact(d(3, 3, 'lo'))).toBeNull(); // duplicate seq
    expect(state.receiveCompact(d(4, 4, 'o, wo'))).toBeNull(); // overlaps: the tail only
    expect(text(state)).toBe('Hello, wo');
    expect(state.position).toEqual({ epoch: E, seq: 4 });
    expect(state.receiveCompact(d(6, 9, 'rld'))).toEqual({ type: 'rejoin', since: { epoch: E, seq: 4 }, reason: 'gap' });
  });

  it('ignore a session handle they do not hold and rejoin without since on a field handle never introduced', () => {
    const state = joined(0);
    expect(state.receiveCompact(d(1, 0, 'x', H, S + 1))).toBeNull();
    expect(state.position).toEqual({ epoch: E, seq: 0 });
    expect(state.receiveCompact(d(1, 0, 'x', 99))).toEqual({ type: 'rejoin', since: null, reason: 'unknown-handle' });
  });

  it('learn field handles from events: part.updated with text, part.gap and part.delta', () => {
    const state = joined(0);
    expect(state.receiveEvent({ ...partUpdated(E, 1, textPart('prt_b', '')), handle: 4 } as never)).toBeNull();
    expect(state.receiveEvent(ev(E, 2, 'part.gap', { messageId: MSG, partId: 'prt_c', field: 'text', offset: 0, handle: 5 }))).toBeNull();
    expect(state.receiveCompact(d(3, 0, 'bee', 4))).toBeNull();
    expect(state.receiveCompact(d(4, 0, 'sea', 5))).toBeNull();
    expect(state.receiveCompact(d(5, 0, 'A', H))).toBeNull();
    expect([text(state), text(state, 'prt_b'), text(state, 'prt_c')]).toEqual(['A', 'bee', 'sea']);
    expect(state.view().gaps).toEqual({ prt_c: { text: [0] } });
  });

  it('buffer during a join, in arrival order with events, and keep only their own session handle', () => {
    const state = new SessionState(SID);
    state.beginJoin();
    state.receiveCompact(d(3, 3, 'lo'));
    state.receiveCompact(d(1, 0, 'other session', H, 99));
    state.receiveEvent(ev(E, 4, 'status', { status: { type: 'busy' } }));
    state.receiveCompact(d(5, 5, '!'));
    const snap = snapshot(E, 2, [assistant(MSG, [textPart(PRT, 'Hel')])], SID, { handles: { [PRT]: { text: H } } });
    expect(state.completeJoin({ ...snapshotResult(snap), sessionHandle: S })).toBeNull();
    expect(text(state)).toBe('Hello!');
    expect(state.view().status).toEqual({ type: 'busy' });
    expect(state.position).toEqual({ epoch: E, seq: 5 });
  });

  it('take the session handle of a recovered join and of a pushed snapshot of a new epoch', () => {
    const state = joined(2, 'ab');
    state.beginJoin();
    expect(state.completeJoin({ ...recoveredResult(E, 3, [partUpdated(E, 3, textPart(PRT, 'abc'))]), sessionHandle: 12 })).toBeNull();
    expect(state.sessionHandle).toBe(12);
    expect(state.receiveCompact(d(4, 3, 'd', H, 12))).toBeNull();
    expect(text(state)).toBe('abcd');

    const next = snapshot(E + 1, 1, [assistant(MSG, [textPart(PRT, 'abcd')])], SID, { handles: { [PRT]: { text: 1 } }, sessionHandle: 13 });
    expect(state.receiveSnapshot(next)).toBeNull();
    expect(state.receiveCompact(d(5, 4, 'late delta of the old epoch', H, 12))).toBeNull();
    expect(state.receiveCompact(d(2, 4, 'e', 1, 13))).toBeNull();
    expect(text(state)).toBe('abcde');
    expect(state.position).toEqual({ epoch: E + 1, seq: 2 });
  });
});

describe('compact deltas in the client', () => {
  function start() {
    const transport = new FakeTransport();
    const client = createGatewayClient({ url: 'http://gw/hubs/session', transport, scheduleFlush: (f) => f() });
    return { transport, client };
  }

  /** Answers the Join of `sessionId` (among `calls`, or the pending ones) with a snapshot naming its handles. */
  function join(transport: FakeTransport, sessionId: string, handle: number, fieldHandle: number, calls = transport.take('Join')) {
    const call = calls.find((c) => (c.args[0] as JoinRequest).sessionId === sessionId)!;
    const snap = snapshot(E, 0, [assistant(`msg_${sessionId}`, [textPart(`prt_${sessionId}`, '', `msg_${sessionId}`)])], sessionId,
      { handles: { [`prt_${sessionId}`]: { text: fieldHandle } }, sessionHandle: handle });
    call.resolve({ ...snapshotResult(snap), sessionHandle: handle });
  }

  it('routes each delta to its session, also those that arrive before the join results name the handles', async () => {
    const { transport, client } = start();
    await settle();
    const a = client.watch('ses_a');
    const b = client.watch('ses_b');
    await settle();
    // Both joins in flight: the deltas' handles are not known yet.
    const calls = transport.take('Join');
    transport.pushCompact({ s: 21, seq: 1, h: 1, offset: 0, delta: 'b1 ' });
    transport.pushCompact({ s: 20, seq: 1, h: 1, offset: 0, delta: 'a1 ' });
    join(transport, 'ses_a', 20, 1, calls);
    await settle();
    transport.pushCompact({ s: 20, seq: 2, h: 1, offset: 3, delta: 'a2 ' });
    transport.pushCompact({ s: 21, seq: 2, h: 1, offset: 3, delta: 'b2 ' });
    join(transport, 'ses_b', 21, 1, calls);
    await settle();
    transport.pushCompact({ s: 21, seq: 3, h: 1, offset: 6, delta: 'b3' });
    const textOf = (view: typeof a.view) => partText(view.messages[0]?.parts[0]);
    expect(textOf(a.view)).toBe('a1 a2 ');
    expect(textOf(b.view)).toBe('b1 b2 b3');
    expect(transport.take('Join')).toEqual([]); // nothing needed a rejoin
  });

  it('forgets session handles on a new connection and learns the new ones from the rejoins', async () => {
    const { transport, client } = start();
    await settle();
    const a = client.watch('ses_a');
    await settle();
    join(transport, 'ses_a', 20, 1);
    await settle();
    transport.pushCompact({ s: 20, seq: 1, h: 1, offset: 0, delta: 'one ' });
    transport.drop();
    transport.reconnected();
    await settle();
    // Another connection: handle 20 may be another session's there; this session is 5 now.
    transport.pushCompact({ s: 20, seq: 2, h: 1, offset: 4, delta: 'not ours ' });
    const rejoin = transport.take('Join')[0]!;
    expect((rejoin.args[0] as JoinRequest).since).toEqual({ epoch: E, seq: 1 });
    transport.pushCompact({ s: 5, seq: 2, h: 1, offset: 4, delta: 'two' });
    rejoin.resolve({ ...recoveredResult(E, 1, [], 'ses_a'), sessionHandle: 5 });
    await settle();
    expect(partText(a.view.messages[0]?.parts[0])).toBe('one two');
  });
});

describe('hubUrlFor', () => {
  it('asks for the full form in the query and leaves the compact default alone', () => {
    expect(hubUrlFor('/hubs/session')).toBe('/hubs/session');
    expect(hubUrlFor('/hubs/session', 'full')).toBe('/hubs/session?events=full');
    expect(hubUrlFor('https://gw/hubs/session?x=1#frag', 'full')).toBe('https://gw/hubs/session?x=1&events=full#frag');
  });
});
