import { randomBytes } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { SmartError } from '../../errors.js';
import {
  contentType,
  keyOf,
  notEmpty,
  parseSize,
  splitUrl,
  STATE_FILE,
  type Env,
} from './common.js';
import { StoreFailure, isNetworkError, storeError, type StoreErrorInfo } from './errors.js';
import { objectMetadata } from './meta.js';
import type { FileMeta, Sink, SinkUpload, StoredFile } from './types.js';

type ContainerClient = import('@azure/storage-blob').ContainerClient;
type BlockBlobClient = import('@azure/storage-blob').BlockBlobClient;

/**
 * Block size: a file is staged in blocks of this size and committed once, at the end. Memory per
 * file is (IN_FLIGHT + 1) blocks, reused from file to file: 4 files x 2 x 1 MiB = 8 MiB
 * (bench/export.mjs, Azurite row: 2 MiB blocks put the peak RSS ~6 MB higher, over the target,
 * at no measurable gain in throughput). SMART_UPLOAD_PART_SIZE sets it.
 */
const DEFAULT_BLOCK_SIZE = 1024 * 1024;
/** Blocks being staged per file, besides the one filling: memory per file is (this + 1) blocks. */
const IN_FLIGHT = 1;
/** Blocks of one size before the size doubles (a blob holds at most 50,000 blocks). */
const BLOCKS_PER_SIZE = 10_000;

const ENV_HINT =
  'AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN';

const DENIED = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'AuthorizationResourceTypeMismatch',
  'AuthorizationSourceIPMismatch',
  'AuthorizationProtocolMismatch',
  'AuthorizationServiceMismatch',
  'InsufficientAccountPermissions',
  'AccountIsDisabled',
  'ContainerDisabled',
]);
const THROTTLED = new Set(['ServerBusy', 'OperationTimedOut', 'TooManyRequests']);

function classify(e: unknown): StoreErrorInfo {
  const err = e as { code?: string; statusCode?: number; message?: string };
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const status = typeof err?.statusCode === 'number' ? err.statusCode : undefined;
  // The first line of an Azure message is the sentence; the rest are request ids and times.
  const message = (err?.message ?? String(e)).split('\n')[0]!;
  const base = { ...(code ? { code } : {}), ...(status ? { status } : {}), message };
  if (code === 'ContainerNotFound') return { ...base, problem: 'no-container' };
  if ((code && DENIED.has(code)) || status === 403) return { ...base, problem: 'denied' };
  if ((code && THROTTLED.has(code)) || status === 503 || status === 429)
    return { ...base, problem: 'throttled' };
  if (isNetworkError(e) || code === 'REQUEST_SEND_ERROR') return { ...base, problem: 'network' };
  return { ...base, problem: 'other' };
}

function isNotFound(e: unknown): boolean {
  const err = e as { statusCode?: number; code?: string };
  return err?.statusCode === 404 && err.code !== 'ContainerNotFound';
}

/** The connection string's or account's service client, by the Azure Storage conventions. */
async function serviceClient(env: Env, location: string) {
  const sdk = await import('@azure/storage-blob');
  const conn = env.AZURE_STORAGE_CONNECTION_STRING;
  try {
    if (conn) {
      return {
        service: sdk.BlobServiceClient.fromConnectionString(conn),
        creds: 'AZURE_STORAGE_CONNECTION_STRING',
      };
    }
  } catch (e) {
    throw new SmartError(
      'config',
      'AZURE_STORAGE_CONNECTION_STRING is not a valid connection string',
      {
        cause: e instanceof Error ? new Error('invalid connection string') : undefined,
        code: 'store_bad_credentials',
        hint: 'copy it from the storage account\'s "Access keys" page (DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...)',
      },
    );
  }
  const account = env.AZURE_STORAGE_ACCOUNT;
  const key = env.AZURE_STORAGE_KEY;
  const sas = env.AZURE_STORAGE_SAS_TOKEN?.replace(/^\?/, '');
  if (!account || (!key && !sas)) {
    throw new SmartError('auth', `no Azure Storage credentials for ${location}`, {
      code: 'store_no_credentials',
      hint: `set ${ENV_HINT} (see README "Exporting to object storage")`,
    });
  }
  if (!/^[a-z0-9]{3,24}$/.test(account)) {
    throw new SmartError(
      'config',
      `AZURE_STORAGE_ACCOUNT "${account}" is not a storage account name`,
      {
        code: 'store_bad_credentials',
        hint: 'account names are 3-24 lowercase letters and digits',
      },
    );
  }
  const url = `https://${account}.blob.core.windows.net`;
  if (key) {
    let credential;
    try {
      credential = new sdk.StorageSharedKeyCredential(account, key);
    } catch {
      throw new SmartError('config', 'AZURE_STORAGE_KEY is not a valid account key', {
        code: 'store_bad_credentials',
        hint: 'give the base64 key from the storage account\'s "Access keys" page',
      });
    }
    return { service: new sdk.BlobServiceClient(url, credential), creds: 'AZURE_STORAGE_KEY' };
  }
  return {
    service: new sdk.BlobServiceClient(`${url}?${sas}`),
    creds: 'AZURE_STORAGE_SAS_TOKEN',
  };
}

/**
 * `az://container/prefix` through @azure/storage-blob: each file is staged in blocks and its
 * block list committed (with its metadata) only after the last byte and the line count check.
 * A cut upload commits nothing; its staged blocks are never visible and the service drops them.
 */
export class AzureSink implements Sink {
  readonly kind = 'azure' as const;
  private readonly prefix: string;
  private readonly blockSize: number;
  /** Block buffers of finished uploads, for the next ones (see BufferPool). */
  private readonly pool = new BufferPool();

  private constructor(
    readonly location: string,
    private readonly containerName: string,
    prefix: string,
    private readonly container: ContainerClient,
    env: Env,
    private readonly creds: string,
  ) {
    this.prefix = prefix;
    this.blockSize =
      parseSize(env.SMART_UPLOAD_PART_SIZE, 'SMART_UPLOAD_PART_SIZE') ?? DEFAULT_BLOCK_SIZE;
  }

  static async create(url: URL, location: string, o: { env: Env }): Promise<AzureSink> {
    const { container, prefix } = splitUrl(url, location);
    const { service, creds } = await serviceClient(o.env, location);
    return new AzureSink(
      location,
      container,
      prefix,
      service.getContainerClient(container),
      o.env,
      creds,
    );
  }

  private key(name: string): string {
    return keyOf(this.prefix, name);
  }

  describe(name: string): string {
    return `az://${this.containerName}/${this.key(name)}`;
  }

  private error(e: unknown, op: string, name?: string): SmartError {
    const inner = e instanceof StoreFailure ? e.error : e;
    return storeError(
      classify(inner),
      {
        store: 'Azure Blob',
        where: name ? this.describe(name) : this.location,
        root: this.location,
        container: `container ${this.containerName}`,
        env: ENV_HINT,
        creds: this.creds,
        op,
      },
      inner,
    );
  }

  async prepare(display: string): Promise<boolean> {
    let any = false;
    try {
      const pages = this.container
        .listBlobsFlat(this.prefix ? { prefix: `${this.prefix}/` } : {})
        .byPage({ maxPageSize: 1 });
      const first = await pages.next();
      any = !first.done && first.value.segment.blobItems.length > 0;
    } catch (e) {
      throw this.error(e, 'list');
    }
    if (any) throw notEmpty(display, (await this.stat(STATE_FILE)) !== undefined);
    // Prove that writes are allowed before anything starts on the server: a block staged and
    // never committed is invisible (the state file's first write discards it).
    try {
      const probe = Buffer.from('smart export write probe\n');
      await this.container
        .getBlockBlobClient(this.key(STATE_FILE))
        .stageBlock(Buffer.from('smart-probe').toString('base64'), probe, probe.length);
    } catch (e) {
      throw this.error(e, 'write', STATE_FILE);
    }
    return false;
  }

  async discard(): Promise<void> {}

  async readText(name: string): Promise<string | undefined> {
    try {
      const buf = await this.container.getBlockBlobClient(this.key(name)).downloadToBuffer();
      return buf.toString('utf8');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.error(e, 'read', name);
    }
  }

  async writeText(name: string, text: string): Promise<void> {
    try {
      await this.container
        .getBlockBlobClient(this.key(name))
        .upload(text, Buffer.byteLength(text), {
          blobHTTPHeaders: { blobContentType: contentType(name) },
        });
    } catch (e) {
      throw this.error(e, 'write', name);
    }
  }

  async list(): Promise<Map<string, StoredFile>> {
    const found = new Map<string, StoredFile>();
    const start = this.prefix ? `${this.prefix}/` : '';
    try {
      for await (const b of this.container.listBlobsFlat({
        ...(start ? { prefix: start } : {}),
        includeMetadata: true,
      })) {
        if (!b.name.startsWith(start)) continue;
        found.set(b.name.slice(start.length), {
          bytes: b.properties.contentLength ?? 0,
          meta: b.metadata ?? {},
        });
      }
    } catch (e) {
      throw this.error(e, 'list');
    }
    return found;
  }

  async stat(name: string): Promise<StoredFile | undefined> {
    try {
      const p = await this.container.getBlockBlobClient(this.key(name)).getProperties();
      return { bytes: p.contentLength ?? 0, meta: p.metadata ?? {} };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.error(e, 'read', name);
    }
  }

  /** Always from zero (no `partial`): a cut upload is aborted, never continued. */
  async open(name: string, opts: { expected?: FileMeta } = {}): Promise<SinkUpload> {
    return stagedUpload(this.container.getBlockBlobClient(this.key(name)), {
      blockSize: this.blockSize,
      pool: this.pool,
      // Merged with the counted lines at commit().
      metadata: opts.expected ? objectMetadata(opts.expected) : {},
      contentType: contentType(name),
    });
  }

  async sweep(): Promise<void> {
    // Nothing to do: staged blocks of a cut upload are invisible, replaced by the next commit of
    // the same name and dropped by the service after 7 days.
  }

  async read(name: string): Promise<Readable> {
    try {
      const res = await this.container.getBlockBlobClient(this.key(name)).download();
      return res.readableStreamBody as Readable;
    } catch (e) {
      throw this.error(e, 'read', name);
    }
  }

  fatal(e: unknown, name: string): SmartError | undefined {
    if (e instanceof StoreFailure || (e as { name?: string })?.name === 'RestError')
      return this.error(e, 'write', name);
    return undefined;
  }

  async close(): Promise<void> {}
}

/**
 * Block buffers shared by the uploads of one sink. A buffer lives as long as the export: one
 * dropped after each file would be promoted to V8's old generation while its blocks were
 * staged, and its memory would wait there for a full collection (bench/export.mjs: 50 MB of
 * dead 2 MiB buffers with 60 files). Bounded by the uploads at once x (IN_FLIGHT + 1).
 */
export class BufferPool {
  private readonly buffers: Buffer[] = [];
  constructor(private readonly max = 64) {}

  /** A buffer of exactly `size` bytes (its content is garbage). */
  take(size: number): Buffer {
    const i = this.buffers.findIndex((b) => b.length === size);
    return i >= 0 ? this.buffers.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(size);
  }

  give(buf: Buffer): void {
    if (this.buffers.length < this.max) this.buffers.push(buf);
  }

  get size(): number {
    return this.buffers.length;
  }
}

/**
 * Block size of block `index`: the base size, doubled every BLOCKS_PER_SIZE blocks, so that a
 * large file fits the 50,000 blocks of a blob (310 GiB with 1 MiB blocks) while memory stays at
 * the base size for files of up to BLOCKS_PER_SIZE x the base (~10 GiB with 1 MiB blocks).
 */
export function blockSizeAt(base: number, index: number): number {
  return base * 2 ** Math.floor(index / BLOCKS_PER_SIZE);
}

/**
 * One file as staged blocks: the download's bytes are copied into a block buffer; a full block
 * is staged (Put Block) while the next one fills; at most IN_FLIGHT blocks are on their way, and
 * a write waits (backpressure) until one of them is done. The buffers are reused, so memory per
 * file is (IN_FLIGHT + 1) x the block size, whatever the size of the file. Nothing is visible
 * until commit() puts the block list (with the metadata) after every block is staged.
 */
export function stagedUpload(
  blob: BlockBlobClient,
  o: {
    blockSize: number;
    pool: BufferPool;
    metadata: Record<string, string>;
    contentType: string;
  },
): SinkUpload {
  const controller = new AbortController();
  // Block ids: the same length for every block of a blob; this upload's own, so that blocks
  // left staged by an earlier attempt are never part of this one's list.
  const tag = randomBytes(6).toString('hex');
  const ids: string[] = [];
  const free: Buffer[] = [];
  const inFlight = new Set<Promise<void>>();
  let current: Buffer | undefined;
  let used = 0;
  let failure: unknown;
  let settled = false;
  /** A write waiting for a block to finish staging. */
  let waiting: (() => void) | undefined;

  const fail = (e: unknown) => {
    failure ??= e;
    if (!stream.destroyed) stream.destroy(new StoreFailure(failure));
  };
  const stage = (buf: Buffer, length: number) => {
    const id = Buffer.from(`${tag}-${String(ids.length).padStart(6, '0')}`).toString('base64');
    ids.push(id);
    const body = length === buf.length ? buf : buf.subarray(0, length);
    const p: Promise<void> = blob
      .stageBlock(id, body, length, { abortSignal: controller.signal })
      .then(
        () => undefined,
        (e: unknown) => fail(e),
      )
      .finally(() => {
        // Reused for a later block (the request is over: the SDK holds it no longer).
        free.push(buf);
        inFlight.delete(p);
        const w = waiting;
        waiting = undefined;
        w?.();
      });
    inFlight.add(p);
  };
  /** Stage what is left in the buffer (the last block, or nothing). */
  const flush = () => {
    if (current && used > 0) stage(current, used);
    current = undefined;
    used = 0;
  };

  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      let offset = 0;
      const step = () => {
        for (;;) {
          if (failure !== undefined) return cb(new StoreFailure(failure));
          if (current && used === current.length) {
            // A full block goes as soon as a slot is free; until then this write waits.
            if (inFlight.size >= IN_FLIGHT) {
              waiting = step;
              return;
            }
            flush();
          }
          if (offset >= chunk.length) return cb();
          if (!current) {
            const size = blockSizeAt(o.blockSize, ids.length);
            const mine = free.pop();
            if (mine && mine.length !== size) o.pool.give(mine);
            current = mine?.length === size ? mine : o.pool.take(size);
          }
          const n = chunk.copy(current, used, offset);
          used += n;
          offset += n;
        }
      };
      step();
    },
    final(cb) {
      // The last block goes while the line count is checked; commit() waits for it.
      flush();
      cb();
    },
    destroy(e, cb) {
      waiting = undefined;
      if (e) controller.abort();
      cb(e);
    },
  });
  // Failures reach the download through its pipeline and through commit(); a failure after the
  // pipeline finished (a block failing while the line check runs) must not be an unhandled event.
  stream.on('error', () => undefined);

  /** Wait for the blocks on their way, then hand every buffer back to the pool. */
  const drain = async () => {
    while (inFlight.size > 0) await Promise.all([...inFlight]);
  };
  const recycle = () => {
    if (current) free.push(current);
    current = undefined;
    used = 0;
    for (const b of free.splice(0)) o.pool.give(b);
  };
  return {
    stream,
    commit: async (meta) => {
      if (settled) throw new Error('upload already settled');
      settled = true;
      if (failure !== undefined) throw new StoreFailure(failure);
      flush();
      await drain();
      recycle();
      if (failure !== undefined) throw new StoreFailure(failure);
      try {
        await blob.commitBlockList(ids, {
          metadata: { ...o.metadata, ...objectMetadata(meta) },
          blobHTTPHeaders: { blobContentType: o.contentType },
          abortSignal: controller.signal,
        });
      } catch (e) {
        throw new StoreFailure(e);
      }
    },
    abort: async () => {
      if (settled) return;
      settled = true;
      // Nothing is committed: the staged blocks stay invisible (see sweep()).
      failure ??= new Error('upload aborted');
      controller.abort();
      if (!stream.destroyed) stream.destroy();
      await drain();
      recycle();
    },
  };
}
