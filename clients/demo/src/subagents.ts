/**
 * The subagent panel: a collapsible list of the open session's descendant sessions (opencode's `task` tool starts one
 * per subagent), each with its title and status, nested under its parent; a click opens that session.
 */
import type { ChildSession, SessionView } from '@opencode-gateway/client';
import { el } from './dom';

export class SubagentPanel {
  private shownKey = '';

  constructor(private readonly panel: HTMLDetailsElement, private readonly openSession: (sessionId: string) => void) {}

  render(view: SessionView): void {
    const children = view.children;
    const key = JSON.stringify(children);
    if (key === this.shownKey) return;
    this.shownKey = key;
    this.panel.hidden = children.length === 0;
    const working = children.filter((c) => c.status.type !== 'idle').length;
    this.panel.querySelector('summary')!.textContent =
      `Subagents (${children.length})${working ? ` · ${working} working` : ''}`;
    this.panel.querySelector('ul')!.replaceChildren(...children.map((child) => this.item(child, depth(child, children, view.sessionId))));
  }

  private item(child: ChildSession, level: number): HTMLElement {
    const item = el('li', { 'data-testid': 'subagent', 'data-session-id': child.id });
    item.style.paddingLeft = `${level * 1.25}rem`;
    const button = el('button', { type: 'button', class: 'subagent-button', title: child.id });
    const status = child.status.type === 'busy' ? 'working…' : child.status.type === 'retry' ? 'retrying' : 'idle';
    button.append(
      el('span', { class: 'subagent-title', 'data-testid': 'subagent-title' }, child.title || child.id),
      el('span', { class: 'subagent-status', 'data-testid': 'subagent-status', 'data-status': child.status.type }, status),
    );
    button.addEventListener('click', () => this.openSession(child.id));
    item.append(button);
    return item;
  }
}

/** How deep a descendant sits below the open session (0: its child). */
function depth(child: ChildSession, children: readonly ChildSession[], rootId: string): number {
  let level = 0;
  for (let parent = child.parentId; parent !== rootId && level < children.length; level++) {
    const next = children.find((c) => c.id === parent);
    if (!next) break;
    parent = next.parentId;
  }

  return level;
}
