/**
 * The client's side of real agent runs, with the server played by hand: questions answered and dismissed, prompts
 * with attachments (and `filePromptPart`), the message size that follows the attachment limit, and `loadEarlier`
 * paging a watched session's view.
 */
import { describe, expect, it } from 'vitest';
import { filePromptPart } from '../src/attachments.js';
import { createGatewayClient, defaultMaxMessageBytes, type GatewayClient } from '../src/client.js';
import { defaultMaxAttachmentBytes, type FilePromptPart, type MessageWithParts } from '../src/contracts.js';
import { GatewayError } from '../src/errors.js';
import { ev, FakeTransport, settle, SID, snapshot, snapshotResult, textPart } from './helpers.js';

const E = 1_700_000_000_000_001;
/** The smallest PNG: one transparent pixel. */
const PNG = Uint8Array.from(atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='), (c) => c.charCodeAt(0));

async function connected(): Promise<{ transport: FakeTransport; client: GatewayClient }> {
  const transport = new FakeTransport();
  const client = createGatewayClient({ url: 'http://gateway.invalid/hubs/session', transport, scheduleFlush: (f) => f() });
  await settle();
  return { transport, client };
}

describe('questions and attachments through the client', () => {
  it('answers and dismisses questions with ReplyQuestion and RejectQuestion, and maps question_not_found', async () => {
    const { transport, client } = await connected();
    const answered = client.replyQuestion(SID, 'que_1', [['Red'], ['a', 'b']]);
    const dismissed = client.rejectQuestion(SID, 'que_2');
    await settle();
    const [reply] = transport.take('ReplyQuestion');
    const [reject] = transport.take('RejectQuestion');
    expect(reply!.args).toEqual([{ sessionId: SID, requestId: 'que_1', answers: [['Red'], ['a', 'b']] }]);
    expect(reject!.args).toEqual([{ sessionId: SID, requestId: 'que_2' }]);
    reply!.resolve(null);
    reject!.reject(new Error("An unexpected error occurred invoking 'RejectQuestion' on the server. HubException: question_not_found: Question 'que_2' is not pending."));
    await expect(answered).resolves.toBeUndefined();
    await expect(dismissed).rejects.toMatchObject({ code: 'question_not_found' });
    await client.stop();
  });

  it('sends a prompt of parts, the attachment as a data URL filePromptPart made from a File', async () => {
    const { transport, client } = await connected();
    const part = await filePromptPart(new File([PNG], 'pixel.png', { type: 'image/png' }));
    expect(part).toEqual({ type: 'file', mime: 'image/png', url: `data:image/png;base64,${btoa(String.fromCharCode(...PNG))}`, filename: 'pixel.png' });
    const sent = client.prompt(SID, [{ type: 'text', text: 'what is this?' }, part], { agent: 'build' });
    await settle();
    const [call] = transport.take('Prompt');
    expect(call!.args).toEqual([{ sessionId: SID, parts: [{ type: 'text', text: 'what is this?' }, part], agent: 'build' }]);
    call!.resolve({ sessionId: SID, queued: false });
    await expect(sent).resolves.toEqual({ sessionId: SID, queued: false });
    await client.stop();
  });

  it('filePromptPart refuses a file over the limit, drops media type parameters and paths', async () => {
    const big = new Blob([new Uint8Array(defaultMaxAttachmentBytes + 1)], { type: 'image/png' });
    const refused = await filePromptPart(big).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ code: 'payload_too_large' });
    await expect(filePromptPart(new Blob(['x']), { maxBytes: 0 })).rejects.toMatchObject({ code: 'payload_too_large' });

    const text = await filePromptPart(new Blob(['héllo'], { type: 'text/plain;charset=utf-8' }), { filename: 'C:\\notes\\todo.txt' });
    expect(text).toEqual({ type: 'file', mime: 'text/plain', url: `data:text/plain;base64,${Buffer.from('héllo').toString('base64')}`, filename: 'todo.txt' });
    const unnamed = await filePromptPart(new Blob([PNG]));
    expect(unnamed).toEqual({ type: 'file', mime: 'application/octet-stream', url: expect.stringMatching(/^data:application\/octet-stream;base64,iVBOR/) });
  });

  it('sends an attachment at the limit by default and refuses a message over the hub\'s default size', async () => {
    expect(defaultMaxMessageBytes).toBe(7_842_476); // the gateway's Gateway:Hub:MaximumReceiveMessageSize default
    const { transport, client } = await connected();
    const atLimit: FilePromptPart = { type: 'file', mime: 'application/octet-stream', url: `data:application/octet-stream;base64,${'A'.repeat(Math.ceil(defaultMaxAttachmentBytes / 3) * 4)}` };
    void client.prompt(SID, [{ type: 'text', text: 'x'.repeat(200_000) }, atLimit]);
    await settle();
    expect(transport.take('Prompt')).toHaveLength(1);
    const tooBig = await client.prompt(SID, [atLimit, atLimit]).catch((e: unknown) => e);
    expect(tooBig).toMatchObject({ code: 'payload_too_large' });
    expect(transport.take('Prompt')).toHaveLength(0);
    await client.stop();
  });
});

describe('loadEarlier', () => {
  const message = (n: number): MessageWithParts => {
    const id = `msg_${String(n).padStart(4, '0')}`;
    return { info: { id, sessionID: SID, role: 'user' }, parts: [textPart(`prt_${String(n).padStart(4, '0')}`, `m${n}`, id)] };
  };
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => message(from + i));

  async function watching() {
    const { transport, client } = await connected();
    const handle = client.watch(SID);
    await settle();
    transport.take('Join')[0]!.resolve(snapshotResult(snapshot(E, 0, range(21, 40), SID, { earlier: { cursor: 'c21' } })));
    await settle();
    return { transport, client, handle };
  }

  it('calls LoadEarlier with the view\'s cursor, shares a call in flight, and prepends the page', async () => {
    const { transport, client, handle } = await watching();
    const first = handle.loadEarlier(10);
    const again = client.loadEarlier(SID, 10);
    await settle();
    const calls = transport.take('LoadEarlier');
    expect(calls.map((c) => c.args)).toEqual([[{ sessionId: SID, before: 'c21', limit: 10 }]]);
    calls[0]!.resolve({ messages: range(11, 20), earlier: { cursor: 'c11' } });
    await expect(first).resolves.toBe(true);
    await expect(again).resolves.toBe(true);
    expect(handle.view.messages.map((m) => m.info.id)[0]).toBe('msg_0011');
    expect(handle.view.messages).toHaveLength(30);

    const last = client.loadEarlier(SID);
    await settle();
    const [next] = transport.take('LoadEarlier');
    expect(next!.args).toEqual([{ sessionId: SID, before: 'c11' }]);
    next!.resolve({ messages: range(1, 10) });
    await expect(last).resolves.toBe(true);
    expect(handle.view.messages).toHaveLength(40);
    expect(handle.view.earlier).toBeNull();
    await expect(client.loadEarlier(SID)).resolves.toBe(false); // nothing older
    expect(transport.take('LoadEarlier')).toEqual([]);
    await client.stop();
  });

  it('drops a page that arrives after a new snapshot replaced the view', async () => {
    const { transport, client, handle } = await watching();
    const load = client.loadEarlier(SID);
    await settle();
    const [call] = transport.take('LoadEarlier');
    // A new epoch's snapshot, long after: its window holds none of the messages the page was asked for.
    transport.pushSnapshot(snapshot(E + 1, 0, range(61, 80), SID, { earlier: { cursor: 'c61' } }));
    call!.resolve({ messages: range(11, 20), earlier: { cursor: 'c11' } });
    await expect(load).resolves.toBe(false);
    expect(handle.view.messages.map((m) => m.info.id)[0]).toBe('msg_0061');
    expect(handle.view.earlier).toEqual({ cursor: 'c61' });
    transport.push(ev(E + 1, 1, 'status', { status: { type: 'busy' } }));
    expect(handle.view.status).toEqual({ type: 'busy' });
    await client.stop();
  });
});
