/** The public API of redo-ts: documented re-exports only, no logic. */

export { RedoError, InternalError, isRedoError, errorCatalog, exitCodes } from './errors.js';
export type { ErrorCode, RedoErrorOptions } from './errors.js';
