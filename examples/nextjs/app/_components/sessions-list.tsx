'use client';
// The caller's sessions (useSessions: the hub's ListSessions, reloaded on reconnect and every 10 s), and buttons that
// start a chat either way.
import { useSessions } from '@opencode-gateway/client/react';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { newChatId } from '@/lib/chat-id';

export function SessionsList() {
  const router = useRouter();
  const { sessions, status, error, hasMore, loadMore, createSession } = useSessions({}, { refreshIntervalMs: 10_000 });
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<string | null>(null);

  async function startSignalRChat() {
    setCreating(true);
    setCreateError(null);
    try {
      const session = await createSession({ title: `Chat ${new Date().toLocaleTimeString()}` });
      router.push(`/chat/${session.id}`);
    } catch (e) {
      setCreateError(e instanceof Error ? e.message : String(e));
      setCreating(false);
    }
  }

  return (
    <section className="sessions">
      <div className="toolbar">
        <h1>Sessions</h1>
        <span className="status" data-testid="list-status" data-status={status}>{status}</span>
        <button type="button" onClick={startSignalRChat} disabled={creating || status === 'connecting'} data-testid="new-session">
          New chat (SignalR)
        </button>
        <button type="button" onClick={() => router.push(`/ai/${newChatId()}`)} data-testid="new-ai-chat">
          New chat (useChat)
        </button>
      </div>
      {error && <p className="error" role="alert">Could not load the sessions: {error.code}: {error.message}</p>}
      {createError && <p className="error" role="alert">Could not create a session: {createError}</p>}
      <ul data-testid="session-list">
        {sessions.map((s) => (
          <li key={s.sessionId} data-testid="session-item" data-session-id={s.sessionId}>
            <Link href={`/chat/${s.sessionId}`} className="title">{s.title || s.sessionId}</Link>
            <span className="meta">
              <Link href={`/ai/${s.sessionId}`} title="open this session with useChat">useChat</Link>
              {s.tags.map((t) => <span key={t} className="tag">{t}</span>)}
              <time dateTime={s.updatedAt}>{new Date(s.updatedAt).toLocaleString()}</time>
            </span>
          </li>
        ))}
      </ul>
      {status === 'ready' && sessions.length === 0 && <p className="hint">No sessions yet: start a chat.</p>}
      {hasMore && <button type="button" onClick={() => void loadMore()}>More</button>}
    </section>
  );
}
