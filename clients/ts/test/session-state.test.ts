import { describe, expect, it } from 'vitest';
import type { ToolPart } from '../src/contracts.js';
import { SessionState } from '../src/session-state.js';
import {
  assistant,
  delta,
  ev,
  MSG,
  PRT,
  partText,
  partUpdated,
  recoveredResult,
  SID,
  snapshot,
  snapshotResult,
  textPart,
} from './helpers.js';

const E = 1_700_000_000_000_001;

/** A state joined with a snapshot at (epoch, seq) holding one assistant message with one text part. */
function joined(seq = 0, text = '', epoch = E): SessionState {
  const state = new SessionState(SID);
  expect(state.beginJoin()).toBeNull();
  const action = state.completeJoin(snapshotResult(snapshot(epoch, seq, [assistant(MSG, [textPart(PRT, text)])])));
  expect(action).toBeNull();
  return state;
}

function text(state: SessionState, partId = PRT, messageId = MSG): string | undefined {
  const message = state.view().messages.find((m) => m.info.id === messageId);
  return partText(message?.parts.find((p) => p.id === partId));
}

describe('SessionState', () => {
  it('keeps gap marks from snapshots and part.gap events until a part.updated restates the text', () => {
    const state = new SessionState(SID);
    state.beginJoin();
    state.completeJoin(snapshotResult(snapshot(E, 7, [assistant(MSG, [textPart(PRT, 't1 t2 t9 ')])], SID,
      { gaps: { [PRT]: { text: [6] } } })));
    expect(state.view().gaps).toEqual({ [PRT]: { text: [6] } });

    // A delta after the gap appends after it; a part never announced starts with a gap at 0.
    expect(state.receiveEvent(delta(E, 8, 9, 't10 '))).toBeNull();
    expect(text(state)).toBe('t1 t2 t9 t10 ');
    expect(state.receiveEvent(ev(E, 9, 'part.gap', { messageId: MSG, partId: 'prt_2', field: 'text', offset: 0 }))).toBeNull();
    expect(state.receiveEvent(delta(E, 10, 0, 't635 ', 'prt_2'))).toBeNull();
    expect(state.view().gaps).toEqual({ [PRT]: { text: [6] }, prt_2: { text: [0] } });

    // The final update restates the whole text: its gaps go.
    const before = state.view();
    expect(state.receiveEvent(partUpdated(E, 11, textPart(PRT, 't1 t2 t3 t9 t10 ')))).toBeNull();
    expect(state.view().gaps).toEqual({ prt_2: { text: [0] } });
    expect(before.gaps).toEqual({ [PRT]: { text: [6] }, prt_2: { text: [0] } }); // views are not mutated
    // An update without text (the in-flight copy) keeps both the text and the gaps.
    expect(state.receiveEvent(partUpdated(E, 12, { ...textPart('prt_2', undefined) }))).toBeNull();
    expect(state.view().gaps).toEqual({ prt_2: { text: [0] } });
    expect(text(state, 'prt_2')).toBe('t635 ');
  });

  it('applies a snapshot and then events in order', () => {
    const state = joined(3, 'Hello');
    expect(state.position).toEqual({ epoch: E, seq: 3 });
    expect(state.receiveEvent(delta(E, 4, 5, ', wor'))).toBeNull();
    expect(state.receiveEvent(delta(E, 5, 10, 'ld'))).toBeNull();
    expect(text(state)).toBe('Hello, world');
    expect(state.view()).toMatchObject({ sessionId: SID, epoch: E, seq: 5, ready: true, session: { title: 'Test session' } });
  });

  it('ignores duplicate events (seq <= current)', () => {
    const state = joined(0);
    const events = [delta(E, 1, 0, 'a'), delta(E, 2, 1, 'b'), delta(E, 3, 2, 'c')];
    for (const e of events) state.receiveEvent(e);
    // The same events again (a reconnect replay, a double delivery), out of order too.
    for (const e of [events[1]!, events[0]!, events[2]!, events[2]!]) {
      expect(state.receiveEvent(e)).toBeNull();
    }

    expect(text(state)).toBe('abc');
    expect(state.position).toEqual({ epoch: E, seq: 3 });
  });

  it('detects a gap and asks to rejoin with since; buffers until the recovered events arrive', () => {
    const state = joined(0);
    state.receiveEvent(delta(E, 1, 0, 'one '));
    // seq 2 and 3 are lost
    const action = state.receiveEvent(delta(E, 4, 12, 'four '));
    expect(action).toEqual({ type: 'rejoin', since: { epoch: E, seq: 1 }, reason: 'gap' });
    expect(state.isJoining).toBe(true);
    // More events arrive while the Join is in flight.
    expect(state.receiveEvent(delta(E, 5, 17, 'five'))).toBeNull();
    expect(state.bufferedCount).toBe(2);
    expect(text(state)).toBe('one ');

    // The server returns exactly what was missed, up to its current seq (which already includes 4 and 5).
    const result = recoveredResult(E, 5, [
      delta(E, 2, 4, 'two '), delta(E, 3, 8, 'thr '), delta(E, 4, 12, 'four '), delta(E, 5, 17, 'five'),
    ]);
    expect(state.completeJoin(result)).toBeNull();
    expect(text(state)).toBe('one two thr four five');
    expect(state.position).toEqual({ epoch: E, seq: 5 });
    expect(state.isJoining).toBe(false);
  });

  it('creates a placeholder part for a delta that arrives before its part', () => {
    const state = joined(0);
    state.receiveEvent(delta(E, 1, 0, 'early ', 'prt_0009', 'msg_0008'));
    let message = state.view().messages.find((m) => m.info.id === 'msg_0008')!;
    expect(message.info).toEqual({ id: 'msg_0008', sessionID: SID });
    expect(message.parts).toEqual([{ id: 'prt_0009', messageID: 'msg_0008', type: undefined, text: 'early ' }]);

    // The part's first update without text keeps the streamed text.
    state.receiveEvent(partUpdated(E, 2, textPart('prt_0009', undefined, 'msg_0008', { time: { start: 1 } })));
    state.receiveEvent(delta(E, 3, 6, 'bird', 'prt_0009', 'msg_0008'));
    state.receiveEvent(ev(E, 4, 'message.updated', { messageId: 'msg_0008', info: { id: 'msg_0008', role: 'assistant' } }));
    message = state.view().messages.find((m) => m.info.id === 'msg_0008')!;
    expect(message.info.role).toBe('assistant');
    expect(message.parts[0]).toMatchObject({ type: 'text', text: 'early bird', time: { start: 1 } });

    // An update with text replaces it.
    state.receiveEvent(partUpdated(E, 5, textPart('prt_0009', 'final', 'msg_0008')));
    expect(text(state, 'prt_0009', 'msg_0008')).toBe('final');
  });

  it('rejoins without since on an epoch change and applies the fresh snapshot', () => {
    const state = joined(7, 'old text');
    const E2 = E + 1;
    expect(state.receiveEvent(delta(E2, 1, 0, 'n'))).toEqual({ type: 'rejoin', since: null, reason: 'epoch' });
    expect(state.receiveEvent(delta(E2, 2, 5, 'y'))).toBeNull(); // buffered
    expect(text(state)).toBe('old text');
    // The new epoch's snapshot already holds seq 1; the buffered seq 2 is applied on top of it.
    const snap = snapshot(E2, 1, [assistant(MSG, [textPart(PRT, 'new x')]), assistant('msg_0001')]);
    expect(state.completeJoin(snapshotResult(snap))).toBeNull();
    expect(text(state)).toBe('new xy');
    expect(state.view().messages.map((m) => m.info.id)).toEqual(['msg_0001', MSG]);
    expect(state.position).toEqual({ epoch: E2, seq: 2 });
  });

  it('ignores buffered events the join snapshot already contains and appends only an overlapping delta tail', () => {
    const state = new SessionState(SID);
    state.beginJoin();
    // Live events arrive before the Join result (the server joined us to the group first).
    state.receiveEvent(partUpdated(E, 10, textPart(PRT, '')));
    state.receiveEvent(delta(E, 11, 0, 'Hello'));
    state.receiveEvent(delta(E, 12, 5, ' wor'));
    state.receiveEvent(delta(E, 13, 9, 'ld!'));
    // The snapshot is consistent with seq 12: it already holds 'Hello wor'.
    const snap = snapshot(E, 12, [assistant(MSG, [textPart(PRT, 'Hello wor')])]);
    expect(state.completeJoin(snapshotResult(snap))).toBeNull();
    expect(text(state)).toBe('Hello world!');
    expect(state.position).toEqual({ epoch: E, seq: 13 });

    // A delta whose start lies inside what we have: only its tail is new.
    state.receiveEvent(delta(E, 14, 10, 'd! How'));
    expect(text(state)).toBe('Hello world! How');
    // A delta we have entirely: ignored, but its seq is taken.
    state.receiveEvent(delta(E, 15, 6, 'world'));
    expect(text(state)).toBe('Hello world! How');
    expect(state.position).toEqual({ epoch: E, seq: 15 });
  });

  it('counts offsets in UTF-16 code units', () => {
    const state = joined(0);
    state.receiveEvent(delta(E, 1, 0, 'a😀'));
    expect('a😀'.length).toBe(3);
    state.receiveEvent(delta(E, 2, 3, 'b'));
    state.receiveEvent(delta(E, 3, 3, 'bc')); // overlaps by one code unit
    expect(text(state)).toBe('a😀bc');
  });

  it('asks for a snapshot when a delta starts past the text held (client rule 4: the log cannot bring that text back)', () => {
    const state = joined(2, 'abc');
    expect(state.receiveEvent(delta(E, 3, 5, 'xyz'))).toEqual({ type: 'rejoin', since: null, reason: 'delta-gap' });
    expect(state.position).toEqual({ epoch: E, seq: 2 });
    // The delta, buffered meanwhile, is a duplicate of what the snapshot holds.
    expect(state.completeJoin(snapshotResult(snapshot(E, 3, [assistant(MSG, [textPart(PRT, 'abcdexyz')])])))).toBeNull();
    expect(text(state)).toBe('abcdexyz');
    expect(state.position).toEqual({ epoch: E, seq: 3 });
  });

  it('asks for a snapshot when recovered events do not reach the promised position', () => {
    const state = joined(1);
    state.receiveEvent(delta(E, 3, 1, 'x')); // gap → rejoin with since
    expect(state.completeJoin(recoveredResult(E, 3, [delta(E, 2, 0, 'w')]))).toBeNull(); // buffered 3 fills it
    expect(text(state)).toBe('wx');
    state.receiveEvent(delta(E, 5, 3, 'z'));
    expect(state.completeJoin(recoveredResult(E, 6, [delta(E, 4, 2, 'y')])))
      .toEqual({ type: 'rejoin', since: null, reason: 'recovery-failed' });
    // A recovered result of another epoch is no good either.
    const other = joined(1);
    other.beginJoin();
    expect(other.completeJoin(recoveredResult(E + 5, 1, []))).toEqual({ type: 'rejoin', since: null, reason: 'recovery-failed' });
  });

  it('replaces the state with a pushed snapshot of a newer epoch, not an older one', () => {
    const state = joined(4, 'abc');
    state.receiveSnapshot(snapshot(E - 1, 99, [assistant(MSG, [textPart(PRT, 'stale')])]));
    expect(text(state)).toBe('abc');
    state.receiveSnapshot(snapshot(E, 3, [assistant(MSG, [textPart(PRT, 'older')])]));
    expect(text(state)).toBe('abc');
    state.receiveSnapshot(snapshot(E, 6, [assistant(MSG, [textPart(PRT, 'abcdef')])]));
    expect(text(state)).toBe('abcdef');
    state.receiveSnapshot(snapshot(E + 1, 0, [assistant(MSG, [textPart(PRT, 'fresh')])]));
    expect(text(state)).toBe('fresh');
    expect(state.position).toEqual({ epoch: E + 1, seq: 0 });
    expect(state.receiveEvent(delta(E + 1, 1, 5, '!'))).toBeNull();
    expect(text(state)).toBe('fresh!');
  });

  it('buffers a pushed snapshot during a join and applies it after the join result when newer', () => {
    const state = joined(2, 'ab');
    state.beginJoin();
    state.receiveSnapshot(snapshot(E + 1, 0, [assistant(MSG, [textPart(PRT, 'new epoch')])]));
    state.receiveEvent(delta(E + 1, 1, 9, '!'));
    expect(state.completeJoin(recoveredResult(E, 3, [delta(E, 3, 2, 'c')]))).toBeNull();
    expect(text(state)).toBe('new epoch!');
    expect(state.position).toEqual({ epoch: E + 1, seq: 1 });
  });

  it('orders messages and parts by id and keeps unchanged messages identical', () => {
    const state = joined(0);
    state.receiveEvent(ev(E, 1, 'message.updated', { messageId: 'msg_0005', info: { id: 'msg_0005', role: 'user' } }));
    state.receiveEvent(ev(E, 2, 'message.updated', { messageId: 'msg_0001', info: { id: 'msg_0001', role: 'user' } }));
    state.receiveEvent(partUpdated(E, 3, textPart('prt_0009', 'b', 'msg_0005')));
    state.receiveEvent(partUpdated(E, 4, textPart('prt_0007', 'a', 'msg_0005')));
    const v1 = state.view();
    expect(v1.messages.map((m) => m.info.id)).toEqual(['msg_0001', MSG, 'msg_0005']);
    expect(v1.messages[2]!.parts.map((p) => p.id)).toEqual(['prt_0007', 'prt_0009']);
    expect(state.view()).toBe(v1);

    state.receiveEvent(delta(E, 5, 1, 'b', 'prt_0007', 'msg_0005'));
    const v2 = state.view();
    expect(v2).not.toBe(v1);
    expect(v2.messages[0]).toBe(v1.messages[0]);
    expect(v2.messages[1]).toBe(v1.messages[1]);
    expect(v2.messages[2]).not.toBe(v1.messages[2]);

    state.receiveEvent(ev(E, 6, 'part.removed', { messageId: 'msg_0005', partId: 'prt_0009' }));
    state.receiveEvent(ev(E, 7, 'message.removed', { messageId: 'msg_0001' }));
    expect(state.view().messages.map((m) => [m.info.id, m.parts.map((p) => p.id)])).toEqual([
      [MSG, [PRT]],
      ['msg_0005', ['prt_0007']],
    ]);
  });

  it('tracks status, errors, permissions, todos and session info', () => {
    const state = joined(0);
    const permission = {
      id: 'per_1', sessionID: SID, permission: 'bash', patterns: ['echo hi'], metadata: { command: 'echo hi' },
      always: ['echo *'], tool: { messageID: MSG, callID: 'call_1' },
    };
    state.receiveEvent(ev(E, 1, 'status', { status: { type: 'busy' } }));
    state.receiveEvent(ev(E, 2, 'permission.asked', { permission }));
    expect(state.view().permissions).toEqual([permission]);
    state.receiveEvent(ev(E, 3, 'permission.replied', { requestId: 'per_1', reply: 'once' }));
    expect(state.view().permissions).toEqual([]);
    state.receiveEvent(ev(E, 4, 'error', { error: { name: 'MessageAbortedError', data: { message: 'Aborted' } } }));
    state.receiveEvent(ev(E, 5, 'status', { status: { type: 'idle' } }));
    expect(state.view()).toMatchObject({ status: { type: 'idle' }, error: { name: 'MessageAbortedError' } });
    state.receiveEvent(ev(E, 6, 'todo.updated', { todos: [{ id: 't1', content: 'x', status: 'pending' }] }));
    state.receiveEvent(ev(E, 7, 'session.updated', { info: { id: SID, title: 'Mock title' } }));
    state.receiveEvent(ev(E, 8, 'status', { status: { type: 'busy' } }));
    state.receiveEvent(ev(E, 9, 'some.future.type'));
    expect(state.view()).toMatchObject({
      status: { type: 'busy' }, error: null, todos: [{ id: 't1' }], session: { title: 'Mock title' }, seq: 9, deleted: false,
    });
    state.receiveEvent(ev(E, 10, 'session.deleted'));
    expect(state.view().deleted).toBe(true);
  });

  it('keeps the text when a tool/part update carries none, and replaces tool parts whole', () => {
    const state = joined(0);
    const tool: ToolPart = { id: 'prt_0010', messageID: MSG, sessionID: SID, type: 'tool', tool: 'bash', callID: 'c1', state: { status: 'pending', input: {} } };
    state.receiveEvent(partUpdated(E, 1, tool));
    state.receiveEvent(partUpdated(E, 2, { ...tool, state: { status: 'completed', input: { command: 'ls' }, output: 'x\n' } }));
    const part = state.view().messages[0]!.parts.find((p) => p.id === 'prt_0010')!;
    expect(part.type === 'tool' && part.state).toEqual({ status: 'completed', input: { command: 'ls' }, output: 'x\n' });
    expect('text' in part).toBe(false);
  });

  it('drops the buffer on a failed join and records a permanent error', () => {
    const state = new SessionState(SID);
    state.beginJoin();
    state.receiveEvent(delta(E, 1, 0, 'x'));
    state.failJoin({ code: 'session_not_found', message: 'nope' });
    expect(state.isJoining).toBe(false);
    expect(state.bufferedCount).toBe(0);
    expect(state.view()).toMatchObject({ ready: false, joinError: { code: 'session_not_found' } });
    // Events without any joined state are ignored.
    expect(state.receiveEvent(delta(E, 2, 1, 'y'))).toBeNull();
    expect(state.view().messages).toEqual([]);
  });
});
