// The AI SDK's own client code against the gateway's /api/ai-sdk/chat: DefaultChatTransport (what useChat uses to
// send and to resume) and readUIMessageStream (what builds the UI message from the chunks), against the gateway run
// as its own process in front of the real opencode with the mock LLM (deploy/dev). Run with ./run.sh.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithApprovalResponses,
  lastAssistantMessageIsCompleteWithToolCalls,
  readUIMessageStream,
  validateUIMessages,
} from 'ai';
import { auth, mintToken } from '../browser/lib/auth.mjs';
import { startGateway, startOpencode, stopAll, storedAssistantText } from '../browser/lib/stack.mjs';
import { NodeChat } from './chat.mjs';

const alice = mintToken('ai-sdk-alice');
const bob = mintToken('ai-sdk-bob');
const mockAnswer = (tokens) => Array.from({ length: tokens }, (_, i) => `t${i + 1} `).join('');
const textOf = (message) => message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
const userMessage = (text) => ({ id: randomUUID(), role: 'user', parts: [{ type: 'text', text }] });
/** As the README's useChat: send once every approval and every question of the last step is answered. */
const sendAutomaticallyWhen = (options) =>
  lastAssistantMessageIsCompleteWithApprovalResponses(options) || lastAssistantMessageIsCompleteWithToolCalls(options);
/** The message's tool part whose approval is in `state` (requested, responded). */
const approvalOf = (message, state) => message?.parts.find((p) => p.type === 'dynamic-tool' && p.state === `approval-${state}`);
/** The message's question waiting for the app's answer. */
const questionOf = (message) =>
  message?.parts.find((p) => p.type === 'dynamic-tool' && p.toolName === 'question' && p.state === 'input-available' && p.providerExecuted === false);

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
  /** The transport the README recommends with attachments: only the last message is sent (the gateway reads no other). */
  const lastMessageOnly = (token = alice) => new DefaultChatTransport({
    api,
    headers: { authorization: `Bearer ${token}` },
    prepareSendMessagesRequest: ({ id, messages, trigger, messageId }) => ({ body: { id, messages: messages.slice(-1), trigger, messageId } }),
  });
  const newChat = (init = {}) => new NodeChat({ id: `chat-${randomUUID()}`, transport: transport(), ...init });
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

  it('streams an answer to the tool call that waits for permission, answered through its route, resumed, then loads it as UIMessage[]', { timeout: 60_000 }, async () => {
    const chatId = `chat-${randomUUID()}`;
    const stream = await transport().sendMessages({
      chatId,
      messages: [userMessage('run the tool=bash')],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });

    // The stream ends where the run waits: the tool call asks for approval, the request is also a data part.
    const { message: waiting } = await read(stream, { final: 'Tool finished. t1 t2 t3 t4 t5 ' });
    const asking = waiting.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(asking.state, 'approval-requested');
    const pending = waiting.parts.find((p) => p.type === 'data-opencode-permission');
    assert.equal(pending.data.status, 'pending');
    assert.equal(pending.id, asking.approval.id);
    assert.equal(pending.data.toolCallId, asking.toolCallId);
    const replied = await fetch(`${api}/${chatId}/permissions/${pending.id}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reply: 'once' }),
    });
    assert.equal(replied.status, 204, await replied.text());

    // The rest: the transport's resume replays the answer from its start, then live, to its end.
    const resumed = await transport().reconnectToStream({ chatId });
    assert.ok(resumed, 'the answer goes on: the resume has a body');
    const { message } = await read(resumed, { final: 'Tool finished. t1 t2 t3 t4 t5 ' });
    assert.equal(message.role, 'assistant');
    assert.equal(message.id, waiting.id);
    assert.match(message.id, /^msg_/);
    const tool = message.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(tool.toolName, 'bash');
    assert.equal(tool.state, 'output-available');
    assert.equal(tool.input.command, 'echo mock-tool-output');
    assert.match(tool.output, /mock-tool-output/);
    assert.equal(tool.providerExecuted, true);
    // A replay shows what opencode holds: the request was answered before it, so it is no longer shown.
    assert.equal(tool.approval, undefined);
    assert.equal(message.parts.some((p) => p.type === 'data-opencode-permission'), false);
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

  it("useChat's tool approval: addToolApprovalResponse answers the permission and the same message goes on", { timeout: 60_000 }, async () => {
    const chat = newChat({ sendAutomaticallyWhen });
    await chat.sendMessage({ text: 'run the tool=bash' });
    await chat.until(() => approvalOf(chat.lastMessage, 'requested'), { what: 'the approval request' });
    assert.equal(chat.messages.length, 2);
    const asking = chat.lastMessage.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(asking.toolName, 'bash');
    assert.equal(asking.input.command, 'echo mock-tool-output');
    // The page reloaded here would show the same: the history has the approval request on the same call.
    const before = await (await get(`${chat.id}/messages`)).json();
    await validateUIMessages({ messages: before });
    assert.deepEqual(before.at(-1).parts.find((p) => p.type === 'dynamic-tool').approval, { id: asking.approval.id });

    await chat.addToolApprovalResponse({ id: asking.approval.id, approved: true });
    await chat.until(() => textOf(chat.lastMessage) === 'Tool finished. t1 t2 t3 t4 t5 ', { what: 'the rest of the answer' });

    assert.deepEqual(chat.messages.map((m) => m.role), ['user', 'assistant'], 'the answer went on in the same message');
    const tool = chat.lastMessage.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(tool.state, 'output-available');
    assert.deepEqual(tool.approval, { id: asking.approval.id, approved: true });
    assert.match(tool.output, /mock-tool-output/);
    assert.equal(chat.lastMessage.parts.filter((p) => p.type === 'dynamic-tool').length, 1);
    await validateUIMessages({ messages: chat.messages });
    assert.equal(textOf(chat.lastMessage), await storedAssistantText(opencode, await sessionOf(chat.id)));

    // Again, answered after a reload: a new chat from the history, whose copy of the answer the gateway continues.
    await chat.sendMessage({ text: 'once more tool=bash' });
    await chat.until(() => approvalOf(chat.lastMessage, 'requested'), { what: 'the second approval request' });
    const history = await (await get(`${chat.id}/messages`)).json();
    await validateUIMessages({ messages: history });
    const reloaded = newChat({ id: chat.id, messages: history, sendAutomaticallyWhen });
    const second = approvalOf(reloaded.lastMessage, 'requested');
    assert.equal(second.toolCallId, approvalOf(chat.lastMessage, 'requested').toolCallId);
    await reloaded.addToolApprovalResponse({ id: second.approval.id, approved: true });
    await reloaded.until(() => textOf(reloaded.lastMessage).endsWith('Tool finished. t1 t2 t3 t4 t5 '), { what: 'the second answer' });
    assert.deepEqual(reloaded.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    assert.equal(reloaded.lastMessage.parts.find((p) => p.type === 'dynamic-tool').state, 'output-available');
    await validateUIMessages({ messages: reloaded.messages });
  });

  it("a subagent's permission is the approval of the root's task call: given, the run completes; refused, the call is denied", { timeout: 90_000 }, async () => {
    const subagent = 'go tool=task args={"description":"sub task","prompt":"do it tool=bash","subagent_type":"general"}';
    const chat = newChat({ sendAutomaticallyWhen });
    await chat.sendMessage({ text: subagent });
    await chat.until(() => approvalOf(chat.lastMessage, 'requested'), { what: "the subagent's approval request" });
    const approved = approvalOf(chat.lastMessage, 'requested');
    assert.equal(approved.toolName, 'task');
    await chat.addToolApprovalResponse({ id: approved.approval.id, approved: true });
    await chat.until(() => textOf(chat.lastMessage) === 'Tool finished. t1 t2 t3 t4 t5 ', { what: 'the end of the first answer' });
    const completed = chat.lastMessage.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(completed.state, 'output-available');
    assert.match(completed.output, /Tool finished/, "the subagent's own answer, after its bash call ran");
    assert.equal(textOf(chat.lastMessage), await storedAssistantText(opencode, await sessionOf(chat.id)));

    await chat.sendMessage({ text: subagent });
    await chat.until(() => approvalOf(chat.lastMessage, 'requested'), { what: "the second subagent's approval request" });
    const task = chat.lastMessage.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(task.toolName, 'task');
    const permission = chat.lastMessage.parts.find((p) => p.type === 'data-opencode-permission');
    assert.equal(permission.id, task.approval.id);
    assert.equal(permission.data.toolCallId, task.toolCallId);
    assert.match(permission.data.childSessionId, /^ses_/);
    assert.equal(permission.data.request.sessionID, permission.data.childSessionId);
    assert.notEqual(permission.data.childSessionId, await sessionOf(chat.id));

    await chat.addToolApprovalResponse({ id: task.approval.id, approved: false, reason: 'not today' });
    await chat.until(() => textOf(chat.lastMessage) === 'Tool finished. t1 t2 t3 t4 t5 ', { what: 'the end of the answer' });

    const denied = chat.lastMessage.parts.find((p) => p.type === 'dynamic-tool');
    assert.equal(denied.state, 'output-denied');
    assert.deepEqual(denied.approval, { id: task.approval.id, approved: false, reason: 'not today' });
    assert.equal(chat.lastMessage.parts.find((p) => p.type === 'data-opencode-permission').data.status, 'reject');
    await validateUIMessages({ messages: chat.messages });
  });

  it("a question is a tool part useChat answers with addToolOutput, and dismisses with an output error", { timeout: 90_000 }, async () => {
    const ask = 'ask tool=question args={"questions":[{"question":"Which color?","header":"Color","options":[{"label":"Red","description":"r"},{"label":"Blue","description":"b"}]}]}';
    let posts = 0;
    const counted = new DefaultChatTransport({
      api,
      headers: { authorization: `Bearer ${alice}` },
      fetch: (url, init) => {
        if (init?.method === 'POST') posts++;
        return fetch(url, init);
      },
    });
    const chat = newChat({ sendAutomaticallyWhen, transport: counted });
    await chat.sendMessage({ text: ask });
    await chat.until(() => questionOf(chat.lastMessage), { what: 'the question' });
    const asked = questionOf(chat.lastMessage);
    assert.equal(asked.input.questions[0].question, 'Which color?');
    assert.deepEqual(asked.input.questions[0].options.map((o) => o.label), ['Red', 'Blue']);
    assert.match(asked.callProviderMetadata.opencode.requestId, /^que_/);

    await chat.addToolOutput({ tool: 'question', toolCallId: asked.toolCallId, output: { answers: [['Red']] } });
    await chat.until(() => textOf(chat.lastMessage) === 'Tool finished. t1 t2 t3 t4 t5 ', { what: 'the answer after the reply' });
    const answered = chat.lastMessage.parts.find((p) => p.toolCallId === asked.toolCallId);
    assert.equal(answered.state, 'output-available');
    assert.match(answered.output, /Which color\?"="Red"/);
    await validateUIMessages({ messages: chat.messages });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(posts, 2, 'the prompt and the answer: nothing sent again by itself');

    // Asked again, and dismissed: the run ends with the tool's error.
    await chat.sendMessage({ text: ask });
    await chat.until(() => questionOf(chat.lastMessage), { what: 'the second question' });
    const second = questionOf(chat.lastMessage);
    await chat.addToolOutput({ tool: 'question', toolCallId: second.toolCallId, state: 'output-error', errorText: 'no answer' });
    await chat.until(() => chat.lastMessage.parts.find((p) => p.toolCallId === second.toolCallId)?.state === 'output-error'
      && !questionOf(chat.lastMessage), { what: 'the dismissed question' });
    assert.equal(await transport().reconnectToStream({ chatId: chat.id }), null, 'the run ended');
    assert.deepEqual(chat.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(posts, 4);
  });

  it('a question answered through its route: the transport resumes the rest, and a second answer is question_not_found', { timeout: 60_000 }, async () => {
    const chatId = `chat-${randomUUID()}`;
    const ask = 'ask tool=question args={"questions":[{"question":"Which color?","header":"Color","options":[{"label":"Red","description":"r"},{"label":"Blue","description":"b"}]}]}';
    const { message: waiting } = await read(await transport().sendMessages({
      chatId, messages: [userMessage(ask)], trigger: 'submit-message', messageId: undefined, abortSignal: undefined,
    }));
    const question = questionOf(waiting);
    assert.ok(question, `a question part: ${JSON.stringify(waiting.parts)}`);
    const requestId = question.callProviderMetadata.opencode.requestId;

    const reply = () => fetch(`${api}/${chatId}/questions/${requestId}/reply`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ answers: [['Blue']] }),
    });
    const replied = await reply();
    assert.equal(replied.status, 204, await replied.text());
    const resumed = await transport().reconnectToStream({ chatId });
    const { message } = resumed ? await read(resumed) : { message: (await (await get(`${chatId}/messages`)).json()).at(-1) };
    assert.match(message.parts.find((p) => p.toolCallId === question.toolCallId).output, /"Which color\?"="Blue"/);
    assert.equal(textOf(message), await storedAssistantText(opencode, await sessionOf(chatId)));

    const again = await reply();
    assert.equal(again.status, 404);
    assert.equal((await again.json()).code, 'question_not_found');
  });

  it('sends useChat attachments as file parts that opencode stores, and the history shows them', { timeout: 60_000 }, async () => {
    const png = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';
    // Near the default 5 MiB limit: past the 4 MiB the route took before, within the attachment limit.
    const big = `data:text/plain;base64,${Buffer.alloc(4_800_000, 'attached line\n').toString('base64')}`;
    const chat = newChat({ transport: lastMessageOnly() });
    await chat.sendMessage({
      text: 'see the attachments tokens=3',
      files: [{ type: 'file', mediaType: 'image/png', filename: 'dot.png', url: png }, { type: 'file', mediaType: 'text/plain', filename: 'notes.txt', url: big }],
    });
    await chat.until(() => textOf(chat.lastMessage) === 't1 t2 t3 ', { what: 'the answer' });

    const history = await (await get(`${chat.id}/messages`)).json();
    await validateUIMessages({ messages: history });
    const files = history[0].parts.filter((p) => p.type === 'file');
    assert.deepEqual(files.map((f) => [f.mediaType, f.filename, f.url === png || f.url === big]), [['image/png', 'dot.png', true], ['text/plain', 'notes.txt', true]]);
    assert.equal(files[1].url, big);
    assert.equal(history[0].parts.find((p) => p.type === 'text').text, 'see the attachments tokens=3');

    const tooBig = await fetch(api, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: chat.id, trigger: 'submit-message', messages: [{ id: 'x', role: 'user', parts: [{ type: 'file', mediaType: 'text/plain', url: `data:text/plain;base64,${Buffer.alloc(5 * 1024 * 1024 + 1).toString('base64')}` }] }] }),
    });
    assert.equal(tooBig.status, 413);
    const problem = await tooBig.json();
    assert.equal(problem.code, 'payload_too_large');
    assert.ok(problem.errors['messages[0].parts[0].url'], JSON.stringify(problem));
  });

  it('pages the history back on whole answers with the x-opencode-earlier cursor', { timeout: 120_000 }, async () => {
    const chat = newChat({ transport: lastMessageOnly() });
    const turns = 13; // 26 messages: more than the newest 20 a snapshot holds
    for (let i = 1; i <= turns; i++) {
      await chat.sendMessage({ text: `turn ${i} tokens=1 delay=0` });
      await chat.until(() => chat.lastMessage.role === 'assistant' && textOf(chat.lastMessage) === 't1 ', { what: `answer ${i}` });
    }

    const pages = [];
    let path = `${chat.id}/messages`;
    for (;;) {
      const response = await get(path);
      assert.equal(response.status, 200);
      const page = await response.json();
      await validateUIMessages({ messages: page });
      assert.equal(page[0].role, 'user', 'a page starts with a user message: no answer is cut');
      pages.unshift(page);
      const earlier = response.headers.get('x-opencode-earlier');
      if (!earlier) break;
      // 2 messages: a whole turn; then 3, which cut an answer: the page widens to its start.
      path = `${chat.id}/messages?before=${encodeURIComponent(earlier)}&limit=${pages.length === 1 ? 2 : 3}`;
    }

    assert.deepEqual(pages.map((p) => p.length), [4, 2, 20]);
    const all = pages.flat();
    assert.equal(all.length, 2 * turns);
    assert.deepEqual(all.map((m) => m.role), chat.messages.map((m) => m.role));
    assert.deepEqual(all.filter((m) => m.role === 'assistant').map((m) => m.id), chat.messages.filter((m) => m.role === 'assistant').map((m) => m.id));
    assert.deepEqual(all.filter((m) => m.role === 'user').map((m) => m.parts[0].text), Array.from({ length: turns }, (_, i) => `turn ${i + 1} tokens=1 delay=0`));
    assert.deepEqual(all.filter((m) => m.role === 'assistant').map(textOf), Array(turns).fill('t1 '));
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
