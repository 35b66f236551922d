import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import {
  applySessionListChange,
  createGatewayClient,
  EventForms,
  GatewayError,
  type ConnectionState,
  type MessageView,
  type Part,
  type PromptPart,
  type SessionMetadata,
  type SessionView,
  type WatchHandle,
} from '@opencode-gateway/client';
import { ComposerAttachments } from './attachments';
import { byTestId, el } from './dom';
import { renderPart, type PartGaps } from './parts';
import { PendingRequests } from './requests';
import { SubagentPanel } from './subagents';
import './style.css';

// ---------------------------------------------------------------------------------------------------------------
// Setup

const params = new URLSearchParams(location.search);
const token = params.get('token');
const hubUrl = new URL(params.get('hub') ?? '/hubs/session', location.href).toString();
// ?protocol=msgpack: the MessagePack hub protocol; ?events=full: every event whole (the default is compact deltas).
const client = createGatewayClient({
  url: hubUrl,
  ...(token ? { accessTokenFactory: () => token } : {}),
  ...(params.get('protocol') === 'msgpack' ? { hubProtocol: new MessagePackHubProtocol() } : {}),
  ...(params.get('events') === EventForms.Full ? { events: EventForms.Full } : {}),
});

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
        <button type="button" class="link" data-testid="open-parent" hidden>↑ Parent session</button>
        <h2 data-testid="session-title">No session</h2>
        <span class="status" data-testid="session-status" data-status="idle"></span>
      </div>
      <details class="subagents" data-testid="subagents" open hidden>
        <summary data-testid="subagents-summary"></summary>
        <ul></ul>
      </details>
      <div class="banner" data-testid="error-banner" hidden></div>
      <div class="messages" data-testid="messages">
        <div class="load-earlier" data-testid="load-earlier" hidden>
          <button type="button" class="link" data-testid="load-earlier-button">Load earlier messages</button>
        </div>
      </div>
      <div class="permissions" data-testid="permissions"></div>
      <form class="composer" data-testid="composer">
        <div class="composer-main">
          <div class="attachments" data-testid="attachments" hidden></div>
          <p class="attachment-error" data-testid="attachment-error" role="alert" hidden></p>
          <textarea data-testid="prompt-input" rows="2" placeholder="Ask something… (Enter to send, Shift+Enter for a new line; paste or drop files to attach)"></textarea>
        </div>
        <div class="composer-buttons">
          <button type="button" class="secondary" data-testid="abort-button" hidden>Stop</button>
          <button type="button" class="secondary" data-testid="attach-button" title="Attach files">Attach</button>
          <input type="file" data-testid="file-input" multiple hidden />
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
const parentButton = byTestId<HTMLButtonElement>('open-parent');
const statusEl = byTestId('session-status');
const banner = byTestId('error-banner');
const messagesEl = byTestId('messages');
const loadEarlierEl = byTestId('load-earlier');
const composer = byTestId<HTMLFormElement>('composer');
const input = byTestId<HTMLTextAreaElement>('prompt-input');
const sendButton = byTestId<HTMLButtonElement>('send-button');
const abortButton = byTestId<HTMLButtonElement>('abort-button');
const fileInput = byTestId<HTMLInputElement>('file-input');
const attachments = new ComposerAttachments(byTestId('attachments'), byTestId('attachment-error'));
const requests = new PendingRequests(byTestId('permissions'), {
  replyPermission: (requestId, reply) => client.replyPermission(currentId!, requestId, reply),
  replyQuestion: (requestId, answers) => client.replyQuestion(currentId!, requestId, answers),
  rejectQuestion: (requestId) => client.rejectQuestion(currentId!, requestId),
  showError,
});
const subagents = new SubagentPanel(byTestId<HTMLDetailsElement>('subagents'), openSession);

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

  keepCurrentListed();

  renderSessionList();
}

/** The open session stays in the list (opened by URL, or not on the first page), unless it is a subagent's. */
function keepCurrentListed(): void {
  if (currentId && !current?.view.session?.parentID && !listed.some((s) => s.id === currentId)) {
    remember(currentId, current?.view.session?.title);
  }
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
  keepCurrentListed();

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
let loadingEarlier = false;
/** A failed page is not fetched again by itself (only by the button or a scroll), so a failing call cannot loop. */
let autoLoadFailed = false;

interface MessageEntry {
  node: HTMLElement;
  view: MessageView | null;
  gaps: SessionView['gaps'] | null;
  parts: Map<string, { node: HTMLElement; part: Part; gaps: PartGaps | undefined }>;
}

const messageNodes = new Map<string, MessageEntry>();

function openSession(id: string): void {
  if (id === currentId) return;
  current?.unsubscribe();
  currentId = id;
  messageNodes.clear();
  messagesEl.replaceChildren(loadEarlierEl);
  requests.clear();
  autoLoadFailed = false;
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
  // A subagent's session is reached from its parent, never listed on its own (the gateway's lists leave it out too).
  const parentId = view.session?.parentID;
  parentButton.hidden = !parentId;
  if (parentId) parentButton.dataset.sessionId = parentId;
  else if (view.session?.title) remember(view.sessionId, view.session.title, view.metadata?.tags);

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

  subagents.render(view);
  renderMessages(view);
  requests.render(view);
  loadEarlierIfNothingToScroll(view);
}

/**
 * The message list. Messages paged in above the ones shown keep the view where it was (the first message shown stays
 * in place); a list scrolled to its end follows the answer.
 */
function renderMessages(view: SessionView): void {
  const nearBottom = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 80;
  const anchor = loadEarlierEl.nextElementSibling;
  const anchorTop = anchor?.getBoundingClientRect().top ?? 0;
  showLoadEarlier(view);
  const seen = new Set<string>();
  let previous: Element = loadEarlierEl;
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

    if (previous.nextElementSibling !== entry.node) {
      messagesEl.insertBefore(entry.node, previous.nextElementSibling);
    }

    previous = entry.node;
  }

  for (const [id, entry] of messageNodes) {
    if (!seen.has(id)) {
      entry.node.remove();
      messageNodes.delete(id);
    }
  }

  if (nearBottom) {
    messagesEl.scrollTop = messagesEl.scrollHeight;
  } else if (anchor?.isConnected) {
    messagesEl.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
  }
}

/** The top of the list: a "load earlier" button while older messages exist, a note while they load. */
function showLoadEarlier(view: SessionView): void {
  loadEarlierEl.hidden = !view.earlier;
  loadEarlierEl.dataset.state = loadingEarlier ? 'loading' : 'idle';
  const button = loadEarlierEl.firstElementChild as HTMLButtonElement;
  button.disabled = loadingEarlier;
  button.textContent = loadingEarlier ? 'Loading earlier messages…' : 'Load earlier messages';
}

/** Pages earlier messages in (scrolled to the top, or the button); one page at a time. */
async function loadEarlier(): Promise<void> {
  const handle = current;
  if (!handle || loadingEarlier || !handle.view.earlier) return;
  loadingEarlier = true;
  showLoadEarlier(handle.view);
  try {
    await handle.loadEarlier();
  } catch (e) {
    autoLoadFailed = true;
    showError(e);
  } finally {
    loadingEarlier = false;
    if (handle === current) render(handle.view);
  }
}

/** Messages that do not fill the list cannot be scrolled to the top: page on until they do or none are left. */
function loadEarlierIfNothingToScroll(view: SessionView): void {
  if (view.earlier && !loadingEarlier && !autoLoadFailed && messagesEl.scrollHeight <= messagesEl.clientHeight) void loadEarlier();
}

function updateMessage(entry: MessageEntry, message: MessageView, gaps: SessionView['gaps']): void {
  entry.gaps = gaps;
  const role = message.info.role ?? 'assistant';
  entry.node.dataset.role = role;
  entry.node.className = `message ${role}`;
  const seen = new Set<string>();
  let previous: Element | null = null;
  for (const part of message.parts) {
    let partEntry = entry.parts.get(part.id);
    const partGaps = gaps[part.id];
    if (partEntry && partEntry.part === part && partEntry.gaps === partGaps) {
      seen.add(part.id);
      previous = partEntry.node;
      continue;
    }

    const node = renderPart(part, partEntry?.node, partGaps ?? {}, { openSession });
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
  const files = attachments.parts;
  if (!text && files.length === 0) return;
  // Attachments go as parts after the text; a text alone as the prompt's text.
  const content: string | PromptPart[] = files.length === 0 ? text : [...(text ? [{ type: 'text' as const, text }] : []), ...files];
  sendButton.disabled = true;
  (async () => {
    const id = currentId ?? (await newSession());
    await client.prompt(id, content);
    input.value = '';
    attachments.clear();
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

parentButton.addEventListener('click', () => openSession(parentButton.dataset.sessionId!));
loadEarlierEl.firstElementChild!.addEventListener('click', () => void loadEarlier());
messagesEl.addEventListener('scroll', () => {
  if (messagesEl.scrollTop < 120) void loadEarlier();
});

// Attachments: pasted (a screenshot), dropped anywhere on the composer, or picked.
function attach(files: FileList | null | undefined): void {
  if (files?.length) attachments.add([...files]).catch(showError);
}

input.addEventListener('paste', (e) => {
  if (!e.clipboardData?.files.length) return;
  if (!e.clipboardData.getData('text/plain')) e.preventDefault(); // an image alone: nothing to paste as text
  attach(e.clipboardData.files);
});
composer.addEventListener('dragover', (e) => {
  if (!e.dataTransfer?.types.includes('Files')) return;
  e.preventDefault();
  composer.classList.add('dragging');
});
composer.addEventListener('dragleave', () => composer.classList.remove('dragging'));
composer.addEventListener('drop', (e) => {
  if (!e.dataTransfer?.files.length) return;
  e.preventDefault();
  composer.classList.remove('dragging');
  attach(e.dataTransfer.files);
});
byTestId('attach-button').addEventListener('click', () => fileInput.click());
fileInput.addEventListener('change', () => {
  attach(fileInput.files);
  fileInput.value = '';
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
