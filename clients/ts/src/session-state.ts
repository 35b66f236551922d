/**
 * The client-side state machine of one watched session: applies join results, snapshots, events and compact deltas,
 * drops duplicates, detects gaps and epoch changes, and buffers events while a Join is in flight. Pure: no I/O, no timers.
 * When it needs the transport to (re)join, a method returns a `RejoinAction`; the caller sends `Join` with its `since`
 * and hands the result to `completeJoin` (or calls `failJoin`). Until then incoming events are buffered here.
 */
import {
  SessionEventTypes,
  StreamedFields,
  type ChildSession,
  type CompactDelta,
  type EarlierMessages,
  type JoinResult,
  type MessageInfo,
  type MessagePage,
  type MessageWithParts,
  type OpencodeError,
  type Part,
  type PartUpdatedEvent,
  type PermissionRequest,
  type QuestionRequest,
  type SessionEvent,
  type SessionInfo,
  type SessionMetadata,
  type SessionSnapshot,
  type SessionStatus,
  type StreamPosition,
  type Todo,
} from './contracts.js';

/** One message with its parts, parts ordered by id. */
export interface MessageView {
  readonly info: MessageInfo;
  readonly parts: readonly Part[];
}

/** What a watcher sees of a session. Treat as read-only: a new object is made whenever something changed, and
 * unchanged messages keep their identity (cheap memoisation in UI frameworks). */
export interface SessionView {
  readonly sessionId: string;
  readonly upstream: string | null;
  /** The position this view is consistent with (0/0 before the first join result). */
  readonly epoch: number;
  readonly seq: number;
  /** True once a join result (snapshot or recovered events) was applied. */
  readonly ready: boolean;
  readonly session: SessionInfo | null;
  /** Ordered by message id (opencode ids sort by time). */
  readonly messages: readonly MessageView[];
  readonly status: SessionStatus;
  /**
   * Pending permission requests of the session and of its descendants (a request's `sessionID` says whose): answer
   * each one with this session's id.
   */
  readonly permissions: readonly PermissionRequest[];
  /** Pending questions of the session and of its descendants, answered or dismissed with this session's id. */
  readonly questions: readonly QuestionRequest[];
  /** The descendant sessions (subagents', any depth), oldest first. */
  readonly children: readonly ChildSession[];
  /** Set while older messages than `messages[0]` exist: `loadEarlier` pages them in. */
  readonly earlier: EarlierMessages | null;
  readonly todos: readonly Todo[] | null;
  readonly metadata: SessionMetadata | null;
  /** The last `error` event of the session (cleared when it becomes busy again). */
  readonly error?: OpencodeError | null;
  /** Why joining the session failed (e.g. session_not_found), when it did. */
  readonly joinError?: { code: string; message: string } | null;
  /** The session was deleted. */
  readonly deleted: boolean;
  /**
   * Where a part's text is not continuous: part id → field path → sorted offsets. Show a mark (e.g. `…`) at each one:
   * the text before it is what opencode streamed, what follows came after text the gateway never received.
   */
  readonly gaps: Readonly<Record<string, Readonly<Record<string, readonly number[]>>>>;
}

export type RejoinReason =
  /** An event's seq skipped one or more events: rejoin with since = current position. */
  | 'gap'
  /** A delta's offset is past the text we have: rejoin without since (the log cannot bring that text back). */
  | 'delta-gap'
  /** An event of another epoch: rejoin without since (fresh snapshot). */
  | 'epoch'
  /** Recovered events did not bring us to the promised position: rejoin without since. */
  | 'recovery-failed'
  /**
   * A compact delta or a `copies` named a part field handle never introduced: our state is not the gateway's; rejoin
   * without since.
   */
  | 'unknown-handle';

export interface RejoinAction {
  readonly type: 'rejoin';
  /** What to send as `since`: null asks for a snapshot. */
  readonly since: StreamPosition | null;
  readonly reason: RejoinReason;
}

type Buffered =
  | { kind: 'event'; event: SessionEvent }
  | { kind: 'snapshot'; snapshot: SessionSnapshot }
  | { kind: 'compact'; delta: CompactDelta };

/** The part field a handle names. */
interface PartField {
  readonly messageId: string;
  readonly partId: string;
  /** A path into the part: `text`, `state.metadata.output`, `state.output`. */
  readonly field: string;
}

/** What applying an event's content came to: done, or why the state cannot take it (the caller rejoins). */
type Applied = 'applied' | 'offset-past-end' | 'unknown-handle';

const idleStatus: SessionStatus = { type: 'idle' };
const streamedFieldPaths: readonly string[] = Object.values(StreamedFields);

/** The string at a dot-separated path of a part (`text`, `state.metadata.output`), if there is one. */
export function fieldText(part: Part | undefined, field: string): string | undefined {
  let value: unknown = part;
  for (const key of field.split('.')) {
    if (typeof value !== 'object' || value === null) {
      return undefined;
    }

    value = (value as Record<string, unknown>)[key];
  }

  return typeof value === 'string' ? value : undefined;
}

/** A copy of `part` whose `field` path holds `text`: the objects on the way are copied (created when missing), never mutated. */
function withFieldText(part: Part, field: string, text: string): Part {
  const set = (target: unknown, keys: readonly string[]): Record<string, unknown> => {
    const copy = typeof target === 'object' && target !== null ? { ...(target as Record<string, unknown>) } : {};
    const [key, ...rest] = keys;
    copy[key!] = rest.length === 0 ? text : set(copy[key!], rest);
    return copy;
  };
  return set(part, field.split('.')) as unknown as Part;
}

/** `list` with `item` in the place of the one with its id, or appended. */
function upsertById<T extends { readonly id: string }>(list: readonly T[], item: T): readonly T[] {
  const index = list.findIndex((x) => x.id === item.id);
  return index < 0 ? [...list, item] : list.map((x, i) => (i === index ? item : x));
}

/** `list` without the item of `id` (`list` itself when it has none). */
function withoutId<T extends { readonly id: string }>(list: readonly T[], id: string): readonly T[] {
  return list.some((x) => x.id === id) ? list.filter((x) => x.id !== id) : list;
}

/** Inserts `id` into the sorted array unless present; ids mostly arrive in order, so check the end first. */
function insertSorted(ids: string[], id: string): void {
  const last = ids[ids.length - 1];
  if (last === undefined || last < id) {
    ids.push(id);
    return;
  }

  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }

  if (ids[lo] !== id) {
    ids.splice(lo, 0, id);
  }
}

function removeSorted(ids: string[], id: string): void {
  const index = ids.indexOf(id);
  if (index >= 0) {
    ids.splice(index, 1);
  }
}

class MessageEntry {
  readonly partIds: string[] = [];
  readonly parts = new Map<string, Part>();
  private cached: MessageView | null = null;

  constructor(public info: MessageInfo) {}

  setInfo(info: MessageInfo): void {
    this.info = info;
    this.cached = null;
  }

  setPart(part: Part): void {
    if (!this.parts.has(part.id)) {
      insertSorted(this.partIds, part.id);
    }

    this.parts.set(part.id, part);
    this.cached = null;
  }

  removePart(partId: string): boolean {
    if (!this.parts.delete(partId)) {
      return false;
    }

    removeSorted(this.partIds, partId);
    this.cached = null;
    return true;
  }

  view(): MessageView {
    return (this.cached ??= { info: this.info, parts: this.partIds.map((id) => this.parts.get(id)!) });
  }
}

export class SessionState {
  readonly sessionId: string;
  private upstream: string | null = null;
  private epoch = 0;
  private seq = 0;
  private hasState = false;
  private readonly messages = new Map<string, MessageEntry>();
  private readonly messageIds: string[] = [];
  private session: SessionInfo | null = null;
  private status: SessionStatus = idleStatus;
  // Replaced, never mutated: a view keeps the arrays it was given, and unchanged ones keep their identity.
  private permissions: readonly PermissionRequest[] = [];
  private questions: readonly QuestionRequest[] = [];
  private children: readonly ChildSession[] = [];
  /** Where the messages older than the oldest one held begin (null: none are older). */
  private earlier: EarlierMessages | null = null;
  /** part id → field → sorted gap offsets */
  private gaps: Record<string, Record<string, number[]>> = {};
  private todos: Todo[] | null = null;
  private metadata: SessionMetadata | null = null;
  private error: OpencodeError | null = null;
  private joinError: { code: string; message: string } | null = null;
  private deleted = false;

  private joining = false;
  private buffer: Buffered[] = [];
  /** The `s` of this session's compact deltas on the current connection (null: none known, or the full form). */
  private currentSessionHandle: number | null = null;
  /** Part field handles of this epoch (from the snapshot's `handles` and events' `handle`). */
  private readonly partHandles = new Map<number, PartField>();

  private version = 0;
  private cachedView: SessionView | null = null;
  private cachedVersion = -1;

  constructor(sessionId: string) {
    this.sessionId = sessionId;
  }

  /** The last applied event's position, or null before the first join result. */
  get position(): StreamPosition | null {
    return this.hasState ? { epoch: this.epoch, seq: this.seq } : null;
  }

  /** A Join is in flight (or requested): incoming events are being buffered. */
  get isJoining(): boolean {
    return this.joining;
  }

  /** Grows by one with every change of the view. */
  get changeCount(): number {
    return this.version;
  }

  /** The `s` of this session's compact deltas on the current connection, when known. */
  get sessionHandle(): number | null {
    return this.currentSessionHandle;
  }

  /** A new connection: its compact deltas will name the session with a handle its join result gives. */
  forgetSessionHandle(): void {
    this.currentSessionHandle = null;
  }

  /** Number of items buffered while joining (for diagnostics and tests). */
  get bufferedCount(): number {
    return this.buffer.length;
  }

  /**
   * Marks a Join as sent and returns the `since` to send with it: the current position, or null for a snapshot
   * (`fresh`, or nothing applied yet). Events received until `completeJoin`/`failJoin` are buffered.
   */
  beginJoin(fresh = false): StreamPosition | null {
    this.joining = true;
    return fresh ? null : this.position;
  }

  /** Applies a Join's result, then the events buffered meanwhile. May ask for another rejoin. */
  completeJoin(result: JoinResult): RejoinAction | null {
    const buffered = this.buffer;
    this.buffer = [];
    this.joining = false;
    if (this.joinError) {
      this.joinError = null;
      this.touch();
    }

    if (result.recovered) {
      if (!this.hasState || result.epoch !== this.epoch) {
        return this.requestRejoin(null, 'recovery-failed', buffered);
      }

      this.upstream = result.upstream;
      this.currentSessionHandle = result.sessionHandle ?? null;
      const events = result.events ?? [];
      for (let i = 0; i < events.length; i++) {
        const action = this.applyEvent(events[i]!, true);
        if (action) {
          // Whatever the recovered list still held is newer than our position: keep it for after the rejoin.
          this.buffer.push(...events.slice(i + 1).map((event): Buffered => ({ kind: 'event', event })), ...buffered);
          return action;
        }
      }

      // The events must bring us to result.seq (events buffered meanwhile may also cover the tail).
      const action = this.drain(buffered);
      if (action || this.epoch !== result.epoch || this.seq >= result.seq) {
        return action;
      }

      return this.requestRejoin(null, 'recovery-failed');
    } else if (result.snapshot) {
      this.replaceWith(result.snapshot);
      this.currentSessionHandle = result.sessionHandle ?? result.snapshot.sessionHandle ?? null;
    } else {
      // Not recovered and no snapshot: the server broke its contract. Keep what we have; a snapshot join may help.
      return this.requestRejoin(null, 'recovery-failed', buffered);
    }

    return this.drain(buffered);
  }

  /** The Join failed: stop buffering (the next Join with `since` recovers what was dropped). */
  failJoin(error?: { code: string; message: string }): void {
    this.joining = false;
    this.buffer = [];
    if (error) {
      this.joinError = { code: error.code, message: error.message };
      this.touch();
    }
  }

  /** A `SessionEvent` from the hub. */
  receiveEvent(event: SessionEvent): RejoinAction | null {
    if (event.sessionId !== this.sessionId) {
      return null;
    }

    if (this.joining) {
      this.buffer.push({ kind: 'event', event });
      return null;
    }

    if (!this.hasState) {
      return null; // not joined: nothing to apply it to
    }

    return this.applyEvent(event, false);
  }

  /**
   * A compact delta (`D`) that may be this session's: applied when its `s` is this session's handle (one of another
   * `s` is of another session, or of an epoch left behind, and is ignored), buffered while a Join is in flight.
   */
  receiveCompact(delta: CompactDelta): RejoinAction | null {
    if (this.joining) {
      this.buffer.push({ kind: 'compact', delta });
      return null;
    }

    if (!this.hasState || delta.s !== this.currentSessionHandle) {
      return null;
    }

    return this.applyCompact(delta);
  }

  /** A `SessionSnapshot` pushed by the hub (continuity lost upstream): replaces the state when it is newer. */
  receiveSnapshot(snapshot: SessionSnapshot): RejoinAction | null {
    if (snapshot.sessionId !== this.sessionId) {
      return null;
    }

    if (this.joining) {
      this.buffer.push({ kind: 'snapshot', snapshot });
      return null;
    }

    if (!this.hasState || snapshot.epoch > this.epoch || (snapshot.epoch === this.epoch && snapshot.seq > this.seq)) {
      this.replaceWith(snapshot);
      this.currentSessionHandle = snapshot.sessionHandle ?? this.currentSessionHandle;
    }

    return null;
  }

  /**
   * Adds a page of `LoadEarlier`'s messages, fetched with `cursor` (the view's `earlier.cursor` then), before the
   * messages held, and takes the page's `earlier`. False when the view no longer starts where `cursor` points (a
   * snapshot replaced it meanwhile): nothing is added, page again from the view's `earlier`.
   */
  applyEarlier(cursor: string, page: MessagePage): boolean {
    if (!this.hasState || this.earlier?.cursor !== cursor) {
      return false;
    }

    for (const message of page.messages) {
      this.addPagedMessage(message);
    }

    this.earlier = page.earlier ?? null;
    this.touch();
    return true;
  }

  /** Sets the gateway metadata (e.g. after UpdateMetadata). */
  setMetadata(metadata: SessionMetadata | null): void {
    this.metadata = metadata;
    this.touch();
  }

  /** The current view; the same object until something changes. */
  view(): SessionView {
    if (this.cachedView && this.cachedVersion === this.version) {
      return this.cachedView;
    }

    this.cachedView = {
      sessionId: this.sessionId,
      upstream: this.upstream,
      epoch: this.epoch,
      seq: this.seq,
      ready: this.hasState,
      session: this.session,
      messages: this.messageIds.map((id) => this.messages.get(id)!.view()),
      status: this.status,
      permissions: this.permissions,
      questions: this.questions,
      children: this.children,
      earlier: this.earlier,
      todos: this.todos,
      metadata: this.metadata,
      error: this.error,
      joinError: this.joinError,
      deleted: this.deleted,
      gaps: this.gaps,
    };
    this.cachedVersion = this.version;
    return this.cachedView;
  }

  // -------------------------------------------------------------------------------------------------------------

  private drain(items: Buffered[]): RejoinAction | null {
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const action =
        item.kind === 'event'
          ? this.receiveEvent(item.event)
          : item.kind === 'compact'
            ? this.receiveCompact(item.delta)
            : this.receiveSnapshot(item.snapshot);
      if (action) {
        this.buffer.push(...items.slice(i + 1));
        return action;
      }
    }

    return null;
  }

  /** Starts buffering (the caller is told to rejoin); `pending` are items to re-examine after the join. */
  private requestRejoin(since: StreamPosition | null, reason: RejoinReason, pending: Buffered[] = []): RejoinAction {
    this.joining = true;
    this.buffer.push(...pending);
    return { type: 'rejoin', since, reason };
  }

  private applyEvent(event: SessionEvent, fromRecovery: boolean): RejoinAction | null {
    if (event.epoch !== this.epoch) {
      return this.requestRejoin(null, 'epoch', [{ kind: 'event', event }]);
    }

    if (event.seq <= this.seq) {
      return null; // duplicate
    }

    if (event.seq > this.seq + 1) {
      // The server promised recovered events without gaps: if they have one, `since` will not help.
      return fromRecovery
        ? this.requestRejoin(null, 'recovery-failed', [{ kind: 'event', event }])
        : this.requestRejoin(this.position, 'gap', [{ kind: 'event', event }]);
    }

    this.noteHandles(event);
    const applied = this.applyContent(event);
    if (applied === 'unknown-handle') {
      return this.requestRejoin(null, 'unknown-handle');
    }

    if (applied === 'offset-past-end') {
      return this.requestRejoin(null, 'delta-gap', [{ kind: 'event', event }]);
    }

    this.seq = event.seq;
    this.touch();
    return null;
  }

  private applyContent(event: SessionEvent): Applied {
    switch (event.type) {
      case SessionEventTypes.PartDelta:
        return this.applyDeltaTo(event.messageId ?? '', event.partId ?? '', event.field ?? StreamedFields.Text, event.offset, event.delta ?? '');
      case SessionEventTypes.PartUpdated:
        return this.applyPartUpdated(event);
      default:
        this.applyOther(event);
        return 'applied';
    }
  }

  /** A compact delta of this session's epoch: the seq rules of any event, then the delta on the field `h` names. */
  private applyCompact(compact: CompactDelta): RejoinAction | null {
    if (compact.seq <= this.seq) {
      return null; // duplicate
    }

    if (compact.seq > this.seq + 1) {
      return this.requestRejoin(this.position, 'gap', [{ kind: 'compact', delta: compact }]);
    }

    const target = this.partHandles.get(compact.h);
    if (!target) {
      return this.requestRejoin(null, 'unknown-handle');
    }

    if (this.applyDeltaTo(target.messageId, target.partId, target.field, compact.offset, compact.delta) !== 'applied') {
      return this.requestRejoin(null, 'delta-gap', [{ kind: 'compact', delta: compact }]);
    }

    this.seq = compact.seq;
    this.touch();
    return null;
  }

  /**
   * Remembers the part fields an event's handles name (compact deltas name a field by its handle alone): its `handle`
   * (of `field`, else of `text`) and a tool part's `handles`.
   */
  private noteHandles(event: SessionEvent): void {
    if (event.type !== SessionEventTypes.PartUpdated && event.type !== SessionEventTypes.PartDelta && event.type !== SessionEventTypes.PartGap) {
      return;
    }

    const { messageId, partId } = event;
    if (typeof event.handle === 'number') {
      this.partHandles.set(event.handle, { messageId, partId, field: event.field ?? StreamedFields.Text });
    }

    if (event.type === SessionEventTypes.PartUpdated) {
      for (const [field, handle] of Object.entries(event.handles ?? {})) {
        this.partHandles.set(handle, { messageId, partId, field });
      }
    }
  }

  /** Puts a positioned delta into a part's field (client rule 4); `offset-past-end` when text before it is missing. */
  private applyDeltaTo(messageId: string, partId: string, field: string, eventOffset: number | undefined, delta: string): Applied {
    const entry = this.ensureMessage(messageId);
    const part = entry.parts.get(partId);
    const current = fieldText(part, field) ?? '';
    const offset = eventOffset ?? current.length;

    let text: string;
    if (offset === current.length) {
      text = current + delta;
    } else if (offset + delta.length <= current.length) {
      return 'applied'; // already have it
    } else if (offset < current.length) {
      text = current + delta.slice(current.length - offset);
    } else {
      return 'offset-past-end';
    }

    entry.setPart(withFieldText(part ?? ({ id: partId, messageID: messageId, type: undefined } as Part), field, text));
    return 'applied';
  }

  /**
   * Client rule 9: the part replaces the one held, except that without `text` it keeps the text held, and a field
   * `copies` names that it lacks takes the text of that handle (read before replacing). Any other streamed field it
   * lacks is gone (opencode dropped it); one it carries is restated whole. Either way that field's gaps go. (A pure
   * extension's `field`/`delta` need nothing more: its part carries the field whole, or it arrives as `D`.)
   */
  private applyPartUpdated(event: PartUpdatedEvent): Applied {
    const part = event.part;
    if (!part) {
      return 'applied';
    }

    const partId = event.partId ?? part.id;
    const messageId = event.messageId ?? part.messageID;
    const copies = this.readCopies(event.copies);
    if (copies === null) {
      return 'unknown-handle';
    }

    const entry = this.ensureMessage(messageId);
    const existing = entry.parts.get(partId);
    let next = { ...part, id: partId, messageID: messageId } as Part;
    for (const field of new Set([...streamedFieldPaths, ...copies.keys()])) {
      const lacked = fieldText(part, field) === undefined;
      const copy = copies.get(field);
      const heldText = field === StreamedFields.Text ? fieldText(existing, field) : undefined;
      if (lacked && copy) {
        next = withFieldText(next, field, copy.text);
        this.setGaps(partId, field, copy.gaps.length > 0 ? [...copy.gaps] : null);
      } else if (lacked && heldText !== undefined) {
        next = withFieldText(next, field, heldText); // its gaps stay
      } else {
        this.setGaps(partId, field, null); // restated whole, or gone
      }
    }

    entry.setPart(next);
    return 'applied';
  }

  /** The text (and gaps) each `copies` field takes, by field; null when a handle names no part field held. */
  private readCopies(copies: Record<string, number> | undefined): Map<string, { text: string; gaps: readonly number[] }> | null {
    const result = new Map<string, { text: string; gaps: readonly number[] }>();
    for (const [field, handle] of Object.entries(copies ?? {})) {
      const source = this.partHandles.get(handle);
      if (!source) {
        return null;
      }

      const part = this.messages.get(source.messageId)?.parts.get(source.partId);
      result.set(field, { text: fieldText(part, source.field) ?? '', gaps: this.gaps[source.partId]?.[source.field] ?? [] });
    }

    return result;
  }

  private applyOther(event: SessionEvent): void {
    switch (event.type) {
      case SessionEventTypes.PartGap: {
        const current = this.gaps[event.partId]?.[event.field] ?? [];
        if (!current.includes(event.offset)) {
          this.setGaps(event.partId, event.field, [...current, event.offset].sort((a, b) => a - b));
        }

        break;
      }
      case SessionEventTypes.PartRemoved: {
        const partId = event.partId ?? '';
        this.setGaps(partId, null, null);
        const entry = event.messageId ? this.messages.get(event.messageId) : undefined;
        if (entry) {
          entry.removePart(partId);
        } else {
          for (const e of this.messages.values()) {
            if (e.removePart(partId)) {
              break;
            }
          }
        }

        break;
      }
      case SessionEventTypes.MessageUpdated: {
        const info = event.info as MessageInfo | null | undefined;
        const messageId = event.messageId ?? info?.id;
        if (!info || !messageId) {
          break;
        }

        const entry = this.messages.get(messageId);
        if (entry) {
          entry.setInfo(info);
        } else {
          this.addMessage(messageId, new MessageEntry(info));
        }

        break;
      }
      case SessionEventTypes.MessageRemoved:
        for (const partId of this.messages.get(event.messageId)?.partIds ?? []) {
          this.setGaps(partId, null, null);
        }

        if (event.messageId && this.messages.delete(event.messageId)) {
          removeSorted(this.messageIds, event.messageId);
        }

        break;
      case SessionEventTypes.Status:
        if (event.status) {
          this.status = event.status;
          if (event.status.type === 'busy') {
            this.error = null;
          }
        }

        break;
      case SessionEventTypes.Error:
        this.error = event.error ?? { name: 'UnknownError' };
        break;
      // Pending requests of the session and its descendants alike, by request id (client rule 10).
      case SessionEventTypes.PermissionAsked:
        if (event.permission?.id) {
          this.permissions = upsertById(this.permissions, event.permission);
        }

        break;
      case SessionEventTypes.PermissionReplied:
        if (event.requestId) {
          this.permissions = withoutId(this.permissions, event.requestId);
        }

        break;
      case SessionEventTypes.QuestionAsked:
        if (event.question?.id) {
          this.questions = upsertById(this.questions, event.question);
        }

        break;
      case SessionEventTypes.QuestionReplied:
      case SessionEventTypes.QuestionRejected:
        if (event.question?.id) {
          this.questions = withoutId(this.questions, event.question.id);
        }

        break;
      case SessionEventTypes.ChildUpdated:
        if (event.child?.id) {
          this.children = upsertById(this.children, event.child);
        }

        break;
      case SessionEventTypes.TodoUpdated:
        this.todos = event.todos ?? [];
        break;
      case SessionEventTypes.SessionUpdated:
        if (event.info) {
          this.session = event.info as SessionInfo;
        }

        break;
      case SessionEventTypes.SessionDeleted:
        this.deleted = true;
        break;
      default:
        break; // unknown types still take their seq
    }
  }

  private ensureMessage(messageId: string): MessageEntry {
    let entry = this.messages.get(messageId);
    if (!entry) {
      // A part or delta before its message: a stub info, replaced by the message's own update.
      entry = new MessageEntry({ id: messageId, sessionID: this.sessionId });
      this.addMessage(messageId, entry);
    }

    return entry;
  }

  private addMessage(messageId: string, entry: MessageEntry): void {
    this.messages.set(messageId, entry);
    insertSorted(this.messageIds, messageId);
  }

  /** A page's message, before the ones held; one held already (an event created it) keeps what it has. */
  private addPagedMessage(message: MessageWithParts): void {
    const existing = this.messages.get(message.info.id);
    if (!existing) {
      this.addMessage(message.info.id, entryOf(message));
      return;
    }

    if (existing.info.role === undefined) {
      existing.setInfo(message.info);
    }

    for (const part of message.parts) {
      if (!existing.parts.has(part.id)) {
        existing.setPart(part);
      }
    }
  }

  /**
   * Client rule 11: the messages held that are older than a new snapshot's window, kept when they reach up to it (the
   * window's first message is one of them, so nothing lies between), and none when the snapshot says no older exist.
   */
  private messagesBefore(snapshot: SessionSnapshot): MessageEntry[] {
    const first = snapshot.messages[0]?.info.id;
    if (!snapshot.earlier || first === undefined || !this.messages.has(first)) {
      return [];
    }

    return this.messageIds.filter((id) => id < first).map((id) => this.messages.get(id)!);
  }

  private replaceWith(snapshot: SessionSnapshot): void {
    const kept = this.hasState ? this.messagesBefore(snapshot) : [];
    this.upstream = snapshot.upstream;
    this.epoch = snapshot.epoch;
    this.seq = snapshot.seq;
    this.hasState = true;
    this.messages.clear();
    this.messageIds.length = 0;
    for (const entry of kept) {
      this.addMessage(entry.info.id, entry);
    }

    for (const message of snapshot.messages) {
      this.addMessage(message.info.id, entryOf(message));
    }

    // Kept messages start where this state's cursor points; otherwise the window starts where the snapshot's does.
    this.earlier = kept.length > 0 ? this.earlier : (snapshot.earlier ?? null);
    this.session = snapshot.session;
    this.status = snapshot.status ?? idleStatus;
    this.permissions = snapshot.permissions ?? [];
    this.questions = snapshot.questions ?? [];
    this.children = snapshot.children ?? [];

    this.todos = snapshot.todos ?? null;
    this.metadata = snapshot.metadata ?? null;
    this.gaps = structuredCloneGaps(snapshot.gaps);
    this.partHandles.clear();
    for (const [partId, fields] of Object.entries(snapshot.handles ?? {})) {
      const messageId = snapshot.messages.find((m) => m.parts.some((p) => p.id === partId))?.info.id;
      if (messageId !== undefined) {
        for (const [field, handle] of Object.entries(fields)) {
          this.partHandles.set(handle, { messageId, partId, field });
        }
      }
    }

    this.error = null;
    this.deleted = false;
    this.touch();
  }

  /** Sets (or with null removes) a field's gaps, or with a null field all of a part's; a new object for the view. */
  private setGaps(partId: string, field: string | null, offsets: number[] | null): void {
    const fields = { ...(this.gaps[partId] ?? {}) };
    if (field === null) {
      if (!(partId in this.gaps)) {
        return;
      }

      const { [partId]: _, ...rest } = this.gaps;
      this.gaps = rest;
      return;
    }

    if (offsets === null) {
      if (!(field in fields)) {
        return;
      }

      delete fields[field];
    } else {
      fields[field] = offsets;
    }

    const next = { ...this.gaps };
    if (Object.keys(fields).length === 0) {
      delete next[partId];
    } else {
      next[partId] = fields;
    }

    this.gaps = next;
  }

  private touch(): void {
    this.version++;
  }
}

function entryOf(message: MessageWithParts): MessageEntry {
  const entry = new MessageEntry(message.info);
  for (const part of message.parts) {
    entry.setPart(part);
  }

  return entry;
}

function structuredCloneGaps(gaps: SessionSnapshot['gaps']): Record<string, Record<string, number[]>> {
  const copy: Record<string, Record<string, number[]>> = {};
  for (const [partId, fields] of Object.entries(gaps ?? {})) {
    copy[partId] = {};
    for (const [field, offsets] of Object.entries(fields)) {
      copy[partId]![field] = [...offsets].sort((a, b) => a - b);
    }
  }

  return copy;
}
