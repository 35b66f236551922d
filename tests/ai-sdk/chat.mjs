// useChat without React: the AI SDK's own AbstractChat (what @ai-sdk/react's Chat extends) over a plain in-memory
// state, so the suite drives the real sendMessage / addToolApprovalResponse / addToolOutput / sendAutomaticallyWhen
// logic against the gateway.
import { AbstractChat } from 'ai';

class MemoryChatState {
  constructor(messages = []) {
    this.messages = messages;
    this.status = 'ready';
    this.error = undefined;
    this.listeners = new Set();
  }

  pushMessage = (message) => {
    this.messages = [...this.messages, message];
    this.changed();
  };

  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
    this.changed();
  };

  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
    this.changed();
  };

  snapshot = (value) => structuredClone(value);

  changed() {
    for (const listener of this.listeners) listener();
  }
}

export class NodeChat extends AbstractChat {
  constructor({ messages, ...init }) {
    const state = new MemoryChatState(messages);
    super({ ...init, state });
    this.memory = state;
  }

  /**
   * Resolves with the chat once `predicate(chat)` holds while no request is in flight (status ready), rejects on an
   * error status or after `timeout` ms. Checked at every state change.
   */
  until(predicate, { timeout = 30_000, what = 'the expected state' } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.status === 'error') {
          done();
          reject(this.error ?? new Error('chat error'));
        } else if (this.status === 'ready' && predicate(this)) {
          done();
          resolve(this);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}; status ${this.status}; last message: ${JSON.stringify(this.lastMessage)}`));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        this.memory.listeners.delete(listener);
      };
      // Status changes do not go through the message functions: poll them too.
      const listener = () => queueMicrotask(check);
      this.memory.listeners.add(listener);
      const poll = setInterval(() => {
        if (!this.memory.listeners.has(listener)) clearInterval(poll);
        else check();
      }, 50);
      check();
    });
  }
}
