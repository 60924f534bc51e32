/**
 * FHIR reads and searches. The parts:
 * - query.ts: what `smart query` was asked for; search parameters parsed, encoded, set;
 * - pages.ts: the page model (read whole or streamed, entries parsed lazily, the --limit cut);
 * - search.ts: the walk by next links (same origin, no cycles, under the FHIR base);
 * - read.ts: GET [base]/Type/id;
 * - types.ts: resources, Bundles, what a session must offer.
 */
export {
  asSearchPage,
  entryText,
  isMatch,
  nextLink,
  pageOfBundle,
  parseSearchPage,
  type SearchOptions,
  type SearchPage,
  type SearchStats,
} from './pages.js';
export {
  encodeSearchParams,
  parseQueryString,
  parseQueryTarget,
  searchPath,
  toSearchParams,
  withParam,
  type QueryTarget,
  type SearchParam,
} from './query.js';
export { read, readResource } from './read.js';
export {
  checkNextLink,
  searchPages,
  streamSearch,
  type SearchPageStream,
  type SearchPages,
} from './search.js';
export type { Bundle, BundleEntry, BundleLink, FhirRequester, Resource } from './types.js';
