import type { Readable } from 'node:stream';
import type { SmartError } from '../../errors.js';
import {
  contentType,
  isIpOrLocalhost,
  keyOf,
  notEmpty,
  parseSize,
  splitUrl,
  STATE_FILE,
  type Env,
} from './common.js';
import { StoreFailure, isNetworkError, storeError, type StoreErrorInfo } from './errors.js';
import { gate } from './gate.js';
import { META_LINES, objectMetadata } from './meta.js';
import type { FileMeta, Sink, SinkUpload, StoredFile } from './types.js';

type S3Sdk = typeof import('@aws-sdk/client-s3');
type S3Client = import('@aws-sdk/client-s3').S3Client;

/** S3 wants parts of at least 5 MiB (but the last); a file smaller than a part is one PUT. */
const DEFAULT_PART_SIZE = 5 * 1024 * 1024;
/** Parts in flight per file: memory per file is about (this + 1) x the part size. */
const QUEUE_SIZE = 2;
/** CopyObject's limit, for rewriting the metadata of a completed multipart object. */
const MAX_COPY = 5 * 1024 ** 3;

const ENV_HINT = 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)';

const DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AllAccessDisabled',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AccountProblem',
  'Forbidden',
]);
const THROTTLED = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'RequestThrottled',
]);

function classify(e: unknown): StoreErrorInfo {
  const err = e as {
    name?: string;
    Code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = err?.Code ?? err?.name;
  const status = err?.$metadata?.httpStatusCode;
  const message = err?.message ?? String(e);
  const base = { ...(name ? { code: name } : {}), ...(status ? { status } : {}), message };
  if (err?.name === 'CredentialsProviderError' || /could not load credentials/i.test(message))
    return { ...base, problem: 'credentials' };
  if (/region is missing/i.test(message)) return { ...base, problem: 'no-region' };
  if (name === 'NoSuchBucket') return { ...base, problem: 'no-container' };
  if ((name && DENIED.has(name)) || status === 403) return { ...base, problem: 'denied' };
  if ((name && THROTTLED.has(name)) || status === 503 || status === 429)
    return { ...base, problem: 'throttled' };
  if (isNetworkError(e)) return { ...base, problem: 'network' };
  return { ...base, problem: 'other' };
}

export interface S3SinkOptions {
  env: Env;
}

/**
 * `s3://bucket/prefix` through the AWS SDK: credentials from its default chain (environment,
 * profile, SSO, instance role), the endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
 * Each file is a multipart upload (or one PUT when smaller than a part) completed only after its
 * last byte and the line count check; a cut upload is aborted.
 */
export class S3Sink implements Sink {
  readonly kind = 's3' as const;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;

  private constructor(
    readonly location: string,
    url: URL,
    private readonly sdk: S3Sdk,
    private readonly Upload: typeof import('@aws-sdk/lib-storage').Upload,
    private readonly client: S3Client,
    env: Env,
  ) {
    ({ container: this.bucket, prefix: this.prefix } = splitUrl(url, location));
    this.partSize = Math.max(
      DEFAULT_PART_SIZE,
      parseSize(env.SMART_UPLOAD_PART_SIZE, 'SMART_UPLOAD_PART_SIZE') ?? DEFAULT_PART_SIZE,
    );
  }

  static async create(url: URL, location: string, o: S3SinkOptions): Promise<S3Sink> {
    splitUrl(url, location);
    const [sdk, { Upload }] = await Promise.all([
      import('@aws-sdk/client-s3'),
      import('@aws-sdk/lib-storage'),
    ]);
    const env = o.env;
    // The SDK's Node support notice on stderr is silenced by the CLI (src/cli.cts), not here: a
    // library leaves process.env alone.
    const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
    let host = '';
    try {
      host = endpoint ? new URL(endpoint).hostname : '';
    } catch {
      host = '';
    }
    const pathStyle = env.SMART_S3_PATH_STYLE === '1' || (!!host && isIpOrLocalhost(host));
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? 'us-east-1' : undefined);
    // Keys in the environment given (the process's, for the CLI) come first, as in the SDK's own
    // chain; without them the chain looks further (profile, SSO, instance role).
    const keys =
      env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          }
        : undefined;
    const client = new sdk.S3Client({
      ...(endpoint ? { endpoint } : {}),
      ...(region ? { region } : {}),
      ...(keys ? { credentials: keys } : {}),
      ...(env.AWS_PROFILE ? { profile: env.AWS_PROFILE } : {}),
      forcePathStyle: pathStyle,
      followRegionRedirects: true,
      // The SDK logs nothing (no logger): no request, header or credential reaches a log line.
    });
    return new S3Sink(location, url, sdk, Upload, client, env);
  }

  private key(name: string): string {
    return keyOf(this.prefix, name);
  }

  describe(name: string): string {
    return `s3://${this.bucket}/${this.key(name)}`;
  }

  private error(e: unknown, op: string, name?: string): SmartError {
    const inner = e instanceof StoreFailure ? e.error : e;
    return storeError(
      classify(inner),
      {
        store: 'S3',
        where: name ? this.describe(name) : this.location,
        root: this.location,
        container: `bucket ${this.bucket}`,
        env: ENV_HINT,
        creds: 'the AWS default chain',
        op,
      },
      inner,
    );
  }

  async prepare(display: string): Promise<boolean> {
    let listed;
    try {
      listed = await this.client.send(
        new this.sdk.ListObjectsV2Command({
          Bucket: this.bucket,
          ...(this.prefix ? { Prefix: `${this.prefix}/` } : {}),
          MaxKeys: 1,
        }),
      );
    } catch (e) {
      throw this.error(e, 'list');
    }
    if ((listed.KeyCount ?? listed.Contents?.length ?? 0) > 0) {
      throw notEmpty(display, (await this.stat(STATE_FILE)) !== undefined);
    }
    await this.probeWrite();
    return false;
  }

  /**
   * Prove that writes are allowed before anything starts on the server: a multipart upload
   * started and aborted leaves nothing behind. A store without multipart uploads cannot tell.
   */
  private async probeWrite(): Promise<void> {
    const Key = this.key(STATE_FILE);
    let id: string | undefined;
    try {
      id = (
        await this.client.send(
          new this.sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key }),
        )
      ).UploadId;
    } catch (e) {
      if ((e as { name?: string }).name === 'NotImplemented') return;
      throw this.error(e, 'write', STATE_FILE);
    }
    if (id) {
      await this.client
        .send(new this.sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: id }))
        .catch(() => undefined);
    }
  }

  async discard(): Promise<void> {}

  async readText(name: string): Promise<string | undefined> {
    try {
      const res = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(name) }),
      );
      return (await res.Body?.transformToString('utf8')) ?? '';
    } catch (e) {
      const n = (e as { name?: string }).name;
      if (n === 'NoSuchKey' || n === 'NotFound') return undefined;
      throw this.error(e, 'read', name);
    }
  }

  async writeText(name: string, text: string): Promise<void> {
    try {
      await this.client.send(
        new this.sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(name),
          Body: text,
          ContentType: contentType(name),
        }),
      );
    } catch (e) {
      throw this.error(e, 'write', name);
    }
  }

  async list(): Promise<Map<string, StoredFile>> {
    const found = new Map<string, StoredFile>();
    const start = this.prefix ? `${this.prefix}/` : '';
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new this.sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            ...(start ? { Prefix: start } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
        for (const o of page.Contents ?? []) {
          if (o.Key?.startsWith(start) && !o.Key.endsWith('/'))
            found.set(o.Key.slice(start.length), { bytes: o.Size ?? 0 });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (e) {
      throw this.error(e, 'list');
    }
    return found;
  }

  async stat(name: string): Promise<StoredFile | undefined> {
    try {
      const h = await this.client.send(
        new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key(name) }),
      );
      return { bytes: h.ContentLength ?? 0, meta: h.Metadata ?? {} };
    } catch (e) {
      const n = (e as { name?: string }).name;
      if (n === 'NotFound' || n === 'NoSuchKey') return undefined;
      throw this.error(e, 'read', name);
    }
  }

  /** Always from zero (no `partial`): a cut upload is aborted, never continued. */
  async open(name: string, opts: { expected?: FileMeta } = {}): Promise<SinkUpload> {
    const { expected } = opts;
    const g = gate();
    const initial = expected ? objectMetadata(expected) : {};
    const params = {
      Bucket: this.bucket,
      Key: this.key(name),
      Body: g.body,
      ContentType: contentType(name),
      // Read again when a single PUT is sent at the end, so commit() can still change it.
      Metadata: { ...initial },
    };
    const upload = new this.Upload({
      client: this.client,
      params,
      partSize: this.partSize,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    let failure: unknown;
    const done = upload.done();
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
        const final = objectMetadata(meta);
        Object.assign(params.Metadata, final);
        g.release();
        try {
          await done;
        } catch (e) {
          throw new StoreFailure(e);
        }
        const multipart = (upload as unknown as { isMultiPart?: boolean }).isMultiPart;
        if (multipart && initial[META_LINES] !== final[META_LINES] && g.bytes <= MAX_COPY) {
          // The metadata was sent with the first part; set the counted lines now.
          try {
            await this.client.send(
              new this.sdk.CopyObjectCommand({
                Bucket: this.bucket,
                Key: this.key(name),
                CopySource: `${this.bucket}/${encodeURIComponent(this.key(name)).replace(/%2F/g, '/')}`,
                MetadataDirective: 'REPLACE',
                Metadata: final,
                ContentType: contentType(name),
              }),
            );
          } catch (e) {
            throw new StoreFailure(e);
          }
        }
      },
      abort: async () => {
        if (settled) return;
        settled = true;
        // An error in the body (never a plain end) makes lib-storage abort the multipart upload.
        g.fail(new Error('upload aborted'));
        await done.catch(() => undefined);
      },
    };
  }

  async sweep(): Promise<void> {
    // Unfinished multipart uploads under the prefix (a run killed before it could abort them).
    const start = this.prefix ? `${this.prefix}/` : '';
    try {
      let keyMarker: string | undefined;
      let idMarker: string | undefined;
      do {
        const page = await this.client.send(
          new this.sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            ...(start ? { Prefix: start } : {}),
            ...(keyMarker ? { KeyMarker: keyMarker, UploadIdMarker: idMarker } : {}),
          }),
        );
        await Promise.all(
          (page.Uploads ?? []).map((u) =>
            this.client
              .send(
                new this.sdk.AbortMultipartUploadCommand({
                  Bucket: this.bucket,
                  Key: u.Key!,
                  UploadId: u.UploadId!,
                }),
              )
              .catch(() => undefined),
          ),
        );
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        idMarker = page.NextUploadIdMarker;
      } while (keyMarker);
    } catch {
      // Best effort: some S3-compatible stores do not list multipart uploads.
    }
  }

  async read(name: string): Promise<Readable> {
    try {
      const res = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(name) }),
      );
      return res.Body as Readable;
    } catch (e) {
      throw this.error(e, 'read', name);
    }
  }

  fatal(e: unknown, name: string): SmartError | undefined {
    if (e instanceof StoreFailure || (e as { $metadata?: unknown })?.$metadata)
      return this.error(e, 'write', name);
    return undefined;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
