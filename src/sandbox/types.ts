/** A FHIR resource as the sandbox holds it: plain JSON with at least resourceType and id. */
export interface Resource {
  resourceType: string;
  id: string;
  meta?: { lastUpdated?: string; versionId?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** What a fault does to a matching request. */
export type FaultAction =
  /** Answer at once with this status (and a Retry-After header when given). */
  | { status: 429 | 500 | 503; retryAfter?: string }
  /** Send the headers and part of the body, then destroy the socket. */
  | { drop: 'mid-body' }
  /** Wait this long, then answer normally. */
  | { delayMs: number }
  /**
   * Answer normally, but send the body at most this fast (a slow link or a slow storage
   * backend): small slices on a timer, stopping as soon as the client goes away.
   */
  | { throttleBytesPerSec: number };

export interface FaultRule {
  /**
   * Matched against the URL pathname. A string matches the pathname itself or any path below
   * it (`/fhir/$export-status` matches `/fhir/$export-status/abc`); `*` matches any characters.
   * A RegExp is tested against the pathname as is.
   */
  path: string | RegExp;
  /** Only requests with this method (case-insensitive); default any. */
  method?: string;
  /** 1-based positions among the requests this rule matches, e.g. [2, 3]. */
  nth?: number[];
  /** The first `times` matching requests (ignored when `nth` is given). Default: every one. */
  times?: number;
  action: FaultAction;
}

export interface RequestLogEntry {
  method: string;
  /** Pathname and query string; never a token or a secret. */
  path: string;
  status: number;
  ms: number;
  clientId?: string;
  /** ISO time the request arrived. */
  time: string;
  /**
   * The fault applied to this request, if any, e.g. `429`, `drop`, `delay`, `throttle`; with
   * `,aborted` appended (or `aborted` alone) when the client went away before the whole body
   * was sent.
   */
  fault?: string;
  /** Whether the request carried an Authorization header (never its value). */
  authorization: boolean;
}

/** A request as it arrives, before it is answered (`SandboxHandle.received`). */
export interface RequestArrival {
  method: string;
  /** Pathname and query string, masked as in the log. */
  path: string;
  /** ISO time the request arrived. */
  time: string;
  /** The faults that apply to it, e.g. `delay` or `throttle,drop`. */
  fault?: string;
}

export interface SandboxOptions {
  /** Default 8080; 0 = an ephemeral port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Password of the `root` admin client (HTTP Basic); default random. */
  adminSecret?: string;
  /** A folder of .json / .ndjson FHIR resources (Bundles or resources) replacing the fixtures. */
  dataDir?: string;
  /** N synthetic patients (deterministic, seeded) added to the data. */
  generate?: number;
  /** Resources per NDJSON file in $export; default 1000. */
  exportFileSize?: number;
  /** How long an export stays in progress; default 500 ms. */
  exportDelayMs?: number;
  /**
   * Status polls answered "in progress" before the manifest, on top of exportDelayMs; default 0.
   * Makes "the client saw a 202 poll" independent of how loaded the machine is.
   */
  exportMinPolls?: number;
  /**
   * Whether $export files need the Bearer token (default true). When false, the manifest says
   * `requiresAccessToken: false` and each file URL carries its own credential instead, like a
   * pre-signed storage URL: `?exp=<epoch seconds>&sig=<HMAC of path and exp>`, with a secret
   * of this sandbox; a token sent along is not needed (and not checked).
   */
  exportRequiresAccessToken?: boolean;
  /**
   * Aidbox's way: export files live in cloud storage (GCS, S3, Azure) on another origin, the
   * manifest says `requiresAccessToken: false` and each file URL is pre-signed there. True: a
   * second listener of the sandbox, on its own port (`SandboxHandle.storageUrl`), serves
   * `GET /exports/<id>/<name>?exp=&sig=`; a tampered or expired signature gets 403, and it
   * takes no token. Default false (files on the FHIR origin; see exportRequiresAccessToken).
   */
  exportSignedStorage?: boolean;
  /**
   * False: no cloud storage for $export, as an Aidbox without it: every kick-off answers 500
   * "storage-type not specified" (a fault to test against). Default true.
   */
  exportStorage?: boolean;
  faults?: FaultRule[];
  /**
   * The origin the server calls itself, like Aidbox's BOX_WEB_BASE_URL (e.g. `http://aidbox:8080`
   * in Docker): discovery advertises it, assertions must have `<publicUrl>/auth/token` as aud,
   * tokens are issued by it, and Bundle links, Content-Location and export file URLs are built
   * on it, whatever Host the request came with. Default: the origin each request used.
   */
  publicUrl?: string;
  /**
   * Client assertion algs advertised and accepted. Default `['RS384']`, as Aidbox; a test extra
   * for other servers: `['RS384', 'ES384']`. Inline Client.jwks take RSA keys only unless an ES
   * alg is listed.
   */
  algs?: string[];
  /** Added to every response. */
  latencyMs?: number;
  /**
   * Test extra: the server's clock runs this many seconds ahead of the machine's (negative:
   * behind). It judges assertions and tokens by it and sends it in the Date header.
   */
  clockOffsetSeconds?: number;
  /** One line per request: method, path, status, ms, client id. */
  log?: (line: string) => void;
  /**
   * The sandbox's clock (milliseconds since 1970), default `Date.now`. Token issue and expiry,
   * assertion checks and signed export URLs read it, so tests can move time instead of waiting.
   */
  now?: () => number;
  /**
   * Behaviours of real servers to reproduce (see quirks.ts): no-grant-types, no-signing-algs,
   * lowercase-bearer, kickoff-429, invalid-grant, error-counts, reference-registration.
   */
  quirks?: readonly string[];
}

export interface SandboxHandle {
  /** The origin, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The origin it calls itself (SandboxOptions.publicUrl), when set. */
  publicUrl?: string;
  /** The storage listener's origin (SandboxOptions.exportSignedStorage), when there is one. */
  storageUrl?: string;
  tokenUrl: string;
  fhirUrl: string;
  adminClientId: 'root';
  adminSecret: string;
  /**
   * Every request served so far. An entry is added when the response has closed, which can be a
   * moment after the client has read all of it: wait for it with `logged`, not a timer.
   */
  requests: RequestLogEntry[];
  /**
   * Resolves with the `count`-th (default first) entry of `requests`, counting from the start,
   * that `match` accepts (default: any; `index` is the entry's position in `requests`): at once
   * when it is there, else as soon as it is logged. Rejects when the sandbox closes first.
   *
   * @example `await sandbox.logged((r, i) => i >= mark && r.path.startsWith('/fhir/Patient'))`
   */
  logged(
    match?: (entry: RequestLogEntry, index: number) => boolean,
    count?: number,
  ): Promise<RequestLogEntry>;
  /**
   * Resolves once the `count`-th (default first) request that `match` accepts has arrived,
   * counting from the start (`index`: its position among all arrivals): its faults are chosen
   * and it is being served (a delay fault is waiting, a throttled body trickling). Rejects when
   * the sandbox closes first.
   */
  received(
    match?: (request: RequestArrival, index: number) => boolean,
    count?: number,
  ): Promise<RequestArrival>;
  /** How many resources of each type the sandbox serves. */
  counts: Record<string, number>;
  addFault(rule: FaultRule): void;
  /**
   * Stop: idle keep-alive connections close at once; requests in flight get `graceMs` (default
   * 0) to finish, then their connections are destroyed.
   */
  close(graceMs?: number): Promise<void>;
}
