import { describe, expect, it } from 'vitest';
import { gate } from '../../../../../src/core/export/sinks/gate.js';

const read = async (body: NodeJS.ReadableStream) => {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString();
};
const write = (stream: NodeJS.WritableStream, chunk: string) =>
  new Promise<Error | null | undefined>((r) => stream.write(chunk, (e) => r(e)));

describe('sinks/gate: the gate in front of an upload body', () => {
  it('ending the write stream hands every byte over but ends the body only on release', async () => {
    const g = gate(4);
    let ended = false;
    const got = read(g.body).then((t) => ((ended = true), t));
    await new Promise<void>((r) => g.stream.end('hello world', () => r()));
    expect(g.bytes).toBe(11);
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(false);
    g.release();
    expect(await got).toBe('hello world');
  });

  it('fail breaks the body with an error (the SDK then aborts instead of completing)', async () => {
    const g = gate();
    const got = read(g.body);
    g.stream.write('partial');
    g.fail(new Error('upload aborted'));
    await expect(got).rejects.toThrow('upload aborted');
  });

  it('backpressure: a write past the body buffer waits until the SDK reads', async () => {
    const g = gate(8);
    let done = false;
    const big = write(g.stream, 'x'.repeat(32)).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    expect(g.body.read()?.toString()).toBe('x'.repeat(32));
    await big;
    expect(g.bytes).toBe(32);
  });

  it('after fail, a write gets the error; release and fail again do nothing', async () => {
    const g = gate();
    g.fail(new Error('store refused'));
    expect(g.body.destroyed).toBe(true);
    expect(g.stream.destroyed).toBe(true);
    const e = await write(g.stream, 'x');
    expect(e).toBeInstanceOf(Error);
    g.release();
    g.fail(new Error('again'));
    expect(g.bytes).toBe(0);
  });

  it('a write waiting on a body that the SDK destroys gets its error', async () => {
    const g = gate(2);
    const waiting = write(g.stream, 'abcdef');
    g.body.destroy(new Error('socket hang up'));
    expect((await waiting)?.message).toBe('socket hang up');
  });
});
