import type {
  JoinResult,
  MessageWithParts,
  Part,
  SessionEvent,
  SessionListChange,
  SessionSnapshot,
  TextPart,
} from '../src/contracts.js';
import type { HubTransport } from '../src/transport.js';

export const SID = 'ses_test1';
export const MSG = 'msg_0002';
export const PRT = 'prt_0003';

/** An event of SID as the hub sends it; `fields` are the type-specific members (any type, known or not). */
export function ev(epoch: number, seq: number, type: string, fields: Record<string, unknown> = {}, sessionId = SID): SessionEvent {
  return { upstream: 'default', sessionId, epoch, seq, type, ...fields } as SessionEvent;
}

/** The text of a part (text and reasoning parts have one). */
export function partText(part: Part | undefined): string | undefined {
  return part?.type === 'text' || part?.type === 'reasoning' || part?.type === undefined ? part?.text : undefined;
}

export function delta(epoch: number, seq: number, offset: number, text: string, partId = PRT, messageId = MSG): SessionEvent {
  return ev(epoch, seq, 'part.delta', { messageId, partId, field: 'text', offset, delta: text });
}

export function textPart(id: string, text: string | undefined, messageId = MSG, extra: Partial<TextPart> = {}): TextPart {
  const part: TextPart = { id, messageID: messageId, sessionID: SID, type: 'text', ...extra };
  if (text !== undefined) part.text = text;
  return part;
}

export function partUpdated(epoch: number, seq: number, part: Part): SessionEvent {
  return ev(epoch, seq, 'part.updated', { messageId: part.messageID, partId: part.id, part });
}

export function snapshot(epoch: number, seq: number, messages: MessageWithParts[] = [], sessionId = SID,
  extra: Partial<SessionSnapshot> = {}): SessionSnapshot {
  return {
    upstream: 'default',
    sessionId,
    epoch,
    seq,
    session: { id: sessionId, title: 'Test session' },
    messages,
    status: { type: 'idle' },
    permissions: [],
    todos: null,
    metadata: null,
    ...extra,
  };
}

export function snapshotResult(snap: SessionSnapshot): JoinResult {
  return { upstream: snap.upstream, sessionId: snap.sessionId, epoch: snap.epoch, seq: snap.seq, recovered: false, events: null, snapshot: snap };
}

export function recoveredResult(epoch: number, seq: number, events: SessionEvent[], sessionId = SID): JoinResult {
  return { upstream: 'default', sessionId, epoch, seq, recovered: true, events, snapshot: null };
}

export function assistant(id: string, parts: Part[] = []): MessageWithParts {
  return { info: { id, sessionID: SID, role: 'assistant' }, parts };
}

interface Invocation {
  method: string;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** A HubTransport whose server side the test plays by hand. */
export class FakeTransport implements HubTransport {
  readonly invocations: Invocation[] = [];
  startCalls = 0;
  /** What start() does; by default it succeeds. */
  startImpl: () => Promise<void> = () => Promise.resolve();
  private eventHandlers: ((e: SessionEvent) => void)[] = [];
  private snapshotHandlers: ((s: SessionSnapshot) => void)[] = [];
  private listHandlers: ((c: SessionListChange) => void)[] = [];
  private reconnectingHandlers: ((e?: Error) => void)[] = [];
  private retryHandlers: ((attempt: number) => void)[] = [];
  private reconnectedHandlers: (() => void)[] = [];
  private closeHandlers: ((e?: Error) => void)[] = [];

  start(): Promise<void> {
    this.startCalls++;
    return this.startImpl();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  invoke<T>(method: string, ...args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.invocations.push({ method, args, resolve: resolve as (v: unknown) => void, reject });
    });
  }

  onSessionEvent(handler: (e: SessionEvent) => void): void { this.eventHandlers.push(handler); }
  onSessionSnapshot(handler: (s: SessionSnapshot) => void): void { this.snapshotHandlers.push(handler); }
  onSessionListChanged(handler: (c: SessionListChange) => void): void { this.listHandlers.push(handler); }
  onReconnecting(handler: (e?: Error) => void): void { this.reconnectingHandlers.push(handler); }
  onRetry(handler: (attempt: number) => void): void { this.retryHandlers.push(handler); }
  onReconnected(handler: () => void): void { this.reconnectedHandlers.push(handler); }
  onClose(handler: (e?: Error) => void): void { this.closeHandlers.push(handler); }

  // --- the test's side -----------------------------------------------------------------------------------------

  push(event: SessionEvent): void { this.eventHandlers.forEach((h) => h(event)); }
  pushSnapshot(snap: SessionSnapshot): void { this.snapshotHandlers.forEach((h) => h(snap)); }
  pushListChange(change: SessionListChange): void { this.listHandlers.forEach((h) => h(change)); }

  /** The connection drops: pending calls fail as SignalR fails them, then reconnecting starts. */
  drop(): void {
    for (const call of this.invocations.splice(0)) {
      call.reject(new Error("Invocation canceled due to the underlying connection being closed."));
    }

    this.reconnectingHandlers.forEach((h) => h(new Error('WebSocket closed with status code: 1006')));
  }

  retry(attempt: number): void { this.retryHandlers.forEach((h) => h(attempt)); }
  reconnected(): void { this.reconnectedHandlers.forEach((h) => h()); }
  close(): void {
    for (const call of this.invocations.splice(0)) {
      call.reject(new Error("Invocation canceled due to the underlying connection being closed."));
    }

    this.closeHandlers.forEach((h) => h(new Error('closed')));
  }

  /** Removes and returns the pending invocations of `method`. */
  take(method: string): Invocation[] {
    const taken = this.invocations.filter((i) => i.method === method);
    for (const t of taken) this.invocations.splice(this.invocations.indexOf(t), 1);
    return taken;
  }
}

/** Lets promise callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
