// s3rver ships no types; the part the tests use.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';
  export default class S3rver {
    constructor(options: {
      address?: string;
      port?: number;
      silent?: boolean;
      directory: string;
      configureBuckets?: Array<{ name: string }>;
    });
    run(): Promise<AddressInfo>;
    /** S3 event notifications: one per object created (Put, Post = multipart completed, Copy). */
    on(
      event: 'event',
      listener: (e: {
        Records: Array<{ eventName: string; s3: { object: { key: string } } }>;
      }) => void,
    ): this;
    close(): Promise<void>;
  }
}
