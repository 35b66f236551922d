'use client';
// Renders the gateway's typed message parts (the React bindings' `ChatMessage`): a switch on `part.type` that the
// compiler checks for every type, a fallback for types a newer opencode may add.
import type { ChatMessage } from '@opencode-gateway/client/react';
import type { Part, PermissionReply, PermissionRequest } from '@opencode-gateway/client';

export function MessageView({ message }: { message: ChatMessage }) {
  const role = message.info.role ?? 'assistant';
  const error = message.info.role === 'assistant' ? message.info.error : undefined;
  return (
    <article className={`message ${role}`} data-testid="message" data-role={role} data-optimistic={String(message.optimistic)}>
      {message.parts.map((part) => <PartView key={part.id} part={part} />)}
      {error && error.name !== 'MessageAbortedError' && <p className="error">{error.name}: {error.data?.message}</p>}
      {error?.name === 'MessageAbortedError' && <p className="hint">Stopped.</p>}
    </article>
  );
}

function PartView({ part }: { part: Part }) {
  switch (part.type) {
    case 'text':
      return part.synthetic ? null : <div className="text" data-testid="text-part">{part.text ?? ''}</div>;
    case undefined: // streamed text that arrived before its part
      return <div className="text" data-testid="text-part">{part.text ?? ''}</div>;
    case 'reasoning':
      return (
        <details className="reasoning" data-testid="reasoning-part">
          <summary>{part.time?.end ? 'Thought' : 'Thinking…'}</summary>
          <div className="text">{part.text ?? ''}</div>
        </details>
      );
    case 'tool': {
      const state = part.state;
      const detail = state.status === 'completed' ? state.output : state.status === 'error' ? state.error : '';
      return (
        <div className="tool" data-testid="tool-part" data-status={state.status}>
          <span className="tool-name">{part.tool}</span> <span className="tool-status">{state.status}</span>
          {detail && <pre>{detail.length > 2000 ? `${detail.slice(0, 2000)}…` : detail}</pre>}
        </div>
      );
    }
    case 'file':
      return <div className="file">📎 {part.filename ?? part.url}</div>;
    case 'step-start':
    case 'step-finish':
    case 'snapshot':
    case 'patch':
    case 'agent':
    case 'retry':
    case 'compaction':
    case 'subtask':
    case 'unknown':
      return null;
    default: {
      const unhandled: never = part;
      return unhandled;
    }
  }
}

export function PermissionView({ request, reply }: { request: PermissionRequest; reply: (reply: PermissionReply) => void }) {
  return (
    <div className="permission" data-testid="permission">
      <p>
        The agent asks for <strong>{request.permission}</strong>
        {request.patterns?.length ? <>: <code>{request.patterns.join(', ')}</code></> : null}
      </p>
      <button type="button" onClick={() => reply('once')} data-testid="permission-once">Allow once</button>
      <button type="button" onClick={() => reply('always')}>Always</button>
      <button type="button" onClick={() => reply('reject')}>Reject</button>
    </div>
  );
}
