import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DirectorySink, partPath } from '../../../../../src/core/export/sinks/directory.js';
import { LOCK_FILE } from '../../../../../src/core/export/sinks/lock.js';
import { rejected } from '../../../../helpers/rejected.js';
import { tempDir } from '../../../../helpers/tmp.js';

const META = { manifest: 'http://fhir/poll/1', source: 'http://fhir/files/1' };
const mode = (p: string) => statSync(p).mode & 0o777;
const end = (stream: Writable, text: string) =>
  new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.end(text, () => resolve());
  });
const text = async (s: NodeJS.ReadableStream) => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString();
};
/** The partial files in `dir` (any run's). */
const parts = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.part'));

describe('sinks/directory', () => {
  it('prepare creates a missing directory, private (0700), claimed by a lock; discard undoes it', async () => {
    const dir = join(tempDir(), 'new', 'out');
    const sink = new DirectorySink(dir);
    expect(await sink.prepare('out')).toBe(true);
    expect(mode(dir)).toBe(0o700);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
    await sink.discard();
    expect(existsSync(dir)).toBe(false);
  });

  it('prepare takes an existing empty directory (false: not created); release frees it', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir);
    expect(await sink.prepare('out')).toBe(false);
    await sink.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a second run on the same directory is refused while the first holds it', async () => {
    const dir = tempDir();
    const first = new DirectorySink(dir);
    await first.prepare('out');
    const second = new DirectorySink(dir);
    const e = await rejected(second.prepare('out'));
    expect(e.code).toBe('out_locked');
    expect(e.exitCode).toBe(2);
    const resumed = await rejected(new DirectorySink(dir).claim('out'));
    expect(resumed.code).toBe('out_locked');
    await first.release();
    await second.claim('out');
    await second.release();
  });

  it('a directory with files is refused (resume offered for an earlier export), a file is no directory', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'notes.txt'), 'x');
    const other = await rejected(new DirectorySink(dir).prepare('out'));
    expect(other.message).toBe('--out out is not empty');
    expect(other.hint).toBe(
      'choose a new or empty directory (the export never mixes its files with others)',
    );
    // The refusal gives the lock back.
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    writeFileSync(join(dir, 'export.json'), '{}');
    const earlier = await rejected(new DirectorySink(dir).prepare('my out'));
    expect(earlier.hint).toBe(
      "it holds an earlier export: continue it with `smart export --resume 'my out'`, or choose a new directory",
    );
    const file = await rejected(new DirectorySink(join(dir, 'notes.txt')).prepare('f'));
    expect(file).toMatchObject({ code: 'out_not_dir', exitCode: 2 });
    expect(file.message).toBe('--out f is a file, not a directory');
  });

  it('a file is written to a .part of this run and appears under its name only at commit, 0600', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir);
    const up = await sink.open('error/OperationOutcome.000.ndjson');
    expect(up.offset).toBe(0);
    await end(up.stream, '{"a":1}\n{"a":2}\n');
    const final = join(dir, 'error', 'OperationOutcome.000.ndjson');
    expect(existsSync(final)).toBe(false);
    expect(await sink.stat('error/OperationOutcome.000.ndjson')).toBeUndefined();
    expect(parts(join(dir, 'error'))).toHaveLength(1);
    await up.commit(META);
    expect(readFileSync(final, 'utf8')).toBe('{"a":1}\n{"a":2}\n');
    expect(mode(final)).toBe(0o600);
    expect(mode(join(dir, 'error'))).toBe(0o700);
    expect(parts(join(dir, 'error'))).toEqual([]);
    expect(await sink.stat('error/OperationOutcome.000.ndjson')).toEqual({ bytes: 16 });
    expect((await sink.list()).get('error/OperationOutcome.000.ndjson')).toEqual({ bytes: 16 });
    expect(await text(await sink.read('error/OperationOutcome.000.ndjson'))).toBe(
      '{"a":1}\n{"a":2}\n',
    );
  });

  it('abort drops the partial file; abort(keep) keeps it, with its note, for a ranged continuation', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir);
    const dropped = await sink.open('Patient.000.ndjson');
    dropped.stream.write('{"id":"1"}\n');
    await dropped.abort();
    await dropped.abort();
    expect(parts(dir)).toEqual([]);
    expect(await sink.partial('Patient.000.ndjson')).toEqual({ bytes: 0 });

    const cut = await sink.open('Patient.000.ndjson');
    await new Promise<void>((r) => cut.stream.write('{"id":"1"}\n{"id"', () => r()));
    await cut.abort(true);
    expect(await cut.keptBytes!()).toBe(16);
    await cut.note!('lines=1 bytes=16');
    expect(existsSync(join(dir, 'Patient.000.ndjson'))).toBe(false);
    expect(await sink.partial('Patient.000.ndjson')).toEqual({
      bytes: 16,
      note: 'lines=1 bytes=16',
    });

    // The next attempt appends; the kept bytes come first and can be read back.
    const more = await sink.open('Patient.000.ndjson', { append: true });
    expect(more.offset).toBe(16);
    expect(await text(more.existing!())).toBe('{"id":"1"}\n{"id"');
    expect(await text(more.existing!(11, 16))).toBe('{"id"');
    await end(more.stream, ':"2"}\n');
    await more.commit(META);
    expect(readFileSync(join(dir, 'Patient.000.ndjson'), 'utf8')).toBe('{"id":"1"}\n{"id":"2"}\n');
    // The note went with the commit.
    expect(readdirSync(dir).filter((n) => n.endsWith('.note'))).toEqual([]);
  });

  it("resume: sweep makes the longest partial of an earlier run this run's and removes the others", async () => {
    const dir = tempDir();
    // Left by two earlier runs (tags "aaaa1" and "bbbb2") and a run of the old naming.
    writeFileSync(partPath(dir, 'Patient.000.ndjson', 'aaaa1'), 'x'.repeat(10));
    writeFileSync(`${partPath(dir, 'Patient.000.ndjson', 'aaaa1')}.note`, 'ten');
    writeFileSync(partPath(dir, 'Patient.000.ndjson', 'bbbb2'), 'x'.repeat(4));
    writeFileSync(partPath(dir, 'Patient.000.ndjson'), 'x'.repeat(2));
    writeFileSync(partPath(dir, 'Observation.000.ndjson', 'cccc3'), '');
    // Not a partial of any run (a run's tag is lowercase letters and digits): never touched.
    writeFileSync(join(dir, 'Patient.000.ndjson.my-copy.part'), 'keep');
    const sink = new DirectorySink(dir);
    await sink.sweep(['Patient.000.ndjson', 'Observation.000.ndjson']);
    expect(await sink.partial('Patient.000.ndjson')).toEqual({ bytes: 10, note: 'ten' });
    expect(await sink.partial('Observation.000.ndjson')).toEqual({ bytes: 0 });
    const left = parts(dir);
    expect(left).toHaveLength(2);
    expect(left).toContain('Patient.000.ndjson.my-copy.part');
    expect(left.find((n) => n !== 'Patient.000.ndjson.my-copy.part')).toMatch(
      /^Patient\.000\.ndjson\.[a-z0-9]+\.part$/,
    );
    expect(parts(dir).filter((n) => n.startsWith('Observation'))).toEqual([]);
    expect(readFileSync(join(dir, 'Patient.000.ndjson.my-copy.part'), 'utf8')).toBe('keep');
    // This run continues from the kept bytes.
    const up = await sink.open('Patient.000.ndjson', { append: true });
    expect(up.offset).toBe(10);
    await up.abort();
  });

  it('small files are replaced atomically and private; a missing one reads as undefined', async () => {
    const dir = tempDir();
    const sink = new DirectorySink(dir);
    expect(await sink.readText('export.json')).toBeUndefined();
    await sink.writeText('export.json', '{"v":1}');
    await sink.writeText('export.json', '{"v":2}');
    expect(await sink.readText('export.json')).toBe('{"v":2}');
    expect(mode(join(dir, 'export.json'))).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['export.json']);
    mkdirSync(join(dir, 'manifest.json'));
    await expect(sink.readText('manifest.json')).rejects.toMatchObject({ exitCode: 2 });
  });

  it('fatal: a full disk or a refusal is the file error of the partial file; others retry', () => {
    const sink = new DirectorySink('/data/out');
    const err = (code: string) => Object.assign(new Error(`${code}: write`), { code });
    const full = sink.fatal(err('ENOSPC'), 'Patient.000.ndjson');
    expect(full?.message).toMatch(/Patient\.000\.ndjson\.[a-z0-9]+\.part/);
    expect(sink.fatal(err('EACCES'), 'x')).toBeDefined();
    expect(sink.fatal(err('ECONNRESET'), 'x')).toBeUndefined();
    expect(sink.fatal(new Error('plain'), 'x')).toBeUndefined();
  });
});
