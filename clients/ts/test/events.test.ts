/**
 * Typed, discriminated events and parts, from the built package: a `switch` on `type` is exhaustive (checked by tsc:
 * `npm test` type-checks this file), and types a newer gateway or opencode may send become typed fallbacks that keep
 * their members instead of breaking the client.
 */
import { describe, expect, it } from 'vitest';
import {
  createGatewayClient,
  toPart,
  toSessionEvent,
  toSessionSnapshot,
  type Part,
  type SessionEvent,
} from '@opencode-gateway/client';
import { ev, FakeTransport, partUpdated, settle, snapshot, snapshotResult, textPart } from './helpers.js';

const E = 1_700_000_000_000_001;

/** Compiles only while every event type is handled and each narrows to its own members. */
function describeEvent(event: SessionEvent): string {
  switch (event.type) {
    case 'part.updated':
      return `part ${event.partId} is ${describePart(event.part)}`;
    case 'part.delta':
      return `${event.field}[${event.offset}] += ${event.delta}`;
    case 'part.gap':
      return `${event.field} gap at ${event.offset}`;
    case 'part.removed':
      return `removed ${event.partId}`;
    case 'message.updated':
      return `${event.info.role ?? 'placeholder'} message ${event.messageId}`;
    case 'message.removed':
      return `removed ${event.messageId}`;
    case 'status':
      return event.status.type === 'retry' ? `retry #${event.status.attempt}` : event.status.type;
    case 'error':
      return `error ${event.error.name}`;
    case 'permission.asked':
      return `asks ${event.permission.permission}`;
    case 'permission.replied':
      return `${event.requestId}: ${event.reply}`;
    case 'question.asked':
      return `asks ${event.question.questions.map((q) => q.question).join(' ')}`;
    case 'question.replied':
      return `${event.question.id}: ${JSON.stringify(event.question.answers)}`;
    case 'question.rejected':
      return `${event.question.id} dismissed`;
    case 'child.updated':
      return `child ${event.child.title ?? event.childSessionId} ${event.child.status.type}`;
    case 'todo.updated':
      return `${event.todos.length} todos`;
    case 'session.updated':
      return `title ${event.info.title}`;
    case 'session.deleted':
      return 'deleted';
    case 'epoch.started':
      return `epoch ${event.epoch}`;
    case 'unknown':
      return `unknown ${event.wireType}`;
    default: {
      const unhandled: never = event;
      return unhandled;
    }
  }
}

function describePart(part: Part): string {
  switch (part.type) {
    case 'text':
    case 'reasoning':
      return `${part.type} "${part.text ?? ''}"`;
    case 'tool':
      return `${part.tool} ${part.state.status === 'completed' ? `→ ${part.state.output}` : part.state.status}`;
    case 'file':
      return `file ${part.mime}`;
    case 'step-start':
    case 'step-finish':
    case 'snapshot':
    case 'patch':
    case 'agent':
    case 'retry':
    case 'compaction':
    case 'subtask':
      return part.type;
    case undefined:
      return 'placeholder';
    case 'unknown':
      return `unknown ${part.wireType}`;
    default: {
      const unhandled: never = part;
      return unhandled;
    }
  }
}

describe('typed events and parts', () => {
  it('narrows each event type to its members', () => {
    expect(describeEvent(toSessionEvent(ev(E, 1, 'part.delta', { messageId: 'm', partId: 'p', field: 'text', offset: 3, delta: 'x' })))).toBe('text[3] += x');
    expect(describeEvent(toSessionEvent(ev(E, 2, 'status', { status: { type: 'retry', attempt: 2, message: 'rate limited', next: 5 } })))).toBe('retry #2');
    const tool = { id: 'p', messageID: 'm', type: 'tool', tool: 'bash', callID: 'c', state: { status: 'completed', input: {}, output: 'ok' } };
    expect(describeEvent(toSessionEvent(ev(E, 3, 'part.updated', { messageId: 'm', partId: 'p', part: tool })))).toBe('part p is bash → ok');
  });

  it('turns an event of an unknown type into a typed fallback that keeps its members and its seq', () => {
    const event = toSessionEvent(ev(E, 7, 'session.compacted', { summary: 'short' }));
    expect(event).toEqual({ upstream: 'default', sessionId: 'ses_test1', epoch: E, seq: 7, type: 'unknown', wireType: 'session.compacted', summary: 'short' });
    expect(describeEvent(event)).toBe('unknown session.compacted');
    expect(toSessionEvent(event)).toBe(event); // idempotent
  });

  it('turns a part of an unknown type into a typed fallback, in events and snapshots', () => {
    const hologram = { id: 'prt_9', messageID: 'msg_1', type: 'hologram', frames: 3 } as unknown as Part;
    expect(toPart(hologram)).toEqual({ id: 'prt_9', messageID: 'msg_1', type: 'unknown', wireType: 'hologram', frames: 3 });
    const event = toSessionEvent(partUpdated(E, 1, hologram));
    expect(event.type === 'part.updated' && describePart(event.part)).toBe('unknown hologram');
    const snap = toSessionSnapshot(snapshot(E, 1, [{ info: { id: 'msg_1', role: 'assistant' }, parts: [textPart('prt_1', 'a', 'msg_1'), hologram] }]));
    expect(snap.messages[0]!.parts.map(describePart)).toEqual(['text "a"', 'unknown hologram']);
  });

  it('a client fed unknown event and part types keeps applying the stream', async () => {
    const transport = new FakeTransport();
    const client = createGatewayClient({ url: 'http://gateway.invalid/hubs/session', transport, scheduleFlush: (f) => f() });
    const handle = client.watch('ses_test1');
    await settle();
    transport.take('Join')[0]!.resolve(snapshotResult(snapshot(E, 0)));
    await settle();
    transport.push(ev(E, 1, 'session.compacted', { summary: 'short' }));
    transport.push(partUpdated(E, 2, { id: 'prt_9', messageID: 'msg_1', type: 'hologram' } as unknown as Part));
    transport.push(ev(E, 3, 'part.delta', { messageId: 'msg_1', partId: 'prt_1', field: 'text', offset: 0, delta: 'still works' }));
    expect(handle.view.seq).toBe(3);
    expect(handle.view.messages[0]!.parts.map(describePart)).toEqual(['placeholder', 'unknown hologram']);
    expect(transport.invocations.filter((i) => i.method === 'Join')).toHaveLength(0); // no rejoin: nothing was missing
    await client.stop();
  });
});
