/**
 * What a run waits for, shown above the composer: every pending permission request and question of the open session
 * and of its subagents (each saying which subagent asked), answered through the open session. Cards are kept by
 * request id, so a choice being made survives the re-renders of a streaming answer.
 */
import type { ChildSession, PermissionReply, PermissionRequest, QuestionInfo, QuestionRequest, SessionView } from '@opencode-gateway/client';
import { el } from './dom';

export interface RequestActions {
  replyPermission(requestId: string, reply: PermissionReply): Promise<void>;
  replyQuestion(requestId: string, answers: string[][]): Promise<void>;
  rejectQuestion(requestId: string): Promise<void>;
  showError(error: unknown): void;
}

export class PendingRequests {
  private readonly cards = new Map<string, HTMLElement>();

  constructor(private readonly container: HTMLElement, private readonly actions: RequestActions) {}

  /** Shows the view's pending requests, in order: permissions, then questions. */
  render(view: SessionView): void {
    const requests: [string, HTMLElement][] = [
      ...view.permissions.map((p): [string, HTMLElement] => [p.id, this.cards.get(p.id) ?? this.permissionCard(p)]),
      ...view.questions.map((q): [string, HTMLElement] => [q.id, this.cards.get(q.id) ?? this.questionCard(q)]),
    ];
    const pending = new Set(requests.map(([id]) => id));
    for (const [id, card] of this.cards) {
      if (!pending.has(id)) {
        card.remove();
        this.cards.delete(id);
      }
    }

    let previous: Element | null = null;
    for (const [id, card] of requests) {
      this.cards.set(id, card);
      const sessionId = view.permissions.find((p) => p.id === id)?.sessionID ?? view.questions.find((q) => q.id === id)?.sessionID;
      showOrigin(card, sessionId, view);
      const expected: Element | null = previous ? previous.nextElementSibling : this.container.firstElementChild;
      if (expected !== card) this.container.insertBefore(card, expected);
      previous = card;
    }
  }

  clear(): void {
    this.cards.clear();
    this.container.replaceChildren();
  }

  private permissionCard(p: PermissionRequest): HTMLElement {
    const card = el('div', { class: 'permission request', 'data-testid': 'permission', 'data-request-id': p.id });
    const what = (p.patterns ?? []).join(', ') || String((p.metadata as Record<string, unknown> | undefined)?.command ?? '');
    card.append(
      el('div', { class: 'request-origin', 'data-testid': 'request-origin', hidden: '' }),
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
      button.addEventListener('click', () => this.send(card, () => this.actions.replyPermission(p.id, reply)));
      buttons.append(button);
    }

    card.append(buttons);
    return card;
  }

  /**
   * A question card. A single one-choice question answers with one click on an option; otherwise options are
   * checkboxes (several may be chosen) or radio buttons, sent together with "Send answer". "Dismiss" rejects it.
   */
  private questionCard(q: QuestionRequest): HTMLElement {
    const card = el('div', { class: 'question request', 'data-testid': 'question', 'data-request-id': q.id });
    card.append(el('div', { class: 'request-origin', 'data-testid': 'request-origin', hidden: '' }));
    const oneClick = q.questions.length === 1 && !q.questions[0]!.multiple;
    const choices: (() => string[])[] = [];
    q.questions.forEach((question, index) => {
      const item = el('fieldset', { class: 'question-item' });
      if (question.header) item.append(el('legend', {}, question.header));
      item.append(el('p', { class: 'question-text' }, question.question));
      const options = el('div', { class: 'question-options' });
      item.append(options);
      card.append(item);
      if (oneClick) this.optionButtons(card, q, question, options);
      else choices.push(optionInputs(q, index, question, options));
    });

    const buttons = el('div', { class: 'permission-buttons' });
    if (!oneClick) {
      const submit = el('button', { type: 'button', class: 'primary', 'data-testid': 'question-submit' }, 'Send answer');
      submit.addEventListener('click', () => {
        const answers = choices.map((chosen) => chosen());
        if (answers.some((a) => a.length === 0)) this.actions.showError(new Error('Choose an answer to every question first.'));
        else this.send(card, () => this.actions.replyQuestion(q.id, answers));
      });
      buttons.append(submit);
    }

    const dismiss = el('button', { type: 'button', class: 'secondary', 'data-testid': 'question-dismiss' }, 'Dismiss');
    dismiss.addEventListener('click', () => this.send(card, () => this.actions.rejectQuestion(q.id)));
    buttons.append(dismiss);
    card.append(buttons);
    return card;
  }

  /** One button per option; a click answers the question with it. */
  private optionButtons(card: HTMLElement, q: QuestionRequest, question: QuestionInfo, container: HTMLElement): void {
    for (const option of question.options) {
      const button = el('button', { type: 'button', class: 'option', 'data-testid': 'question-option', 'data-label': option.label, title: option.description ?? '' }, option.label);
      button.addEventListener('click', () => this.send(card, () => this.actions.replyQuestion(q.id, [[option.label]])));
      container.append(button);
    }
  }

  /** Disables the card's buttons while `call` runs; enables them again when it failed, and says why. */
  private send(card: HTMLElement, call: () => Promise<void>): void {
    const buttons = [...card.querySelectorAll('button')];
    buttons.forEach((b) => (b.disabled = true));
    call().catch((e: unknown) => {
      buttons.forEach((b) => (b.disabled = false));
      this.actions.showError(e);
    });
  }
}

/** Checkboxes (or radio buttons for one choice) per option; returns what is chosen. */
function optionInputs(q: QuestionRequest, index: number, question: QuestionInfo, container: HTMLElement): () => string[] {
  const inputs = question.options.map((option) => {
    const label = el('label', { class: 'option', 'data-testid': 'question-choice', 'data-label': option.label });
    const input = el('input', { type: question.multiple ? 'checkbox' : 'radio', name: `${q.id}-${index}`, value: option.label });
    label.append(input, ` ${option.label}`);
    if (option.description) label.append(el('span', { class: 'option-description' }, ` — ${option.description}`));
    container.append(label);
    return input;
  });
  return () => inputs.filter((input) => input.checked).map((input) => input.value);
}

/** "Asked by subagent …" on a request of a descendant session, hidden on the open session's own. */
function showOrigin(card: HTMLElement, sessionId: string | undefined, view: SessionView): void {
  const origin = card.querySelector<HTMLElement>('[data-testid="request-origin"]')!;
  const fromChild = sessionId !== undefined && sessionId !== view.sessionId;
  origin.hidden = !fromChild;
  if (fromChild) {
    origin.dataset.sessionId = sessionId;
    origin.textContent = `Asked by subagent ${childTitle(view.children, sessionId)}`;
  }
}

function childTitle(children: readonly ChildSession[], sessionId: string): string {
  const title = children.find((c) => c.id === sessionId)?.title;
  return title ? `“${title}”` : sessionId;
}
