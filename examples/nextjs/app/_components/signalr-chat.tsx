'use client';
// A chat over SignalR with the React bindings: useSession joins the session (a reload rejoins it and gets the answer
// so far, then the rest), shows the prompt at once as an optimistic message, and says where the answer is (status).
import { useSession } from '@opencode-gateway/client/react';
import Link from 'next/link';
import { useState, type FormEvent } from 'react';
import { MessageView, PermissionView } from './chat-parts';

export function SignalRChat({ sessionId }: { sessionId: string }) {
  const { status, connection, view, messages, permissions, error, prompt, abort, replyPermission } = useSession(sessionId);
  const [input, setInput] = useState('');
  const answering = status === 'submitted' || status === 'streaming';

  function send(event: FormEvent) {
    event.preventDefault();
    const text = input.trim();
    if (!text) return;
    setInput('');
    void prompt(text); // never rejects: a failure shows in `error`
  }

  return (
    <section className="chat">
      <div className="toolbar">
        <Link href="/">← Sessions</Link>
        <h1>{view?.session?.title ?? sessionId}</h1>
        <span className="badge" data-testid="connection" data-state={connection}>{connection}</span>
        <span className="status" data-testid="chat-status" data-status={status}>{status}</span>
        <Link href={`/ai/${sessionId}`} className="switch">open with useChat</Link>
      </div>
      {error && (
        <p className="error" role="alert" data-testid="chat-error">
          {error.source === 'prompt' ? 'The prompt was not sent' : error.source === 'join' ? 'Cannot open this session' : 'The answer failed'}:{' '}
          {error.code}: {error.message}
        </p>
      )}
      <div className="messages" data-testid="messages">
        {messages.map((m) => <MessageView key={m.info.id} message={m} />)}
      </div>
      {permissions.map((p) => (
        <PermissionView key={p.id} request={p} reply={(reply) => void replyPermission(p.id, reply)} />
      ))}
      <form className="composer" onSubmit={send}>
        <textarea
          value={input}
          onChange={(e) => setInput(e.target.value)}
          placeholder="Ask something (the mock LLM obeys e.g. tokens=200 delay=20)"
          data-testid="prompt-input"
          rows={2}
        />
        <button type="submit" disabled={status === 'connecting' || !input.trim()} data-testid="send-button">Send</button>
        {answering && <button type="button" onClick={() => void abort()} data-testid="stop-button">Stop</button>}
      </form>
    </section>
  );
}
