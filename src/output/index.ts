// What commands use of output/: the one format decision, the one render(), and plain writes.
export type { Column } from './table.js';
export { OUTPUT_FORMATS, terminalWidth, type OutputFormat } from './format.js';
export { decideFormat, render, renderersOf, type RenderIO } from './render.js';
export type { Result, ResultKind, Results } from './results.js';
export { jsonText, writeOut } from './write.js';
