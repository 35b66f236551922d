'use client';
// A chat with the AI SDK's own useChat against the gateway's /api/ai-sdk/chat (the AI SDK's UI message stream), on
// the gateway's origin: the chat's history is one GET, then `resume: true` makes useChat ask the gateway for an answer
// in progress (GET {api}/{id}/stream) and continue it — so a reload mid-answer picks the answer up where it is.
import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, isToolUIPart, type ChatRequestOptions, type UIMessage } from 'ai';
import Link from 'next/link';
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { gatewayToken } from '@/lib/client-token';
import { useGatewayUrl } from './gateway-url';

/** The gateway's data parts: a gap in a part's text (render a marker), a permission request of a tool. */
type OpencodeDataParts = {
  'opencode-gap': { messageId: string; partId: string; field: string; offset: number; restated?: boolean };
  'opencode-permission': {
    requestId: string;
    status: 'pending' | 'once' | 'always' | 'reject';
    toolCallId?: string;
    request: { permission?: string; patterns?: string[] };
  };
};
type ChatMessage = UIMessage<unknown, OpencodeDataParts>;

async function authorization(): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await gatewayToken()}` };
}

/** The chat's messages as UIMessage[]; a chat id the gateway does not know yet has none. */
async function loadHistory(gatewayUrl: string, chatId: string): Promise<ChatMessage[]> {
  const response = await fetch(`${gatewayUrl}/api/ai-sdk/chat/${encodeURIComponent(chatId)}/messages`, { headers: await authorization() });
  if (response.status === 404) {
    return [];
  }

  if (!response.ok) {
    throw new Error(`loading the chat failed: HTTP ${response.status} ${await response.text()}`);
  }

  return (await response.json()) as ChatMessage[];
}

/** A history that ends in an answer still being written (its parts are `streaming`). */
function answerInProgress(messages: readonly ChatMessage[]): boolean {
  const last = messages.at(-1);
  return last?.role === 'assistant' && last.parts.some((p) => 'state' in p && p.state === 'streaming');
}

/** DefaultChatTransport that says when a resume found nothing to continue (the gateway answered 204). */
class ResumeAwareTransport extends DefaultChatTransport<ChatMessage> {
  onNothingToResume: () => void = () => undefined;

  override async reconnectToStream(options: { chatId: string } & ChatRequestOptions) {
    const stream = await super.reconnectToStream(options);
    if (!stream) {
      this.onNothingToResume();
    }

    return stream;
  }
}

export function AiSdkChat({ chatId }: { chatId: string }) {
  const gatewayUrl = useGatewayUrl();
  const [history, setHistory] = useState<ChatMessage[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    loadHistory(gatewayUrl, chatId).then(
      (messages) => current && setHistory(messages),
      (e: unknown) => current && setLoadError(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      current = false;
    };
  }, [gatewayUrl, chatId]);

  if (loadError) {
    return <p className="error" role="alert" data-testid="chat-error">{loadError}</p>;
  }

  return history ? <Conversation chatId={chatId} initialMessages={history} /> : <p className="hint">Loading…</p>;
}

function Conversation({ chatId, initialMessages }: { chatId: string; initialMessages: ChatMessage[] }) {
  const gatewayUrl = useGatewayUrl();
  const transport = useMemo(
    () => new ResumeAwareTransport({ api: `${gatewayUrl}/api/ai-sdk/chat`, headers: authorization }),
    [gatewayUrl],
  );
  const { messages, setMessages, sendMessage, resumeStream, status, stop, error } = useChat<ChatMessage>({
    id: chatId,
    messages: initialMessages,
    transport,
    // Only a chat with a history can have an answer in progress; the gateway answers 404 for a chat id it has not
    // seen yet (its session is created by the first message).
    resume: initialMessages.length > 0,
  });
  const [input, setInput] = useState('');

  // The history showed an answer in progress, but it ended before the resume asked: load the finished answer.
  const loadedInProgress = useRef(answerInProgress(initialMessages));
  useEffect(() => {
    transport.onNothingToResume = () => {
      if (!loadedInProgress.current) return;
      loadedInProgress.current = false;
      void loadHistory(gatewayUrl, chatId).then(setMessages, () => undefined);
    };
  }, [transport, gatewayUrl, chatId, setMessages]);

  function send(event: FormEvent) {
    event.preventDefault();
    const text = input.trim();
    if (!text) return;
    setInput('');
    void sendMessage({ text });
  }

  async function replyPermission(requestId: string, reply: 'once' | 'always' | 'reject') {
    const response = await fetch(`${gatewayUrl}/api/ai-sdk/chat/${encodeURIComponent(chatId)}/permissions/${encodeURIComponent(requestId)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await authorization()) },
      body: JSON.stringify({ reply }),
    });
    // The stream ended while the run waited for this answer: the rest of the answer comes with a resume.
    if (response.ok) await resumeStream();
  }

  return (
    <section className="chat">
      <div className="toolbar">
        <Link href="/">← Sessions</Link>
        <h1>useChat · {chatId}</h1>
        <span className="status" data-testid="chat-status" data-status={status}>{status}</span>
        {chatId.startsWith('ses_') && <Link href={`/chat/${chatId}`} className="switch">open over SignalR</Link>}
      </div>
      {error && <p className="error" role="alert" data-testid="chat-error">{error.message}</p>}
      <div className="messages" data-testid="messages">
        {messages.map((m) => (
          <article key={m.id} className={`message ${m.role}`} data-testid="message" data-role={m.role}>
            {m.parts.map((part, i) => {
              switch (part.type) {
                case 'text':
                  return <div key={i} className="text" data-testid="text-part">{part.text}</div>;
                case 'reasoning':
                  return (
                    <details key={i} className="reasoning" data-testid="reasoning-part">
                      <summary>{part.state === 'streaming' ? 'Thinking…' : 'Thought'}</summary>
                      <div className="text">{part.text}</div>
                    </details>
                  );
                case 'dynamic-tool':
                  return (
                    <div key={i} className="tool" data-testid="tool-part" data-status={part.state}>
                      <span className="tool-name">{part.toolName}</span> <span className="tool-status">{part.state}</span>
                    </div>
                  );
                case 'data-opencode-gap':
                  // Text the gateway could not see was lost here: mark it, never splice silently.
                  return <span key={i} className="gap" data-testid="gap" title="text missing here">…</span>;
                case 'data-opencode-permission':
                  return part.data.status === 'pending' ? (
                    <div key={i} className="permission" data-testid="permission">
                      <p>The agent asks for <strong>{part.data.request.permission}</strong></p>
                      <button type="button" onClick={() => void replyPermission(part.data.requestId, 'once')} data-testid="permission-once">Allow once</button>
                      <button type="button" onClick={() => void replyPermission(part.data.requestId, 'reject')}>Reject</button>
                    </div>
                  ) : (
                    <p key={i} className="hint">Permission {part.data.request.permission}: {part.data.status}</p>
                  );
                default:
                  // Tools declared by name are `tool-{name}` parts; step boundaries, sources and files are not shown.
                  return isToolUIPart(part) ? (
                    <div key={i} className="tool" data-testid="tool-part" data-status={part.state}>
                      <span className="tool-name">{part.type.slice('tool-'.length)}</span> <span className="tool-status">{part.state}</span>
                    </div>
                  ) : null;
              }
            })}
          </article>
        ))}
      </div>
      <form className="composer" onSubmit={send}>
        <textarea value={input} onChange={(e) => setInput(e.target.value)} placeholder="Ask something" data-testid="prompt-input" rows={2} />
        <button type="submit" disabled={status !== 'ready' && status !== 'error'} data-testid="send-button">Send</button>
        {(status === 'submitted' || status === 'streaming') && (
          <button type="button" onClick={() => void stop()} data-testid="stop-button">Stop</button>
        )}
      </form>
    </section>
  );
}
