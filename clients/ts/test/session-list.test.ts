/** `applySessionListChange`: how a list applies `SessionListChanged` (order, filter, repeats, late changes). */
import { describe, expect, it } from 'vitest';
import type { SessionListChange, SessionMetadata } from '../src/contracts.js';
import { applySessionListChange } from '../src/stores.js';

function meta(sessionId: string, updatedAt: string, extra: Partial<SessionMetadata> = {}): SessionMetadata {
  return { sessionId, upstream: 'local', ownerId: 'u1', tags: [], createdAt: '2026-01-01T00:00:00Z', updatedAt, ...extra };
}

function change(kind: string, session: SessionMetadata): SessionListChange {
  return { kind, session };
}

const ids = (list: readonly SessionMetadata[]) => list.map((s) => s.sessionId);

describe('applySessionListChange', () => {
  const list = [meta('ses_c', '2026-12-01T10:00:03Z'), meta('ses_b', '2026-12-01T10:00:02Z'), meta('ses_a', '2026-12-01T10:00:01Z')];

  it('puts a new or changed session where its updatedAt sorts, newest first', () => {
    expect(ids(applySessionListChange(list, change('created', meta('ses_d', '2026-12-01T10:00:04Z')), {}))).toEqual(
      ['ses_d', 'ses_c', 'ses_b', 'ses_a']);
    const renamed = applySessionListChange(list, change('updated', meta('ses_a', '2026-12-01T10:00:05Z', { title: 'renamed' })), {});
    expect(ids(renamed)).toEqual(['ses_a', 'ses_c', 'ses_b']);
    expect(renamed[0]!.title).toBe('renamed');
  });

  it('orders to the microsecond, which Date.parse cannot, and by id between equal instants', () => {
    const close = [meta('ses_x', '2026-12-01T10:00:00.000002+00:00'), meta('ses_w', '2026-12-01T10:00:00.000001+00:00')];
    expect(ids(applySessionListChange(close, change('updated', meta('ses_w', '2026-12-01T10:00:00.0000025+00:00')), {})))
      .toEqual(['ses_w', 'ses_x']);
    expect(ids(applySessionListChange(close, change('created', meta('ses_y', '2026-12-01T10:00:00.000002+00:00')), {})))
      .toEqual(['ses_y', 'ses_x', 'ses_w']);
  });

  it('ignores a repeat and a change older than the one it holds, returning the same list', () => {
    expect(applySessionListChange(list, change('updated', list[1]!), {})).toBe(list);
    expect(applySessionListChange(list, change('updated', meta('ses_b', '2026-12-01T10:00:01.5Z', { title: 'late' })), {})).toBe(list);
  });

  it('removes a session that no longer matches the filter, and never adds one that does not', () => {
    const tagged = [meta('ses_t', '2026-12-01T10:00:01Z', { tags: ['q3'] })];
    expect(applySessionListChange(tagged, change('updated', meta('ses_t', '2026-12-01T10:00:02Z', { tags: [] })), { tag: 'q3' }))
      .toEqual([]);
    expect(applySessionListChange(tagged, change('created', meta('ses_u', '2026-12-01T10:00:02Z', { workspace: 'w2' })),
      { tag: 'q3' })).toBe(tagged);
    const archived = meta('ses_c', '2026-12-01T10:00:09Z', { archivedAt: '2026-12-01T10:00:09Z' });
    expect(ids(applySessionListChange(list, change('archived', archived), {}))).toEqual(['ses_b', 'ses_a']);
    expect(ids(applySessionListChange([], change('archived', archived), { archived: true }))).toEqual(['ses_c']);
    expect(ids(applySessionListChange(list, change('created', meta('ses_q', '2026-12-01T10:00:09Z', { title: 'Plan B' })),
      { q: 'plan', workspace: null }))).toEqual(['ses_q', 'ses_c', 'ses_b', 'ses_a']);
  });

  it('leaves a session that sorts after the last loaded one to loadMore when more pages exist', () => {
    const old = change('updated', meta('ses_z', '2026-12-01T09:00:00Z'));
    expect(applySessionListChange(list, old, {}, true)).toBe(list);
    expect(ids(applySessionListChange(list, old, {}, false))).toEqual(['ses_c', 'ses_b', 'ses_a', 'ses_z']);
  });
});
