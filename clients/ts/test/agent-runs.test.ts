/**
 * Client rules 8–11 in SessionState with synthetic events: tool output streamed into nested part fields (handles from
 * events and snapshots, compact and full form, `copies`, gaps), pending permissions and questions of the session and
 * its descendants, children, and paged earlier messages across a new snapshot. Every test applies its items one at a
 * time and checks the invariants after each one, not only the end state.
 */
import { describe, expect, it } from 'vitest';
import type {
  ChildSession,
  CompactDelta,
  MessageWithParts,
  Part,
  PermissionRequest,
  QuestionRequest,
  SessionEvent,
  SessionSnapshot,
  ToolPart,
  ToolState,
  ToolStateRunning,
} from '../src/contracts.js';
import { fieldText, SessionState, type RejoinAction, type SessionView } from '../src/session-state.js';
import { assistant, ev, MSG, SID, snapshot, snapshotResult, textPart } from './helpers.js';

const E = 1_700_000_000_000_001;
const S = 4;
const TOOL = 'prt_0005';
const METADATA_OUTPUT = 'state.metadata.output';
const OUTPUT = 'state.output';

type Item = { event: SessionEvent } | { d: CompactDelta } | { snapshot: SessionSnapshot };

/** What must hold at every moment: messages and parts in id order, each streamed field pieces of its final text. */
interface Expectations {
  /** `${partId} ${field}` → the field's final text. */
  finals?: Record<string, string>;
  /** Checked after each item, with its index. */
  also?: (view: SessionView, index: number) => void;
}

function apply(state: SessionState, item: Item): RejoinAction | null {
  return 'event' in item ? state.receiveEvent(item.event) : 'd' in item ? state.receiveCompact(item.d) : state.receiveSnapshot(item.snapshot);
}

/** Applies `items` in order, none asking for a rejoin, checking the invariants after every one. */
function play(state: SessionState, items: Item[], expectations: Expectations = {}): void {
  checkInvariants(state.view(), expectations, -1);
  items.forEach((item, index) => {
    expect(apply(state, item), `item ${index} asks for no rejoin`).toBeNull();
    checkInvariants(state.view(), expectations, index);
  });
}

function checkInvariants(view: SessionView, { finals = {}, also }: Expectations, index: number): void {
  const ids = view.messages.map((m) => m.info.id);
  expect(ids, `item ${index}: messages in id order, once each`).toEqual([...new Set(ids)].sort());
  for (const message of view.messages) {
    const partIds = message.parts.map((p) => p.id);
    expect(partIds, `item ${index}: parts in id order`).toEqual([...new Set(partIds)].sort());
    for (const part of message.parts) {
      for (const [key, final] of Object.entries(finals)) {
        const [partId, field] = key.split(' ') as [string, string];
        const shown = part.id === partId ? fieldText(part, field) : undefined;
        if (shown !== undefined) {
          expectPiecesOf(shown, view.gaps[partId]?.[field] ?? [], final, `item ${index}: ${key}`);
        }
      }
    }
  }

  for (const list of [view.permissions, view.questions, view.children]) {
    const requestIds = list.map((r) => r.id);
    expect(new Set(requestIds).size, `item ${index}: each id once`).toBe(requestIds.length);
  }

  also?.(view, index);
}

/** The text cut at its gaps is `final` cut short, or pieces of it in order, the first at its start (client rule 7). */
function expectPiecesOf(text: string, gaps: readonly number[], final: string, what: string): void {
  const cuts = [0, ...gaps, text.length];
  let position = 0;
  for (let i = 0; i + 1 < cuts.length; i++) {
    const piece = text.slice(cuts[i], cuts[i + 1]);
    const found = i === 0 ? (final.startsWith(piece) ? 0 : -1) : final.indexOf(piece, position);
    expect(found, `${what}: "${piece}" in "${final}" from ${position}`).toBeGreaterThanOrEqual(0);
    position = found + piece.length;
  }
}

function joinedWith(snap: SessionSnapshot): SessionState {
  const state = new SessionState(SID);
  state.beginJoin();
  expect(state.completeJoin({ ...snapshotResult(snap), sessionHandle: S })).toBeNull();
  return state;
}

function toolPart(state: ToolState, id = TOOL): ToolPart {
  return { id, messageID: MSG, sessionID: SID, type: 'tool', tool: 'bash', callID: 'call_1', state };
}

function updated(seq: number, part: Part, extra: Record<string, unknown> = {}): Item {
  return { event: ev(E, seq, 'part.updated', { messageId: part.messageID, partId: part.id, part, ...extra }) };
}

function tool(view: SessionView, id = TOOL): ToolPart {
  const part = view.messages.flatMap((m) => m.parts).find((p) => p.id === id);
  expect(part?.type).toBe('tool');
  return part as ToolPart;
}

const input = { command: 'seq 4', description: 'Count' };
const running = (metadata?: Record<string, string>): ToolStateRunning => ({ status: 'running', input, title: 'Count', ...(metadata ? { metadata } : {}), time: { start: 1 } });
/** A completed tool's state as compact connections receive it when both outputs are copies: without them. */
const completedWithoutOutputs = { status: 'completed', input, title: 'Count', metadata: {}, time: { start: 1, end: 2 } } as unknown as ToolState;

describe('tool output as deltas (client rules 8 and 9)', () => {
  const final = '1\n2\n3\n4\n';

  it('sets a compact delta of a nested field, creating the objects on the way, and takes the completed part\'s copies', () => {
    const state = joinedWith(snapshot(E, 0, [assistant(MSG)], SID, { sessionHandle: S }));
    const views: SessionView[] = [];
    play(state, [
      updated(1, toolPart({ status: 'pending', input: {}, raw: '' })),
      // Running, no output yet: the handle is introduced for the field before the part has it.
      updated(2, toolPart(running()), { handles: { [METADATA_OUTPUT]: 11 } }),
      { d: { s: S, seq: 3, h: 11, offset: 0, delta: '1\n' } },
      { d: { s: S, seq: 4, h: 11, offset: 2, delta: '2\n3\n' } },
      { d: { s: S, seq: 5, h: 11, offset: 4, delta: '3\n4\n' } }, // overlaps: the tail only (rule 4)
      // Completed, compact: the part without its output fields, each the text of handle 11; state.output gets a handle.
      updated(6, toolPart(completedWithoutOutputs), { copies: { [METADATA_OUTPUT]: 11, [OUTPUT]: 11 }, handles: { [OUTPUT]: 12 } }),
    ], {
      finals: { [`${TOOL} ${METADATA_OUTPUT}`]: final, [`${TOOL} ${OUTPUT}`]: final },
      also: (view, index) => (views[index + 1] = view),
    });

    expect(tool(views[3]!).state).toEqual({ ...running(), metadata: { output: '1\n' } });
    expect(tool(views[2]!).state).toEqual(running()); // the view before the delta is not mutated
    const done = tool(state.view());
    expect(done.state).toEqual({ status: 'completed', input, title: 'Count', output: final, metadata: { output: final }, time: { start: 1, end: 2 } });
    expect(state.position).toEqual({ epoch: E, seq: 6 });
  });

  it('applies a delta on a field whose handle came from the snapshot, in compact and full form, with its gaps', () => {
    const snap = snapshot(E, 3, [assistant(MSG, [toolPart(running({ output: '1\n' }))])], SID,
      { handles: { [TOOL]: { [METADATA_OUTPUT]: 7 } }, gaps: { [TOOL]: { [METADATA_OUTPUT]: [2] } }, sessionHandle: S });
    const state = joinedWith(snap);
    const gapsSeen: (readonly number[] | undefined)[] = [];
    // The snapshot's gap at 2: the gateway lost the text between "1\n" and what follows.
    const pieces = '1\n3\n4\n';
    play(state, [
      { d: { s: S, seq: 4, h: 7, offset: 2, delta: '3\n' } },
      { event: ev(E, 5, 'part.delta', { messageId: MSG, partId: TOOL, field: METADATA_OUTPUT, offset: 4, delta: '4\n', handle: 7 }) },
      // The whole part restates the field: its gaps go.
      updated(6, toolPart(running({ output: final }))),
      { d: { s: S, seq: 7, h: 7, offset: 8, delta: 'done\n' } },
    ], {
      finals: { [`${TOOL} ${METADATA_OUTPUT}`]: `${final}done\n` },
      also: (view, index) => {
        if (index >= 0) gapsSeen.push(view.gaps[TOOL]?.[METADATA_OUTPUT]);
        if (index === 1) expect(fieldText(tool(view), METADATA_OUTPUT)).toBe(pieces);
      },
    });
    expect(gapsSeen).toEqual([[2], [2], undefined, undefined]);
    expect(fieldText(tool(state.view()), METADATA_OUTPUT)).toBe(`${final}done\n`);
  });

  it('records a part.gap of a nested field and rejoins when a delta starts past the text held', () => {
    const state = joinedWith(snapshot(E, 0, [assistant(MSG, [toolPart(running({ output: '1\n' }))])], SID,
      { handles: { [TOOL]: { [METADATA_OUTPUT]: 7 } }, sessionHandle: S }));
    play(state, [{ event: ev(E, 1, 'part.gap', { messageId: MSG, partId: TOOL, field: METADATA_OUTPUT, offset: 2, handle: 7 }) }], {
      finals: { [`${TOOL} ${METADATA_OUTPUT}`]: '1\n2\n' },
    });
    expect(state.view().gaps).toEqual({ [TOOL]: { [METADATA_OUTPUT]: [2] } });
    expect(state.receiveCompact({ s: S, seq: 2, h: 7, offset: 9, delta: 'x' })).toEqual({ type: 'rejoin', since: null, reason: 'delta-gap' });
    expect(fieldText(tool(state.view()), METADATA_OUTPUT)).toBe('1\n');
  });

  it('takes a pure extension\'s part whole, and drops an output that an update lacks (opencode dropped it)', () => {
    const state = joinedWith(snapshot(E, 0, [assistant(MSG, [toolPart(running({ output: '1\n' }))])], SID,
      { handles: { [TOOL]: { [METADATA_OUTPUT]: 7 } }, gaps: { [TOOL]: { [METADATA_OUTPUT]: [1] } }, sessionHandle: S }));
    const counting = (metadata?: Record<string, string>) => toolPart({ ...running(metadata), title: 'Counting' });
    const outputs: (string | undefined)[] = [];
    play(state, [
      // The full form of a pure extension: the whole part, and field, offset and delta besides.
      updated(1, counting({ output: '1\n2\n' }), { field: METADATA_OUTPUT, handle: 7, offset: 2, delta: '2\n' }),
      { event: ev(E, 2, 'part.gap', { messageId: MSG, partId: TOOL, field: METADATA_OUTPUT, offset: 4, handle: 7 }) },
      // An update without the output, and no copies: the output is gone, and its gaps with it (rule 9).
      updated(3, toolPart({ status: 'error', input, error: 'killed', time: { start: 1, end: 2 } })),
    ], {
      finals: { [`${TOOL} ${METADATA_OUTPUT}`]: final },
      also: (view, index) => index >= 0 && outputs.push(fieldText(tool(view), METADATA_OUTPUT)),
    });
    expect(outputs).toEqual(['1\n2\n', '1\n2\n', undefined]);
    expect(state.view().gaps).toEqual({});
    expect(tool(state.view()).state).toEqual({ status: 'error', input, error: 'killed', time: { start: 1, end: 2 } });
  });

  it('rejoins without since when copies name a handle it never heard of', () => {
    const state = joinedWith(snapshot(E, 0, [assistant(MSG, [toolPart(running({ output: '1\n' }))])], SID, { sessionHandle: S }));
    const action = state.receiveEvent(ev(E, 1, 'part.updated', { messageId: MSG, partId: TOOL, part: toolPart(completedWithoutOutputs), copies: { [OUTPUT]: 99 } }));
    expect(action).toEqual({ type: 'rejoin', since: null, reason: 'unknown-handle' });
    expect(tool(state.view()).state.status).toBe('running');
  });
});

describe('pending requests and children of the session and its descendants (client rule 10)', () => {
  const CHILD = 'ses_child1';
  const child = (status: 'busy' | 'idle', title = 'sub task (@general subagent)'): ChildSession =>
    ({ id: CHILD, parentId: SID, title, status: { type: status } });
  const question = (id: string, sessionID: string): QuestionRequest => ({
    id, sessionID, questions: [{ question: 'Which color?', header: 'Color', options: [{ label: 'Red', description: 'r' }, { label: 'Blue', description: 'b' }] }],
  });
  const permission = (id: string, sessionID: string): PermissionRequest => ({ id, sessionID, permission: 'bash', patterns: ['echo hi'] });

  it('adds a child\'s question and permission, drops them on their replies by request id, and replaces children by id', () => {
    const own = question('que_own', SID);
    const state = joinedWith(snapshot(E, 0, [], SID, { questions: [own], children: [] }));
    // The model: what must be pending after each item.
    const pending: [string[], string[], string[]][] = [
      [[], ['que_own'], [CHILD]],
      [[], ['que_own', 'que_child'], [CHILD]],
      [['per_child'], ['que_own', 'que_child'], [CHILD]],
      [['per_child'], ['que_own'], [CHILD]],
      [[], ['que_own'], [CHILD]],
      [[], [], [CHILD]],
      [[], [], [CHILD, 'ses_grandchild']],
      [[], [], [CHILD, 'ses_grandchild']],
    ];
    play(state, [
      { event: ev(E, 1, 'child.updated', { childSessionId: CHILD, child: child('busy') }) },
      { event: ev(E, 2, 'question.asked', { question: question('que_child', CHILD), childSessionId: CHILD }) },
      { event: ev(E, 3, 'permission.asked', { permission: permission('per_child', CHILD), childSessionId: CHILD }) },
      { event: ev(E, 4, 'question.replied', { question: { id: 'que_child', sessionID: CHILD, answers: [['Red']] }, childSessionId: CHILD }) },
      { event: ev(E, 5, 'permission.replied', { requestId: 'per_child', reply: 'once', childSessionId: CHILD }) },
      { event: ev(E, 6, 'question.rejected', { question: { id: 'que_own', sessionID: SID } }) },
      { event: ev(E, 7, 'child.updated', { childSessionId: 'ses_grandchild', child: { id: 'ses_grandchild', parentId: CHILD, title: 'deeper', status: { type: 'busy' } } }) },
      { event: ev(E, 8, 'child.updated', { childSessionId: CHILD, child: child('idle', 'sub task done') }) },
    ], {
      also: (view, index) => {
        const [permissions, questions, children] = index < 0 ? [[], ['que_own'], []] : pending[index]!;
        expect([view.permissions.map((p) => p.id), view.questions.map((q) => q.id), view.children.map((c) => c.id)]).toEqual([permissions, questions, children]);
      },
    });

    const view = state.view();
    expect(view.children[0]).toEqual(child('idle', 'sub task done')); // replaced in place, order kept
    expect(view.questions).toEqual([]);
  });

  it('takes a snapshot\'s pending requests and children, and keeps the identity of lists nothing changed', () => {
    const state = joinedWith(snapshot(E, 2, [], SID, {
      permissions: [permission('per_child', CHILD)], questions: [question('que_child', CHILD)], children: [child('busy')],
    }));
    const before = state.view();
    expect(before.questions[0]!.sessionID).toBe(CHILD);
    play(state, [{ event: ev(E, 3, 'status', { status: { type: 'busy' } }) }]);
    const after = state.view();
    expect([after.permissions, after.questions, after.children]).toEqual([before.permissions, before.questions, before.children]);
    expect(after.permissions).toBe(before.permissions);
    expect(after.questions).toBe(before.questions);
    expect(after.children).toBe(before.children);

    // A new epoch's snapshot replaces them all.
    play(state, [{ snapshot: snapshot(E + 1, 0, [], SID, { permissions: [], questions: [], children: [child('idle')] }) }]);
    expect([state.view().permissions, state.view().questions, state.view().children]).toEqual([[], [], [child('idle')]]);
  });
});

describe('earlier messages (client rule 11)', () => {
  const id = (n: number) => `msg_${String(n).padStart(4, '0')}`;
  const message = (n: number): MessageWithParts => ({
    info: { id: id(n), sessionID: SID, role: n % 2 ? 'user' : 'assistant' },
    parts: [textPart(`prt_${String(n).padStart(4, '0')}`, `text ${n}`, id(n))],
  });
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => message(from + i));
  const ids = (view: SessionView) => view.messages.map((m) => m.info.id);
  const idsOf = (from: number, to: number) => range(from, to).map((m) => m.info.id);

  it('pages earlier messages in before the window, and keeps them across a snapshot whose window it reaches', () => {
    const state = joinedWith(snapshot(E, 5, range(21, 40), SID, { earlier: { cursor: 'before-21' } }));
    expect(state.view().earlier).toEqual({ cursor: 'before-21' });

    expect(state.applyEarlier('before-21', { messages: range(11, 20), earlier: { cursor: 'before-11' } })).toBe(true);
    expect(ids(state.view())).toEqual(idsOf(11, 40));
    expect(state.view().earlier).toEqual({ cursor: 'before-11' });
    // A page fetched with a cursor the view has left is not added.
    expect(state.applyEarlier('before-21', { messages: range(11, 20), earlier: { cursor: 'before-11' } })).toBe(false);

    const kept = state.view().messages[0];
    play(state, [
      // An event may still update a paged message.
      updated(6, textPart('prt_0015', 'text 15, edited', id(15))),
      // A new epoch: the window moved on, its first message is one this state holds.
      { snapshot: snapshot(E + 1, 0, range(31, 42), SID, { earlier: { cursor: 'before-31' } }) },
      { event: ev(E + 1, 1, 'message.updated', { messageId: id(43), info: { id: id(43), role: 'user' } }) },
    ], {
      also: (view, index) => {
        if (index === 1) {
          expect(ids(view)).toEqual(idsOf(11, 42));
          expect(view.earlier).toEqual({ cursor: 'before-11' }); // the page's, not the snapshot's
        }
      },
    });
    expect(state.view().messages[0]).toBe(kept);
    expect(fieldText(state.view().messages[4]!.parts[0], 'text')).toBe('text 15, edited');
    expect(ids(state.view())).toEqual([...idsOf(11, 42), id(43)]);

    // Paging on from the kept cursor reaches the start.
    expect(state.applyEarlier('before-11', { messages: range(1, 10) })).toBe(true);
    expect(ids(state.view())).toEqual([...idsOf(1, 42), id(43)]);
    expect(state.view().earlier).toBeNull();
  });

  it('drops paged messages when a new window does not reach them, and all when nothing is older', () => {
    const state = joinedWith(snapshot(E, 0, range(21, 40), SID, { earlier: { cursor: 'before-21' } }));
    expect(state.applyEarlier('before-21', { messages: range(11, 20), earlier: { cursor: 'before-11' } })).toBe(true);
    play(state, [
      // Many turns later (a reconnect after a long time): nothing held reaches the new window.
      { snapshot: snapshot(E + 1, 0, range(61, 80), SID, { earlier: { cursor: 'before-61' } }) },
    ]);
    expect(ids(state.view())).toEqual(idsOf(61, 80));
    expect(state.view().earlier).toEqual({ cursor: 'before-61' });
    // The page of the old cursor, arriving late, is not added.
    expect(state.applyEarlier('before-11', { messages: range(1, 10) })).toBe(false);

    play(state, [{ snapshot: snapshot(E + 2, 0, range(61, 81), SID) }]);
    expect(ids(state.view())).toEqual(idsOf(61, 81));
    expect(state.view().earlier).toBeNull();
  });

  it('fills a message an event created before its page arrived, keeping what the event brought', () => {
    const state = joinedWith(snapshot(E, 0, range(21, 40), SID, { earlier: { cursor: 'before-21' } }));
    play(state, [updated(1, textPart('prt_0019', 'new part of an old message', id(19)))]);
    expect(state.view().messages[0]!.info.role).toBeUndefined();
    expect(state.applyEarlier('before-21', { messages: range(11, 20) })).toBe(true);
    const message19 = state.view().messages.find((m) => m.info.id === id(19))!;
    expect(message19.info.role).toBe('user');
    expect(message19.parts.map((p) => [p.id, fieldText(p, 'text')])).toEqual([['prt_0019', 'new part of an old message']]);
  });
});
