import type { Readable } from 'node:stream';
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
import { gate } from './gate.js';
import { objectMetadata } from './meta.js';
import type { FileMeta, Sink, SinkUpload, StoredFile } from './types.js';

type ContainerClient = import('@azure/storage-blob').ContainerClient;

/**
 * Block size: a file is staged in blocks of this size and committed once, at the end. 2 MiB
 * keeps 4 files x 2 blocks at 16 MiB in memory (bench/export.mjs: 4 MiB blocks put the peak
 * RSS ~8 MB higher, at the same throughput); a blob takes 50,000 blocks, so a file may be up
 * to ~97 GiB (SMART_UPLOAD_PART_SIZE raises it).
 */
const DEFAULT_BLOCK_SIZE = 2 * 1024 * 1024;
/** Blocks in flight per file: memory per file is about this x the block size. */
const CONCURRENCY = 2;

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
    const { expected } = opts;
    const g = gate();
    const options = {
      // Read when the block list is committed, after commit() has set the counted lines.
      metadata: expected ? objectMetadata(expected) : {},
      blobHTTPHeaders: { blobContentType: contentType(name) },
    };
    const done = this.container
      .getBlockBlobClient(this.key(name))
      .uploadStream(g.body, this.blockSize, CONCURRENCY, options);
    let failure: unknown;
    done.catch((e: unknown) => {
      failure ??= e;
      g.fail(new StoreFailure(e));
    });
    let settled = false;
    return {
      stream: g.stream,
      commit: async (meta) => {
        if (failure !== undefined) throw new StoreFailure(failure);
        settled = true;
        Object.assign(options.metadata, objectMetadata(meta));
        g.release();
        try {
          await done;
        } catch (e) {
          throw new StoreFailure(e);
        }
      },
      abort: async () => {
        if (settled) return;
        settled = true;
        // An error in the body: the block list is never committed.
        g.fail(new Error('upload aborted'));
        await done.catch(() => undefined);
      },
    };
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
