import type { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AzureSink,
  BufferPool,
  blockSizeAt,
  stagedUpload,
} from '../../../../../src/core/export/sinks/azure.js';
import { openSink } from '../../../../../src/core/export/sinks/index.js';
import { rejected } from '../../../../helpers/rejected.js';
import {
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  startAzurite,
  type Azurite,
} from '../../../../helpers/stores.js';

// The Azure Blob sink against Azurite (in memory, on a free port of 127.0.0.1), started once.

const META = { manifest: 'http://fhir/poll/1', source: 'http://fhir/files/Patient.1.ndjson' };
/** Write `chunks` one after the other (with backpressure), then end. */
async function feed(stream: Writable, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) {
    if (!stream.write(c)) await new Promise((r) => stream.once('drain', r));
  }
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.end(() => resolve());
  });
}
/** `n` bytes of ndjson-ish text, in chunks of odd sizes. */
function payload(n: number): { bytes: Buffer; chunks: Buffer[] } {
  const line = '{"resourceType":"Patient","id":"p"}\n';
  const bytes = Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n));
  const chunks: Buffer[] = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const size = [1000, 17_000, 65_536, 3][k % 4]!;
    chunks.push(bytes.subarray(i, i + size));
    i += size;
  }
  return { bytes, chunks };
}

describe('sinks/azure (Azurite)', () => {
  let azurite: Azurite;
  let blob: typeof import('@azure/storage-blob');
  let env: Record<string, string>;
  const container = (name = 'sinks') =>
    blob.BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name);
  const open = async (url: string, over: Record<string, string> = {}) =>
    (await openSink(url, { ...env, ...over })) as AzureSink;

  beforeAll(async () => {
    blob = await import('@azure/storage-blob');
    azurite = await startAzurite();
    await container().create();
    env = { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString };
  }, 60_000);
  afterAll(async () => {
    await azurite?.close();
  });

  it('a file is staged in blocks and visible only once committed, with its metadata', async () => {
    const sink = await open('az://sinks/commit', { SMART_UPLOAD_PART_SIZE: '64k' });
    const { bytes, chunks } = payload(300_000);
    const up = await sink.open('Patient.000.ndjson', {
      expected: { ...META, lines: 1 },
    });
    await feed(up.stream, chunks);
    expect(await sink.stat('Patient.000.ndjson')).toBeUndefined();
    await up.commit({ ...META, lines: 8109 });
    const client = container().getBlockBlobClient('commit/Patient.000.ndjson');
    expect(await client.downloadToBuffer()).toEqual(bytes);
    const props = await client.getProperties();
    expect(props.contentType).toBe('application/fhir+ndjson');
    // The counted lines replace the manifest's count.
    expect(props.metadata).toEqual({
      smartlines: '8109',
      smartmanifest: META.manifest,
      smartsource: META.source,
    });
    const list = await client.getBlockList('committed');
    const ids = list.committedBlocks!.map((b) => b.name);
    expect(ids).toHaveLength(Math.ceil(300_000 / 65_536));
    expect(new Set(ids.map((id) => id.length)).size).toBe(1);
    expect(list.committedBlocks!.slice(0, -1).every((b) => b.size === 65_536)).toBe(true);
    expect(await sink.stat('Patient.000.ndjson')).toEqual({
      bytes: 300_000,
      meta: props.metadata,
    });
    expect((await sink.list()).get('Patient.000.ndjson')?.bytes).toBe(300_000);
  });

  it('an empty file is committed as an empty blob', async () => {
    const sink = await open('az://sinks/empty');
    const up = await sink.open('error/OperationOutcome.000.ndjson');
    await feed(up.stream, []);
    await up.commit({ ...META, lines: 0 });
    expect(await sink.stat('error/OperationOutcome.000.ndjson')).toMatchObject({
      bytes: 0,
      meta: { smartlines: '0' },
    });
  });

  it('abort commits nothing; the next attempt commits only its own blocks', async () => {
    const sink = await open('az://sinks/abort', { SMART_UPLOAD_PART_SIZE: '16k' });
    const cut = await sink.open('Observation.000.ndjson');
    await new Promise<void>((r) => cut.stream.write(Buffer.alloc(100_000, 'x'), () => r()));
    await cut.abort();
    await cut.abort();
    expect(await sink.stat('Observation.000.ndjson')).toBeUndefined();
    expect(await sink.list()).toEqual(new Map());

    const again = await sink.open('Observation.000.ndjson');
    const { bytes, chunks } = payload(40_000);
    await feed(again.stream, chunks);
    await again.commit(META);
    expect(
      await container().getBlockBlobClient('abort/Observation.000.ndjson').downloadToBuffer(),
    ).toEqual(bytes);
  });

  it('memory: block buffers are reused from file to file, (in flight + 1) of them', async () => {
    const pool = new BufferPool();
    const seen = new Set<Buffer>();
    const take = pool.take.bind(pool);
    pool.take = (size) => {
      const b = take(size);
      seen.add(b);
      return b;
    };
    for (let i = 0; i < 3; i++) {
      const up = stagedUpload(container().getBlockBlobClient(`pool/f${i}.ndjson`), {
        blockSize: 8 * 1024,
        pool,
        metadata: {},
        contentType: 'application/fhir+ndjson',
      });
      await feed(up.stream, payload(100_000).chunks);
      await up.commit(META);
    }
    // 3 files of 13 blocks each went through the same two buffers.
    expect(seen.size).toBe(2);
    expect(pool.size).toBe(2);
    expect(
      (await container().getBlockBlobClient('pool/f2.ndjson').downloadToBuffer()).toString(),
    ).toBe(payload(100_000).bytes.toString());
  });

  it('block sizes double every 10,000 blocks: 50,000 blocks hold 31 x 10,000 base blocks', () => {
    expect(blockSizeAt(1024, 0)).toBe(1024);
    expect(blockSizeAt(1024, 9_999)).toBe(1024);
    expect(blockSizeAt(1024, 10_000)).toBe(2048);
    expect(blockSizeAt(1024, 49_999)).toBe(16 * 1024);
    let total = 0;
    for (let i = 0; i < 50_000; i++) total += blockSizeAt(1, i);
    expect(total).toBe(310_000);
  });

  it('BufferPool: a buffer of exactly the size asked for; at most `max` kept', () => {
    const pool = new BufferPool(1);
    const a = pool.take(10);
    pool.give(a);
    pool.give(Buffer.alloc(10));
    expect(pool.size).toBe(1);
    expect(pool.take(20)).not.toBe(a);
    expect(pool.take(10)).toBe(a);
    expect(pool.size).toBe(0);
  });

  it('prepare: an empty prefix is taken (its probe leaves nothing), a used one refused', async () => {
    const sink = await open('az://sinks/prep');
    expect(await sink.prepare('az://sinks/prep')).toBe(false);
    expect(await sink.list()).toEqual(new Map());
    await sink.writeText('notes.txt', 'x');
    const used = await rejected(sink.prepare('az://sinks/prep'));
    expect(used).toMatchObject({ code: 'out_not_empty', exitCode: 2 });
    expect(used.hint).toMatch(/^choose a new or empty prefix/);
    await sink.writeText('export.json', '{}');
    expect((await rejected(sink.prepare('az://sinks/prep'))).hint).toMatch(
      /^it holds an earlier export: continue it with `smart export --resume az:\/\/sinks\/prep`/,
    );
    // Another prefix of the same container is not this one.
    expect(await (await open('az://sinks/prep2')).prepare('az://sinks/prep2')).toBe(false);
  });

  it('small files: written whole, read back, listed under the prefix only', async () => {
    const sink = await open('az://sinks/small');
    expect(await sink.readText('export.json')).toBeUndefined();
    await sink.writeText('export.json', '{"v":1}');
    await sink.writeText('export.json', '{"v":2}');
    expect(await sink.readText('export.json')).toBe('{"v":2}');
    await (await open('az://sinks/smaller')).writeText('export.json', '{}');
    expect([...(await sink.list()).keys()]).toEqual(['export.json']);
    const props = await container().getBlockBlobClient('small/export.json').getProperties();
    expect(props.contentType).toBe('application/json');
  });

  it('a container that does not exist: prepare and an upload fail with one line, exit 2', async () => {
    const sink = await open('az://nosuch/x', { SMART_UPLOAD_PART_SIZE: '16k' });
    const e = await rejected(sink.prepare('az://nosuch/x'));
    expect(e.message).toBe('Azure Blob: container nosuch does not exist (az://nosuch/x)');
    expect(e).toMatchObject({ code: 'store_no_container', exitCode: 2 });

    // A block that cannot be staged breaks the write stream; commit fails; fatal words it.
    const up = await sink.open('Patient.000.ndjson');
    const broken = new Promise<Error>((r) => up.stream.once('error', r));
    up.stream.write(Buffer.alloc(40_000, 'x'));
    const err = await broken;
    const commit = await up.commit(META).then(
      () => undefined,
      (x: unknown) => x,
    );
    const fatal = sink.fatal(commit ?? err, 'Patient.000.ndjson');
    expect(fatal?.message).toBe(
      'Azure Blob: container nosuch does not exist (az://nosuch/x/Patient.000.ndjson)',
    );
    expect(fatal?.exitCode).toBe(2);
    expect(sink.fatal(new Error('socket hang up'), 'x')).toBeUndefined();
  });

  it('credentials that may not write: one line, exit 3, no signature in it', async () => {
    const sas = blob
      .generateAccountSASQueryParameters(
        {
          expiresOn: new Date(Date.now() + 3600_000),
          permissions: blob.AccountSASPermissions.parse('rl'),
          resourceTypes: blob.AccountSASResourceTypes.parse('sco').toString(),
          services: blob.AccountSASServices.parse('b').toString(),
        },
        new blob.StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
      )
      .toString();
    const sink = await open('az://sinks/readonly', {
      AZURE_STORAGE_CONNECTION_STRING: azurite.sasConnectionString(sas),
    });
    const e = await rejected(sink.prepare('az://sinks/readonly'));
    expect(e.message).toMatch(
      /^Azure Blob refused to write az:\/\/sinks\/readonly\/export\.json: /,
    );
    expect(e.message).not.toContain('\n');
    expect(e.message).not.toContain(sas.slice(-20));
    expect(e).toMatchObject({ code: 'store_denied', exitCode: 3 });
    expect(e.hint).toBe(
      'the credentials (AZURE_STORAGE_CONNECTION_STRING) need permission to list, read and write objects under az://sinks/readonly',
    );
  });

  it('credentials: none, a bad connection string, a bad account name: one line each', async () => {
    const none = await rejected(openSink('az://c/x', {}));
    expect(none.message).toBe('no Azure Storage credentials for az://c/x');
    expect(none.exitCode).toBe(3);
    const keyOnly = await rejected(openSink('az://c/x', { AZURE_STORAGE_KEY: 'a2V5' }));
    expect(keyOnly.code).toBe('store_no_credentials');
    const conn = await rejected(
      openSink('az://c/x', { AZURE_STORAGE_CONNECTION_STRING: 'AccountKey=abc' }),
    );
    expect(conn.message).toBe('AZURE_STORAGE_CONNECTION_STRING is not a valid connection string');
    expect(conn).toMatchObject({ code: 'store_bad_credentials', exitCode: 2 });
    const name = await rejected(
      openSink('az://c/x', { AZURE_STORAGE_ACCOUNT: 'My_Account', AZURE_STORAGE_KEY: 'a2V5' }),
    );
    expect(name.message).toBe('AZURE_STORAGE_ACCOUNT "My_Account" is not a storage account name');
    expect(name.exitCode).toBe(2);
  });
});
