/**
 * Turns what the hub sends into the typed, discriminated contract: an event or part of a type this client does not
 * know (a newer gateway or opencode) becomes an `UnknownSessionEvent` / `UnknownPart` that keeps its members, its
 * original type in `wireType`, so a `switch` on `type` stays exhaustive and an old client never breaks on new types.
 * Idempotent: normalising twice changes nothing. The client applies these to everything it receives.
 */
import {
  partTypes,
  SessionEventTypes,
  type JoinResult,
  type MessagePage,
  type MessageWithParts,
  type Part,
  type SessionEvent,
  type SessionSnapshot,
} from './contracts.js';

const knownEventTypes: ReadonlySet<string> = new Set(Object.values(SessionEventTypes));
const knownPartTypes: ReadonlySet<string> = new Set(partTypes);

/** A part as any JSON object with an id; known types are returned as they are, others as `UnknownPart`. */
export function toPart(part: Part | { id: string; messageID: string; type?: unknown }): Part {
  const type = part.type;
  if (type === undefined || type === 'unknown' || (typeof type === 'string' && knownPartTypes.has(type))) {
    return part as Part;
  }

  return { ...part, type: 'unknown', wireType: String(type) } as Part;
}

/** An event from the hub; one of an unknown type becomes an `UnknownSessionEvent`. Parts inside are normalised too. */
export function toSessionEvent(event: SessionEvent | { type: string; epoch: number; seq: number; sessionId: string; upstream: string }): SessionEvent {
  const type = event.type;
  if (type === 'unknown') {
    return event as SessionEvent;
  }

  if (!knownEventTypes.has(type)) {
    return { ...event, type: 'unknown', wireType: type } as SessionEvent;
  }

  const known = event as SessionEvent;
  if (known.type === 'part.updated' && known.part) {
    const part = toPart(known.part);
    return part === known.part ? known : { ...known, part };
  }

  return known;
}

function toMessage(message: MessageWithParts): MessageWithParts {
  let changed = false;
  const parts = message.parts.map((p) => {
    const part = toPart(p);
    changed ||= part !== p;
    return part;
  });
  return changed ? { ...message, parts } : message;
}

export function toSessionSnapshot(snapshot: SessionSnapshot): SessionSnapshot {
  let changed = false;
  const messages = (snapshot.messages ?? []).map((m) => {
    const message = toMessage(m);
    changed ||= message !== m;
    return message;
  });
  return changed ? { ...snapshot, messages } : snapshot;
}

export function toMessagePage(page: MessagePage): MessagePage {
  return { ...page, messages: (page.messages ?? []).map(toMessage) };
}

export function toJoinResult(result: JoinResult): JoinResult {
  return {
    ...result,
    ...(result.events ? { events: result.events.map(toSessionEvent) } : {}),
    ...(result.snapshot ? { snapshot: toSessionSnapshot(result.snapshot) } : {}),
  };
}
