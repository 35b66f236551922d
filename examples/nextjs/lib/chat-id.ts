/**
 * A new useChat chat id. The gateway maps each of a user's chat ids to a session it creates on the first message
 * (ids: letters, digits, `-`, `_`, `.`, `:`; at most 128). A session id (`ses_…`) is a chat id too: that session.
 */
export function newChatId(): string {
  return `chat-${crypto.randomUUID()}`;
}
