/**
 * Fails when src/contracts.ts drifts from the C# wire contract (src/Gateway.Contracts/*.cs). The TS interfaces are tied
 * to `contractFields` at compile time (ContractFieldsMatch in contracts.ts; `npm test` type-checks first).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CompactDeltaMethod,
  compactDeltaArguments,
  contractFields,
  EventForms,
  GatewayErrorCodes,
  plannedContracts,
  SessionEventTypes,
  StreamedFields,
} from '../src/contracts.js';

const contractsDir = fileURLToPath(new URL('../../../src/Gateway.Contracts/', import.meta.url));

interface CSharpContracts {
  /** record/class name → camelCased JSON member names. */
  types: Map<string, string[]>;
  /** static class name → constant name → value. */
  constants: Map<string, Map<string, string>>;
}

/** System.Text.Json's JsonNamingPolicy.CamelCase for the usual names: "SessionId" → "sessionId", "ID" → "id". */
export function camelCase(name: string): string {
  let i = 0;
  while (i < name.length && name[i] !== name[i]!.toLowerCase()) {
    const next = name[i + 1];
    if (i > 0 && next !== undefined && next !== next.toUpperCase()) {
      break; // keep the capital that starts the next word: "URLValue" → "urlValue"
    }

    i++;
  }

  return name.slice(0, i).toLowerCase() + name.slice(i);
}

function splitTopLevel(text: string): string[] {
  const result: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '<' || ch === '(' || ch === '[') depth++;
    if (ch === '>' || ch === ')' || ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      result.push(current);
      current = '';
    } else {
      current += ch;
    }
  }

  if (current.trim()) result.push(current);
  return result;
}

function jsonName(declaration: string, name: string): string {
  const explicit = /JsonPropertyName\("([^"]+)"\)/.exec(declaration);
  return explicit ? explicit[1]! : camelCase(name);
}

export function parseCSharpContracts(sources: string[]): CSharpContracts {
  const types = new Map<string, string[]>();
  const constants = new Map<string, Map<string, string>>();
  for (const raw of sources) {
    // Drop comments (doc comments mention members too).
    const source = raw.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    const declaration = /public\s+(?:(?:sealed|static|partial|abstract|readonly)\s+)*(record|class|interface|struct)\s+(\w+)/g;
    const starts: { kind: string; name: string; index: number; end: number; isStatic: boolean }[] = [];
    for (let m = declaration.exec(source); m; m = declaration.exec(source)) {
      starts.push({ kind: m[1]!, name: m[2]!, index: m.index, end: m.index + m[0].length, isStatic: /\bstatic\b/.test(m[0]) });
    }

    starts.forEach((decl, i) => {
      const body = source.slice(decl.end, i + 1 < starts.length ? starts[i + 1]!.index : source.length);
      if (decl.kind === 'interface') {
        return; // ISessionClient: methods, not data
      }

      if (decl.isStatic) {
        const values = new Map<string, string>();
        for (const c of body.matchAll(/public\s+const\s+string\s+(\w+)\s*=\s*"([^"]*)"/g)) {
          values.set(c[1]!, c[2]!);
        }

        constants.set(decl.name, values);
        return;
      }

      const members: string[] = [];
      const positional = /^\s*\(([\s\S]*?)\)\s*[;{:]/.exec(body);
      if (positional) {
        for (const parameter of splitTopLevel(positional[1]!)) {
          const withoutDefault = parameter.split('=')[0]!.trim();
          const name = /(\w+)$/.exec(withoutDefault)?.[1];
          if (name) members.push(jsonName(parameter, name));
        }
      }

      for (const p of body.matchAll(/((?:\[[^\]]*\]\s*)*)public\s+(?:required\s+)?[\w<>?,.\s[\]]+?\s+(\w+)\s*\{\s*get;/g)) {
        if (/JsonIgnore\s*(?:\]|\)\])/.test(p[1]!) && !/Condition/.test(p[1]!)) continue; // never serialized
        members.push(jsonName(p[1]!, p[2]!));
      }

      types.set(decl.name, members);
    });
  }

  return { types, constants };
}

function readContracts(): CSharpContracts {
  const files = readdirSync(contractsDir).filter((f) => f.endsWith('.cs'));
  return parseCSharpContracts(files.map((f) => readFileSync(join(contractsDir, f), 'utf8')));
}

describe('C# contract parser', () => {
  it('reads positional and property records, attributes and constants', () => {
    const parsed = parseCSharpContracts([
      `namespace X;
      /// <summary>public string NotAMember { get; init; }</summary>
      public sealed record Pos(long Epoch, IReadOnlyList<Dictionary<string, int>>? Items = null, JsonElement? Metadata = null);
      public sealed record Body
      {
          public required string SessionId { get; init; }
          [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Offset { get; init; }
          [JsonPropertyName("x_y")] public string Renamed { get; init; } = "";
          public IReadOnlyList<string> Tags { get; init; } = [];
      }
      public static class Codes { public const string A = "a_b"; }`,
    ]);
    expect(parsed.types.get('Pos')).toEqual(['epoch', 'items', 'metadata']);
    expect(parsed.types.get('Body')).toEqual(['sessionId', 'offset', 'x_y', 'tags']);
    expect(parsed.constants.get('Codes')).toEqual(new Map([['A', 'a_b']]));
    expect(camelCase('ID')).toBe('id');
    expect(camelCase('URLValue')).toBe('urlValue');
  });
});

describe('contracts.ts matches src/Gateway.Contracts', () => {
  const cs = readContracts();

  it('finds the contract types in the C# source', () => {
    expect(cs.types.size).toBeGreaterThanOrEqual(10);
    expect(cs.types.get('SessionEvent')?.length).toBeGreaterThanOrEqual(18);
  });

  it('declares every C# contract type with the same members', () => {
    const problems: string[] = [];
    for (const [name, members] of cs.types) {
      const ts = (contractFields as Record<string, readonly string[]>)[name];
      if (!ts) {
        problems.push(`${name}: in C# but not in contractFields/contracts.ts`);
        continue;
      }

      const missing = members.filter((m) => !ts.includes(m));
      const extra = ts.filter((m) => !members.includes(m));
      if (missing.length) problems.push(`${name}: missing in TS: ${missing.join(', ')}`);
      if (extra.length) problems.push(`${name}: not in C#: ${extra.join(', ')}`);
    }

    expect(problems).toEqual([]);
  });

  it('has no TS-only contract type other than the planned ones', () => {
    const tsOnly = Object.keys(contractFields).filter((name) => !cs.types.has(name));
    expect(tsOnly.filter((name) => !(plannedContracts as readonly string[]).includes(name))).toEqual([]);
  });

  it('has the same error codes', () => {
    expect(Object.fromEntries(cs.constants.get('GatewayErrorCodes') ?? [])).toEqual(GatewayErrorCodes);
  });

  it('has the compact delta method with the same arguments', () => {
    const source = readFileSync(join(contractsDir, 'HubContracts.cs'), 'utf8');
    const method = new RegExp(`Task\\s+${CompactDeltaMethod}\\(([^)]*)\\)`).exec(source);
    expect(method, 'ISessionClient.D').not.toBeNull();
    expect(splitTopLevel(method![1]!).map((p) => /(\w+)\s*$/.exec(p.trim())![1])).toEqual([...compactDeltaArguments]);
  });

  it('has the same event forms', () => {
    expect(Object.fromEntries(cs.constants.get('EventForms') ?? [])).toEqual(EventForms);
  });

  it('has the same event types', () => {
    expect(Object.fromEntries(cs.constants.get('SessionEventTypes') ?? [])).toEqual(SessionEventTypes);
  });

  it('has the same streamed part fields', () => {
    expect(Object.fromEntries(cs.constants.get('StreamedFields') ?? [])).toEqual(StreamedFields);
  });
});
