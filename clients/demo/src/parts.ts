/**
 * How the demo shows a message's parts: text and reasoning as safe markdown, tool calls with their output as it
 * streams, attachments (images as thumbnails). Every streamed text shows a visible mark at each of its gaps.
 */
import { fieldText, StreamedFields, type FilePart, type Part, type ToolPart } from '@opencode-gateway/client';
import { el } from './dom';
import { escapeHtml, renderMarkdown } from './markdown';

/** A part's gaps: field path → sorted UTF-16 offsets. */
export type PartGaps = Readonly<Record<string, readonly number[]>>;

export interface PartActions {
  /** Opens a session (a subagent's) in the page. */
  openSession(sessionId: string): void;
}

/** The tail of a tool's output the page keeps in the DOM (a long build log stays cheap to re-render). */
const toolOutputShown = 20_000;

const gapMark = '<span class="gap" data-testid="gap-mark" title="Part of this text was not received; it appears when the answer ends.">…</span>';

/**
 * `text` cut at `gaps`, each piece rendered apart, a visible mark where text is missing (the gateway lost continuity
 * with opencode there; the final text replaces it). Never a silent splice.
 */
function withGapMarks(text: string, gaps: readonly number[], render: (piece: string) => string): string {
  if (gaps.length === 0) return render(text);
  const pieces: string[] = [];
  let start = 0;
  for (const gap of gaps) {
    if (gap > start) pieces.push(render(text.slice(start, gap)));
    pieces.push(gapMark);
    start = gap;
  }

  pieces.push(render(text.slice(start)));
  return pieces.join('');
}

/** Renders (or updates in place) one part; null for parts the demo does not show. */
export function renderPart(part: Part, existing: HTMLElement | undefined, gaps: PartGaps, actions: PartActions): HTMLElement | null {
  switch (part.type) {
    case 'text':
    case undefined: {
      if (part.type === 'text' && part.synthetic === true) return null;
      const node = existing?.classList.contains('text') ? existing : el('div', { class: 'part text markdown', 'data-testid': 'text-part' });
      node.dataset.partId = part.id;
      node.innerHTML = withGapMarks(part.text ?? '', gaps[StreamedFields.Text] ?? [], renderMarkdown);
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
      node.querySelector('.markdown')!.innerHTML = withGapMarks(part.text ?? '', gaps[StreamedFields.Text] ?? [], renderMarkdown);
      return node;
    }
    case 'tool':
      return renderTool(part, existing?.classList.contains('tool') ? existing : toolNode(actions), gaps);
    case 'file':
      return renderFile(part, existing?.classList.contains('file') ? existing : null);
    default:
      return null; // step-start, step-finish, snapshot, patch, …
  }
}

function toolNode(actions: PartActions): HTMLElement {
  const node = el('div', { class: 'part tool', 'data-testid': 'tool-part' });
  node.innerHTML = `
    <div class="tool-head">
      <span class="tool-name"></span>
      <span class="tool-status" data-testid="tool-status"></span>
    </div>
    <div class="tool-summary" hidden><code></code></div>
    <button type="button" class="link" data-testid="open-subagent" hidden>Open the subagent's session</button>
    <pre class="tool-output" data-testid="tool-output" hidden></pre>`;
  const open = node.querySelector<HTMLButtonElement>('[data-testid="open-subagent"]')!;
  open.addEventListener('click', () => actions.openSession(open.dataset.sessionId!));
  return node;
}

/** The tool card: name, status, what it does, its output as it streams (the tail kept scrolled into view). */
function renderTool(part: ToolPart, node: HTMLElement, gaps: PartGaps): HTMLElement {
  const state = part.state;
  const status = state?.status ?? 'pending';
  node.dataset.partId = part.id;
  node.dataset.status = status;
  node.querySelector('.tool-name')!.textContent = part.tool ?? 'tool';
  const statusNode = node.querySelector<HTMLElement>('.tool-status')!;
  statusNode.dataset.status = status;
  statusNode.textContent = status;

  const input: Record<string, unknown> = state?.input ?? {};
  const title = state?.status === 'running' || state?.status === 'completed' ? state.title : undefined;
  const summary = title ?? [input.command, input.filePath, input.description].find((v) => typeof v === 'string') ?? '';
  const summaryNode = node.querySelector<HTMLElement>('.tool-summary')!;
  summaryNode.hidden = !summary;
  summaryNode.firstElementChild!.textContent = String(summary);

  const subagent = state && 'metadata' in state ? state.metadata?.sessionId : undefined;
  const open = node.querySelector<HTMLButtonElement>('[data-testid="open-subagent"]')!;
  open.hidden = part.tool !== 'task' || typeof subagent !== 'string';
  if (typeof subagent === 'string') open.dataset.sessionId = subagent;

  const { text, field } = shownOutput(part);
  const pre = node.querySelector<HTMLElement>('.tool-output')!;
  const following = pre.hidden || pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  pre.hidden = !text;
  pre.innerHTML = outputTail(text, field ? (gaps[field] ?? []) : []);
  if (following) pre.scrollTop = pre.scrollHeight;
  return node;
}

/** What a tool card shows: its streamed output while it runs, the completed output, or the error. */
function shownOutput(part: ToolPart): { text: string; field: string | null } {
  if (part.state?.status === 'error') return { text: part.state.error ?? '', field: null };
  const output = fieldText(part, StreamedFields.ToolOutput);
  if (part.state?.status === 'completed' && output !== undefined) return { text: output, field: StreamedFields.ToolOutput };
  return { text: fieldText(part, StreamedFields.ToolMetadataOutput) ?? '', field: StreamedFields.ToolMetadataOutput };
}

/** The last `toolOutputShown` characters of a tool's output, escaped, with its gap marks. */
function outputTail(text: string, gaps: readonly number[]): string {
  const start = Math.max(0, text.length - toolOutputShown);
  const shown = withGapMarks(text.slice(start), gaps.filter((g) => g > start).map((g) => g - start), escapeHtml);
  return start > 0 ? `<span class="trimmed">… ${start} characters before</span>\n${shown}` : shown;
}

/** An attachment: an image as a thumbnail (only from a data: URL: nothing is fetched from elsewhere), else its name. */
function renderFile(part: FilePart, existing: HTMLElement | null): HTMLElement {
  const node = existing ?? el('div', { class: 'part file', 'data-testid': 'file-part' });
  node.dataset.partId = part.id;
  node.dataset.mime = part.mime;
  const name = part.filename ?? part.mime;
  if (part.mime?.startsWith('image/') && part.url?.startsWith('data:image/')) {
    let img = node.querySelector<HTMLImageElement>('img');
    if (!img) {
      img = el('img', { class: 'attachment-image', 'data-testid': 'file-image' });
      node.replaceChildren(img);
    }

    if (img.getAttribute('src') !== part.url) img.src = part.url;
    img.alt = name;
    img.title = name;
  } else {
    node.textContent = `Attachment: ${name}`;
  }

  return node;
}
