// Hub ids as typed on the command line: which strings are ids, their revisions, and the error for
// the rest. Run: cd packages/hub && npx vitest run src/repo-id
import { describe, expect, it } from 'vitest';
import { formatRepoRef, looksLikeRepoId, parseRepoRef } from './repo-id.js';

describe('Hub ids', () => {
  it.each([
    ['microsoft/GRIN-MoE', true],
    ['microsoft/Phi-3.5-MoE-instruct@main', true],
    ['org/name@refs/convert/parquet', true],
    ['org_1/name.v2', true],
    ['runs/brown-grin', true], // also a path: callers look on disk first
    ['GRIN-MoE', false],
    ['./runs/x', false],
    ['/abs/path', false],
    ['a/b/c', false],
    ['org/-name', false],
    ['org/na--me', false],
    ['org/name@', false],
    ['org/../x', false],
  ])('%s -> %s', (text, expected) => {
    expect(looksLikeRepoId(text)).toBe(expected);
  });

  it('parses revisions (main by default) and formats them back', () => {
    expect(parseRepoRef('microsoft/GRIN-MoE', 'model')).toEqual({
      type: 'model',
      name: 'microsoft/GRIN-MoE',
      revision: 'main',
    });
    const pinned = parseRepoRef('org/data@refs/convert/parquet', 'dataset');
    expect(pinned.revision).toBe('refs/convert/parquet');
    expect(formatRepoRef(pinned)).toBe('org/data@refs/convert/parquet');
    expect(formatRepoRef(parseRepoRef('org/m', 'model'))).toBe('org/m');
    expect(() => parseRepoRef('GRIN-MoE', 'model')).toThrow(
      "'GRIN-MoE': not a Hub model id; expected ORG/NAME or ORG/NAME@REVISION",
    );
  });
});
