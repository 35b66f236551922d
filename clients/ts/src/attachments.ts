/**
 * Attachments: a prompt's `file` part made from a `File` or `Blob` (pasted, dropped or picked in a browser; any Blob
 * in Node), in the shape the gateway accepts: a base64 `data:` URL, a plain media type, a file name without paths.
 */
import { defaultMaxAttachmentBytes, type FilePromptPart } from './contracts.js';
import { GatewayError } from './errors.js';

export interface FilePromptPartOptions {
  /** The name shown for it; default the `File`'s own name. */
  filename?: string;
  /** The gateway's `Gateway:Prompts:MaxAttachmentBytes`; default `defaultMaxAttachmentBytes` (5 MiB). */
  maxBytes?: number;
}

// The media types the gateway accepts: `type/subtype`, no parameters.
const mediaType = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/**
 * A `file` prompt part holding `file`'s bytes. Rejects with `GatewayError` `payload_too_large` when the file is over
 * `maxBytes` (the gateway would refuse the prompt).
 */
export async function filePromptPart(file: Blob, options: FilePromptPartOptions = {}): Promise<FilePromptPart> {
  const maxBytes = options.maxBytes ?? defaultMaxAttachmentBytes;
  const filename = cleanFilename(options.filename ?? (file as Partial<File>).name);
  if (file.size > maxBytes) {
    throw new GatewayError('payload_too_large',
      `${filename ?? 'The attachment'} is ${file.size} bytes; the gateway accepts at most ${maxBytes} (Gateway:Prompts:MaxAttachmentBytes).`);
  }

  const mime = attachmentMime(file.type);
  const url = `data:${mime};base64,${base64(new Uint8Array(await file.arrayBuffer()))}`;
  return { type: 'file', mime, url, ...(filename ? { filename } : {}) };
}

/** The media type without parameters (`text/plain; charset=utf-8` → `text/plain`); unknown ones as octet-stream. */
function attachmentMime(type: string): string {
  const plain = type.split(';')[0]!.trim().toLowerCase();
  return mediaType.test(plain) ? plain : 'application/octet-stream';
}

/** The last path segment, without control characters, at most 255 characters; undefined when nothing is left. */
function cleanFilename(name: string | undefined): string | undefined {
  const clean = (name ?? '').split(/[/\\]/).pop()!.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').slice(0, 255);
  return clean || undefined;
}

function base64(bytes: Uint8Array): string {
  const chunk = 0x8000; // String.fromCharCode's arguments stay well below engines' limits
  let binary = '';
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }

  return btoa(binary);
}
