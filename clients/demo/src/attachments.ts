/**
 * The composer's attachments: files pasted, dropped or picked become chips (a thumbnail for images) and are sent as
 * `file` parts with the next prompt. A file over the gateway's limit, or one too many, is refused with a visible message.
 */
import { defaultMaxAttachmentBytes, filePromptPart, type FilePromptPart } from '@opencode-gateway/client';
import { el, formatBytes } from './dom';

/** The gateway's `Gateway:Prompts:MaxAttachments` default. */
const maxAttachments = 10;

export class ComposerAttachments {
  private attached: { readonly id: number; readonly part: FilePromptPart }[] = [];
  private nextId = 0;

  constructor(private readonly chips: HTMLElement, private readonly error: HTMLElement) {}

  /** The parts to send with the prompt. */
  get parts(): FilePromptPart[] {
    return this.attached.map((a) => a.part);
  }

  /** Reads the files into parts; the ones it refuses are named in the error line. */
  async add(files: readonly File[]): Promise<void> {
    const refused: string[] = [];
    for (const file of files) {
      if (this.attached.length >= maxAttachments) {
        refused.push(`${file.name}: at most ${maxAttachments} attachments per message`);
        continue;
      }

      if (file.size > defaultMaxAttachmentBytes) {
        refused.push(`${file.name || 'file'} is ${formatBytes(file.size)}; attachments may be at most ${formatBytes(defaultMaxAttachmentBytes)}`);
        continue;
      }

      this.attached.push({ id: this.nextId++, part: await filePromptPart(file, { filename: file.name || undefined }) });
    }

    this.error.hidden = refused.length === 0;
    this.error.textContent = refused.join('. ');
    this.render();
  }

  clear(): void {
    this.attached = [];
    this.error.hidden = true;
    this.render();
  }

  private render(): void {
    this.chips.hidden = this.attached.length === 0;
    this.chips.replaceChildren(...this.attached.map((a) => this.chip(a.id, a.part)));
  }

  private chip(id: number, part: FilePromptPart): HTMLElement {
    const name = part.filename ?? part.mime;
    const chip = el('span', { class: 'attachment-chip', 'data-testid': 'attachment-chip', 'data-mime': part.mime, title: name });
    if (part.mime.startsWith('image/')) chip.append(el('img', { src: part.url, alt: '' }));
    chip.append(el('span', { class: 'attachment-name' }, name));
    const remove = el('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${name}`, 'data-testid': 'attachment-remove' }, '×');
    remove.addEventListener('click', () => {
      this.attached = this.attached.filter((a) => a.id !== id);
      this.render();
    });
    chip.append(remove);
    return chip;
  }
}
