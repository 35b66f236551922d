import {
  applySessionListChange,
  createGatewayClient,
  GatewayError,
  type ConnectionState,
  type MessageView,
  type Part,
  type PermissionReply,
  type PermissionRequest,
  type SessionMetadata,
  type SessionView,
  type WatchHandle,
} from '@opencode-gateway/client';
import { escapeHtml, renderMarkdown } from './markdown';
import './style.css';

// ---------------------------------------------------------------------------------------------------------------
// Setup

const params = new URLSearchParams(location.search);
const token = params.get('token');
const hubUrl = new URL(params.get('hub') ?? '/hubs/session', location.href).toString();
const client = createGatewayClient({
  url: hubUrl,
  ...(token ? { accessTokenFactory: () => token } : {}),
});

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
  return document.querySelector<T>(`[data-testid="${id}"]`)!;
}

const app = document.getElementById('app')!;
app.innerHTML = `
  <header class="topbar">
    <button class="icon-button" data-testid="toggle-sessions" aria-label="Sessions" title="Sessions">☰</button>
    <h1>opencode gateway</h1>
    <span class="badge" data-testid="connection-badge" data-state="connecting" role="status">connecting</span>
  </header>
  <div class="layout">
    <aside class="sidebar" data-testid="sidebar">
      <button class="primary" data-testid="new-session">+ New session</button>
      <ul class="sessions" data-testid="session-list"></ul>
      <p class="hint" data-testid="session-list-hint"></p>
    </aside>
    <main class="chat">
      <div class="chat-header">
        <h2 data-testid="session-title">No session</h2>
        <span class="status" data-testid="session-status" data-status="idle"></span>
      </div>
      <div class="banner" data-testid="error-banner" hidden></div>
      <div class="messages" data-testid="messages"></div>
      <div class="permissions" data-testid="permissions"></div>
      <form class="composer" data-testid="composer">
        <textarea data-testid="prompt-input" rows="2" placeholder="Ask something… (Enter to send, Shift+Enter for a new line)"></textarea>
        <div class="composer-buttons">
          <button type="button" class="secondary" data-testid="abort-button" hidden>Stop</button>
          <button type="submit" class="primary" data-testid="send-button">Send</button>
        </div>
      </form>
    </main>
  </div>`;

const badge = byTestId('connection-badge');
const sessionList = byTestId<HTMLUListElement>('session-list');
const sessionHint = byTestId('session-list-hint');
const sidebar = byTestId('sidebar');
const titleEl = byTestId('session-title');
const statusEl = byTestId('session-status');
const banner = byTestId('error-banner');
const messagesEl = byTestId('messages');
const permissionsEl = byTestId('permissions');
const composer = byTestId<HTMLFormElement>('composer');
const input = byTestId<HTMLTextAreaElement>('prompt-input');
const sendButton = byTestId<HTMLButtonElement>('send-button');
const abortButton = byTestId<HTMLButtonElement>('abort-button');

// ---------------------------------------------------------------------------------------------------------------
// Connection badge

function showState(state: ConnectionState): void {
  badge.dataset.state = state;
  badge.textContent = state;
}

showState(client.state);
client.onStateChange(showState);

// ---------------------------------------------------------------------------------------------------------------
// Session list: the gateway's ListSessions when it has one, else the sessions this browser opened.

interface ListedSession {
  id: string;
  title: string;
  tags: string[];
}

const localKey = 'opencode-gateway-demo.sessions';
let listed: ListedSession[] = [];
/** The gateway's list as loaded, kept current by SessionListChanged (other tabs, other devices). */
let listedFromGateway: readonly SessionMetadata[] = [];
let usingLocalList = false;

function loadLocal(): ListedSession[] {
  try {
    const parsed = JSON.parse(localStorage.getItem(localKey) ?? '[]') as ListedSession[];
    return Array.isArray(parsed) ? parsed.filter((s) => typeof s?.id === 'string') : [];
  } catch {
    return [];
  }
}

function remember(id: string, title?: string, tags?: string[]): void {
  const existing = listed.find((s) => s.id === id);
  if (existing) {
    if (title && existing.title === title && (!tags || tags.join() === existing.tags.join())) return;
    if (title) existing.title = title;
    if (tags) existing.tags = tags;
  } else {
    listed.unshift({ id, title: title ?? id, tags: tags ?? [] });
  }

  if (usingLocalList) {
    localStorage.setItem(localKey, JSON.stringify(listed.slice(0, 50)));
  }

  renderSessionList();
}

async function refreshSessions(): Promise<void> {
  try {
    const result = await client.listSessions({ limit: 50 });
    usingLocalList = false;
    listedFromGateway = result.items;
    listed = toListed(listedFromGateway);
    sessionHint.textContent = '';
  } catch (e) {
    usingLocalList = true;
    listed = loadLocal();
    sessionHint.textContent = e instanceof GatewayError && e.code === 'method_not_found'
      ? 'This gateway cannot list sessions yet: showing the ones opened in this browser.'
      : `Could not list sessions (${e instanceof GatewayError ? e.code : 'error'}): showing the ones opened in this browser.`;
  }

  if (currentId && !listed.some((s) => s.id === currentId)) {
    remember(currentId, current?.view.session?.title);
  }

  renderSessionList();
}

function toListed(sessions: readonly SessionMetadata[]): ListedSession[] {
  return sessions.map((m) => ({ id: m.sessionId, title: m.title ?? m.sessionId, tags: m.tags ?? [] }));
}

// A session created, renamed, tagged or archived in another tab or on another device appears here at once.
client.onSessionListChanged((change) => {
  if (usingLocalList) return;
  const next = applySessionListChange(listedFromGateway, change, {});
  if (next === listedFromGateway) return;
  listedFromGateway = next;
  listed = toListed(next);
  if (currentId && !listed.some((s) => s.id === currentId)) {
    remember(currentId, current?.view.session?.title);
  }

  renderSessionList();
});

function renderSessionList(): void {
  sessionList.replaceChildren(
    ...listed.map((s) => {
      const item = el('li', { 'data-testid': 'session-item', 'data-session-id': s.id });
      const button = el('button', { type: 'button', class: 'session-button', title: s.id });
      button.append(el('span', { class: 'session-title' }, s.title || s.id));
      if (s.tags.length) {
        const tags = el('span', { class: 'tags' });
        tags.append(...s.tags.map((t) => el('span', { class: 'tag', 'data-testid': 'session-tag' }, t)));
        button.append(tags);
      }

      if (s.id === currentId) item.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => {
        openSession(s.id);
        document.body.classList.remove('sessions-open');
      });
      item.append(button);
      return item;
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The open session

let currentId: string | null = null;
let current: WatchHandle | null = null;
const messageNodes = new Map<string, { node: HTMLElement; view: MessageView | null; gaps: SessionView['gaps'] | null; parts: Map<string, { node: HTMLElement; part: Part; gaps?: readonly number[] }> }>();

function openSession(id: string): void {
  if (id === currentId) return;
  current?.unsubscribe();
  currentId = id;
  messageNodes.clear();
  messagesEl.replaceChildren();
  permissionsEl.replaceChildren();
  const url = new URL(location.href);
  url.searchParams.set('session', id);
  history.replaceState(null, '', url);
  current = client.watch(id, render);
  render(current.view);
  renderSessionList();
  input.focus();
}

function render(view: SessionView): void {
  if (view.sessionId !== currentId) return;
  const title = view.session?.title ?? view.metadata?.title ?? view.sessionId;
  titleEl.textContent = title;
  if (view.session?.title) remember(view.sessionId, view.session.title, view.metadata?.tags);

  const status = view.status?.type ?? 'idle';
  statusEl.dataset.status = status;
  statusEl.textContent = view.status.type === 'busy' ? 'working…' : view.status.type === 'retry' ? `retrying (${view.status.message ?? ''})` : '';
  abortButton.hidden = status === 'idle';

  const problems: string[] = [];
  if (view.joinError) problems.push(`Cannot open this session: ${view.joinError.code}: ${view.joinError.message}`);
  if (view.deleted) problems.push('This session was deleted.');
  if (view.error && view.error.name !== 'MessageAbortedError') {
    problems.push(`${view.error.name ?? 'Error'}: ${view.error.data?.message ?? ''}`);
  }
  banner.hidden = problems.length === 0;
  banner.textContent = problems.join(' ');

  renderMessages(view);
  renderPermissions(view.permissions);
}

function renderMessages(view: SessionView): void {
  const nearBottom = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 80;
  const seen = new Set<string>();
  let previous: Element | null = null;
  for (const message of view.messages) {
    seen.add(message.info.id);
    let entry = messageNodes.get(message.info.id);
    if (!entry) {
      entry = { node: el('article', { class: 'message', 'data-testid': 'message', 'data-message-id': message.info.id }), view: null, gaps: null, parts: new Map() };
      messageNodes.set(message.info.id, entry);
    }

    if (entry.view !== message || entry.gaps !== view.gaps) {
      updateMessage(entry, message, view.gaps);
      entry.view = message;
    }

    const expectedPosition: Element | null = previous ? previous.nextElementSibling : messagesEl.firstElementChild;
    if (expectedPosition !== entry.node) {
      messagesEl.insertBefore(entry.node, expectedPosition);
    }

    previous = entry.node;
  }

  for (const [id, entry] of messageNodes) {
    if (!seen.has(id)) {
      entry.node.remove();
      messageNodes.delete(id);
    }
  }

  if (nearBottom) messagesEl.scrollTop = messagesEl.scrollHeight;
}

function updateMessage(entry: { node: HTMLElement; gaps: SessionView['gaps'] | null; parts: Map<string, { node: HTMLElement; part: Part; gaps?: readonly number[] }> },
  message: MessageView, gaps: SessionView['gaps']): void {
  entry.gaps = gaps;
  const role = message.info.role ?? 'assistant';
  entry.node.dataset.role = role;
  entry.node.className = `message ${role}`;
  const seen = new Set<string>();
  let previous: Element | null = null;
  for (const part of message.parts) {
    let partEntry = entry.parts.get(part.id);
    const partGaps = gaps[part.id]?.text;
    if (partEntry && partEntry.part === part && partEntry.gaps === partGaps) {
      seen.add(part.id);
      previous = partEntry.node;
      continue;
    }

    const node = renderPart(part, partEntry?.node, partGaps ?? []);
    if (!node) continue;
    seen.add(part.id);
    if (partEntry && partEntry.node !== node) partEntry.node.replaceWith(node);
    partEntry = { node, part, gaps: partGaps };
    entry.parts.set(part.id, partEntry);
    const expectedPosition: Element | null = previous ? previous.nextElementSibling : entry.node.firstElementChild;
    if (expectedPosition !== node) entry.node.insertBefore(node, expectedPosition);
    previous = node;
  }

  for (const [id, partEntry] of entry.parts) {
    if (!seen.has(id)) {
      partEntry.node.remove();
      entry.parts.delete(id);
    }
  }

  const error = message.info.role === 'assistant' ? message.info.error : undefined;
  let errorNode = entry.node.querySelector<HTMLElement>(':scope > .message-error');
  if (error && error.name !== 'MessageAbortedError') {
    errorNode ??= entry.node.appendChild(el('div', { class: 'message-error' }));
    errorNode.textContent = `${error.name ?? 'Error'}: ${error.data?.message ?? ''}`;
  } else if (error?.name === 'MessageAbortedError') {
    errorNode ??= entry.node.appendChild(el('div', { class: 'message-error aborted' }));
    errorNode.textContent = 'Stopped.';
  } else {
    errorNode?.remove();
  }
}

/**
 * A text with gap marks: the pieces between gaps rendered apart, a visible mark where text is missing (the gateway
 * lost continuity with opencode there; the final text replaces it). Never a silent splice.
 */
function renderWithGaps(text: string, gaps: readonly number[]): string {
  if (gaps.length === 0) return renderMarkdown(text);
  const mark = '<span class="gap" data-testid="gap-mark" title="Part of this text was not received; it appears when the answer ends.">…</span>';
  const pieces: string[] = [];
  let start = 0;
  for (const gap of gaps) {
    if (gap > start) pieces.push(renderMarkdown(text.slice(start, gap)));
    pieces.push(mark);
    start = gap;
  }

  pieces.push(renderMarkdown(text.slice(start)));
  return pieces.join('');
}

/** Renders (or updates in place) one part; null for parts the demo does not show. */
function renderPart(part: Part, existing: HTMLElement | undefined, gaps: readonly number[]): HTMLElement | null {
  switch (part.type) {
    case 'text':
    case undefined: {
      if (part.type === 'text' && part.synthetic === true) return null;
      const node = existing?.classList.contains('text') ? existing : el('div', { class: 'part text markdown', 'data-testid': 'text-part' });
      node.dataset.partId = part.id;
      node.innerHTML = renderWithGaps(part.text ?? '', gaps);
      return node;
    }
    case 'reasoning': {
      let node = existing?.tagName === 'DETAILS' ? existing : null;
      if (!node) {
        node = el('details', { class: 'part reasoning', 'data-testid': 'reasoning-part' });
        node.append(el('summary', {}, 'Thinking'), el('div', { class: 'markdown' }));
      }

      node.dataset.partId = part.id;
      node.querySelector('summary')!.textContent = part.time?.end ? 'Thought' : 'Thinking…';
      node.querySelector('.markdown')!.innerHTML = renderWithGaps(part.text ?? '', gaps);
      return node;
    }
    case 'tool': {
      const node = existing?.classList.contains('tool') ? existing : el('div', { class: 'part tool', 'data-testid': 'tool-part' });
      const state = part.state;
      const status = state?.status ?? 'pending';
      node.dataset.partId = part.id;
      node.dataset.status = status;
      const input: Record<string, unknown> = state?.input ?? {};
      const title = state?.status === 'running' || state?.status === 'completed' ? state.title : undefined;
      const summary = title ?? (typeof input.command === 'string' ? input.command : typeof input.filePath === 'string' ? input.filePath : '');
      const output = state?.status === 'completed' ? state.output : state?.status === 'error' ? state.error : '';
      node.innerHTML = `
        <div class="tool-head">
          <span class="tool-name">${escapeHtml(part.tool ?? 'tool')}</span>
          <span class="tool-status" data-testid="tool-status" data-status="${escapeHtml(status)}">${escapeHtml(status)}</span>
        </div>
        ${summary ? `<div class="tool-summary"><code>${escapeHtml(String(summary))}</code></div>` : ''}
        ${output ? `<pre class="tool-output">${escapeHtml(output.length > 4000 ? `${output.slice(0, 4000)}\n…` : output)}</pre>` : ''}`;
      return node;
    }
    case 'file': {
      const node = existing ?? el('div', { class: 'part file' });
      node.dataset.partId = part.id;
      node.textContent = `📎 ${String(part.filename ?? part.url ?? 'file')}`;
      return node;
    }
    default:
      return null; // step-start, step-finish, snapshot, patch, …
  }
}

function renderPermissions(permissions: readonly PermissionRequest[]): void {
  const key = permissions.map((p) => p.id).join();
  if (permissionsEl.dataset.key === key) return;
  permissionsEl.dataset.key = key;
  permissionsEl.replaceChildren(
    ...permissions.map((p) => {
      const card = el('div', { class: 'permission', 'data-testid': 'permission', 'data-request-id': p.id });
      const what = (p.patterns ?? []).join(', ') || String((p.metadata as Record<string, unknown> | undefined)?.command ?? '');
      card.append(
        el('div', { class: 'permission-title' }, `Allow ${p.permission}?`),
        el('code', { class: 'permission-what' }, what),
      );
      const buttons = el('div', { class: 'permission-buttons' });
      const choices: [PermissionReply, string, string][] = [
        ['once', 'Allow once', 'primary'],
        ['always', 'Always', 'secondary'],
        ['reject', 'Deny', 'danger'],
      ];
      for (const [reply, label, cls] of choices) {
        const button = el('button', { type: 'button', class: cls, 'data-testid': `permission-${reply}`, 'data-request-id': p.id }, label);
        button.addEventListener('click', () => {
          buttons.querySelectorAll('button').forEach((b) => (b.disabled = true));
          client.replyPermission(currentId!, p.id, reply).catch((e: unknown) => {
            buttons.querySelectorAll('button').forEach((b) => (b.disabled = false));
            showError(e);
          });
        });
        buttons.append(button);
      }

      card.append(buttons);
      return card;
    }),
  );
}

function showError(e: unknown): void {
  banner.hidden = false;
  banner.textContent = e instanceof GatewayError ? `${e.code}: ${e.message}` : String(e);
}

// ---------------------------------------------------------------------------------------------------------------
// Actions

async function newSession(): Promise<string> {
  const info = await client.createSession({});
  remember(info.id, info.title ?? info.id);
  openSession(info.id);
  return info.id;
}

byTestId('new-session').addEventListener('click', () => {
  newSession().catch(showError);
  document.body.classList.remove('sessions-open');
});

byTestId('toggle-sessions').addEventListener('click', () => document.body.classList.toggle('sessions-open'));

composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  sendButton.disabled = true;
  (async () => {
    const id = currentId ?? (await newSession());
    await client.prompt(id, text);
    input.value = '';
  })()
    .catch(showError)
    .finally(() => {
      sendButton.disabled = false;
      input.focus();
    });
});

input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    composer.requestSubmit();
  }
});

abortButton.addEventListener('click', () => {
  if (currentId) client.abort(currentId).catch(showError);
});

// ---------------------------------------------------------------------------------------------------------------
// Start

const initial = params.get('session');
if (initial && /^ses_[A-Za-z0-9]+$/.test(initial)) {
  openSession(initial);
} else if (!initial) {
  document.body.classList.add('sessions-open');
}

listed = loadLocal();
usingLocalList = true;
renderSessionList();
client.onStateChange((state) => {
  if (state === 'connected') void refreshSessions();
});
