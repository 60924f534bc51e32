// Whether a file of a cache of ours (tokens, discovery documents, compiled code) can be trusted:
// whoever can write it chooses what smart sends or runs. The file must be a regular file of this
// user's that no one else can read or write (0600), in directories of this user's that no one
// else can write.

const octal = (mode: number) => `0${(mode & 0o777).toString(8).padStart(3, '0')}`;

/** This process's user id, or undefined where there are no user ids (Windows). */
export function processUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/** The part of a stat that the rule reads. */
export interface TrustStat {
  uid: number;
  mode: number;
  isFile(): boolean;
}

/**
 * Why a cache file or one of its directories cannot be trusted, or undefined when it can.
 * `uid`: this process's user (undefined where there are no user ids: any owner is taken).
 */
export function trustProblem(
  st: TrustStat,
  kind: 'file' | 'directory',
  uid: number | undefined,
): string | undefined {
  if (kind === 'directory') {
    if (uid !== undefined && st.uid !== uid)
      return `the directory is owned by another user (uid ${st.uid})`;
    if (st.mode & 0o022) return `the directory is writable by other users (mode ${octal(st.mode)})`;
    return undefined;
  }
  if (!st.isFile()) return 'it is not a regular file';
  if (uid !== undefined && st.uid !== uid) return `it is owned by another user (uid ${st.uid})`;
  if (st.mode & 0o077)
    return `its mode ${octal(st.mode)} lets other users read or change it (expected 0600)`;
  return undefined;
}
