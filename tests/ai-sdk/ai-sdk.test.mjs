// The AI SDK's own client code against the gateway's /api/ai-sdk/chat: DefaultChatTransport (what useChat uses to
// send and to resume) and readUIMessageStream (what builds the UI message from the chunks), against the gateway run
// as its own process in front of the real opencode with the mock LLM (deploy/dev). Run with ./run.sh.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DefaultChatTransport, readUIMessageStream, validateUIMessages } from 'ai';
import { auth, mintToken } from '../browser/lib/auth.mjs';
import { startGateway, startOpencode, stopAll, storedAssistantText } from '../browser/lib/stack.mjs';

const alice = mintToken('ai-sdk-alice');
const bob = mintToken('ai-sdk-bob');
const mockAnswer = (tokens) => Array.from({ length: tokens }, (_, i) => `t${i + 1} `).join('');
const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
const userMessage = (text) => ({ id: randomUUID(), role: 'user', parts: [{ type: 'text', text }] });

describe('AI SDK UI message stream (/api/ai-sdk/chat)', { concurrency: false }, () => {
  let opencode;
  let gateway;
  let api;

  before(async () => {
    opencode = startOpencode();
    gateway = await startGateway(opencode, undefined, {
      log: 'gateway-ai-sdk.log',
    });
    api = `${gateway.url}/api/ai-sdk/chat`;
  }, { timeout: 120_000 });

  after(() => stopAll());

  const transport = (token = alice) => new DefaultChatTransport({ api, headers: { authorization: `Bearer ${token}` } });
  const get = (path, token = alice) => fetch(`${api}/${path}`, { headers: { authorization: `Bearer ${token}` } });

  /** The chat's session id, from the history's providerMetadata-free route: the session list of the owner. */
  async function sessionOf(chatId, token = alice) {
    const response = await get(`${encodeURIComponent(chatId)}/messages`, token);
    assert.equal(response.status, 200);
    const list = await (await fetch(`${gateway.url}/api/sessions`, { headers: { authorization: `Bearer ${token}` } })).json();
    return list.items[0].sessionId;
  }

  /**
   * Reads a stream of chunks into UI messages with the AI SDK; checks at every update that the text shown is a
   * prefix of `final` when given; calls `onMessage` for each. Returns the last message and every text seen.
   */
  async function read(stream, { final, onMessage } = {}) {
    let last;
    const texts = [];
    for await (const message of readUIMessageStream({ stream, terminateOnError: true })) {
      last = message;
      const text = textOf(message);
      texts.push(text);
      if (final !== undefined) assert.ok(final.startsWith(text), `not a prefix of the answer: '${text}'`);
      await onMessage?.(message);
    }

    return { message: last, texts };
  }

  it('streams a full answer with a tool call whose permission is answered, then loads it as UIMessage[]', { timeout: 60_000 }, async () => {
    const chatId = `chat-${randomUUID()}`;
    const stream = await transport().sendMessages({
      chatId,
      messages: [userMessage('run the tool=bash')],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });

    const replied = new Set();
    const { message } = await read(stream, {
      final: 'Tool finished. t1 t2 t3 t4 t5 ',
      onMessage: async (m) => {
        for (const part of m.parts) {
          if (part.type === 'data-opencode-permission' && part.data.status === 'pending' && !replied.has(part.id)) {
            replied.add(part.id);
            const response = await fetch(`${api}/${chatId}/permissions/${part.id}`, {
              method: 'POST',
              headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
              body: JSON.stringify({ reply: 'once' }),
            });
            assert.equal(response.status, 204, await response.text());
          }
        }
      },
    });

    assert.equal(replied.size, 1, 'one permission request was shown and answered');
    assert.equal(message.role, 'assistant');
    assert.match(message.id, /^msg_/);
    const tool = message.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(tool.toolName, 'bash');
    assert.equal(tool.state, 'output-available');
    assert.equal(tool.input.command, 'echo mock-tool-output');
    assert.match(tool.output, /mock-tool-output/);
    assert.equal(tool.providerExecuted, true);
    const permission = message.parts.find((p) => p.type === 'data-opencode-permission');
    assert.equal(permission.data.status, 'once');
    assert.equal(permission.data.toolCallId, tool.toolCallId);
    assert.ok(message.parts.filter((p) => p.type === 'step-start').length >= 2, 'one step per opencode step');

    const sessionId = await sessionOf(chatId);
    const stored = await storedAssistantText(opencode, sessionId);
    assert.equal(textOf(message), stored);

    // The history: one GET, in the AI SDK's UIMessage shape (validated by the SDK itself).
    const history = await (await get(`${chatId}/messages`)).json();
    await validateUIMessages({ messages: history });
    assert.deepEqual(history.map((m) => m.role), ['user', 'assistant']);
    assert.equal(history[0].parts[0].text, 'run the tool=bash');
    assert.equal(history[1].id, message.id, 'the history names the answer as the stream did');
    assert.equal(textOf(history[1]), stored);
    assert.equal(history[1].parts.find((p) => p.type === 'dynamic-tool').state, 'output-available');

    // Nothing is streaming now: the transport's resume answers null (204).
    assert.equal(await transport().reconnectToStream({ chatId }), null);
  });

  it('resumes an answer cut mid-stream, restated from its start, ending identical to opencode', { timeout: 60_000 }, async () => {
    const chatId = `chat-${randomUUID()}`;
    const tokens = 200;
    const final = mockAnswer(tokens);
    const abort = new AbortController();
    const first = await transport().sendMessages({
      chatId,
      messages: [userMessage(`resume me reasoning=3 tokens=${tokens} delay=15`)],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: abort.signal,
    });

    // Read until some of the text arrived, then cut the stream as a reload does.
    let cutAt;
    let firstId;
    try {
      await read(first, {
        final,
        onMessage: (m) => {
          firstId = m.id;
          if (textOf(m).length > 60) {
            cutAt = textOf(m);
            abort.abort();
          }
        },
      });
    } catch (e) {
      if (e.name !== 'AbortError') throw e;
    }

    assert.ok(cutAt && cutAt.length < final.length, `cut mid-answer (${cutAt?.length} of ${final.length} chars)`);

    // Mid-answer, the history shows the answer so far under the same id the stream will restate it with.
    const history = await (await get(`${chatId}/messages`)).json();
    await validateUIMessages({ messages: history });
    assert.equal(history.at(-1).id, firstId);
    assert.ok(final.startsWith(textOf(history.at(-1))));

    const resumed = await transport().reconnectToStream({ chatId });
    assert.ok(resumed, 'an answer is streaming: the resume has a body');
    const { message, texts } = await read(resumed, { final });
    assert.equal(message.id, firstId);
    assert.ok(texts.some((t) => t.length > 0 && t.length < final.length), 'the resumed stream went on live');
    assert.equal(message.parts.find((p) => p.type === 'reasoning')?.text, 'r1 r2 r3 ');
    assert.equal(textOf(message), final);
    assert.equal(await storedAssistantText(opencode, await sessionOf(chatId)), final);
  });

  it('refuses an unknown or foreign chat id with 404 session_not_found, and an anonymous caller with 401', { timeout: 60_000 }, async () => {
    const chatId = `chat-${randomUUID()}`;
    const stream = await transport().sendMessages({
      chatId,
      messages: [userMessage('mine tokens=3')],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });
    await read(stream);
    const aliceSession = await sessionOf(chatId);

    const problems = [
      await get(`${chatId}/stream`, bob), // alice's chat id, bob's request: bob has no such chat
      await get(`${chatId}/messages`, bob),
      await get(`${aliceSession}/messages`, bob), // alice's session id as a chat id
      await get(`chat-${randomUUID()}/stream`), // nobody's
      await fetch(api, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: aliceSession, messages: [userMessage('not yours')], trigger: 'submit-message' }),
      }),
    ];
    for (const response of problems) {
      assert.equal(response.status, 404);
      assert.equal(response.headers.get('content-type'), 'application/problem+json');
      assert.equal((await response.json()).code, 'session_not_found');
    }

    await assert.rejects(transport(bob).reconnectToStream({ chatId }), (e) => /not found/i.test(e.message));
    const anonymous = await fetch(`${api}/${chatId}/messages`);
    assert.equal(anonymous.status, 401);
    // bob's request changed nothing of alice's chat
    assert.deepEqual((await (await get(`${chatId}/messages`)).json()).map((m) => m.role), ['user', 'assistant']);
  });
});
