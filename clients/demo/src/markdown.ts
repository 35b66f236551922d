/**
 * A deliberately small, safe markdown renderer: HTML is escaped FIRST, then only these are recognised:
 * fenced code blocks (``` … ```, also unterminated while streaming), paragraphs (blank lines), line breaks,
 * inline code (`x`) and bold (**x**). Nothing else can produce markup, so model output cannot inject HTML.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function inline(escaped: string): string {
  // Split on inline code first so bold markers inside code stay literal.
  return escaped
    .split(/(`[^`\n]+`)/g)
    .map((piece, i) =>
      i % 2 === 1
        ? `<code>${piece.slice(1, -1)}</code>`
        : piece.replace(/\*\*([^*\n](?:[^\n]*?[^*\n])?)\*\*/g, '<strong>$1</strong>'),
    )
    .join('')
    .replace(/\n/g, '<br>');
}

export function renderMarkdown(text: string): string {
  const lines = escapeHtml(text).split('\n');
  const out: string[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length) {
      out.push(`<p>${inline(paragraph.join('\n'))}</p>`);
      paragraph = [];
    }
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^\s*```\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      flush();
      const code: string[] = [];
      i++;
      while (i < lines.length && !/^\s*```\s*$/.test(lines[i]!)) {
        code.push(lines[i]!);
        i++;
      }

      const lang = fence[1] ? ` data-lang="${fence[1]}"` : '';
      out.push(`<pre><code${lang}>${code.join('\n')}</code></pre>`);
      continue;
    }

    if (line.trim() === '') {
      flush();
    } else {
      paragraph.push(line);
    }
  }

  flush();
  return out.join('');
}
