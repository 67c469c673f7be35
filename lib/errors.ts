/** RedoError, the catalog of stable ERR_* codes, and the exit code each maps to. */

/**
 * Every error code redo-ts can raise, alphabetical, one line each.
 * Codes are stable: wording of messages may change, codes may not.
 * Add new codes here, in order, with their exit status in `exitCodes`.
 */
export const errorCatalog = {
  ERR_INTERNAL: 'a bug in redo-ts itself; the message asks for a report',
  ERR_USAGE: 'bad command-line arguments',
} as const;

/** A stable error code from the catalog. */
export type ErrorCode = keyof typeof errorCatalog;

/**
 * Exit status for each code. 0 success, 1 build failure, 2 usage error;
 * rule-contract violations get their own documented codes (see README).
 */
export const exitCodes: Record<ErrorCode, number> = {
  ERR_INTERNAL: 70,
  ERR_USAGE: 2,
};

/** Options for a RedoError: the detail lines, an optional hint and the original cause. */
export interface RedoErrorOptions {
  /** Evidence lines (wanted/found, exit status, stderr tail, chain), printed indented. */
  details?: readonly string[];
  /** A next step the user can take, printed as `hint: ...`. */
  hint?: string;
  /** The original exception, kept, never swallowed. */
  cause?: unknown;
}

/**
 * The one error type the library throws for anything a user can cause.
 * `headline` has no trailing period; `details` and `hint` are rendered by the CLI
 * as lines indented two spaces under it.
 */
export class RedoError extends Error {
  readonly code: ErrorCode;
  readonly headline: string;
  readonly details: readonly string[];
  readonly hint: string | undefined;

  constructor(code: ErrorCode, headline: string, options: RedoErrorOptions = {}) {
    super(headline, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RedoError';
    this.code = code;
    this.headline = headline;
    this.details = options.details ?? [];
    this.hint = options.hint;
  }

  /** The exit status the CLI uses for this error. */
  get exitCode(): number {
    return exitCodes[this.code];
  }

  /** The full user-facing text: headline, indented details, hint. No trailing newline. */
  render(): string {
    const lines = [this.headline, ...this.details.map((d) => `  ${d}`)];
    if (this.hint !== undefined) lines.push(`  hint: ${this.hint}`);
    return lines.join('\n');
  }
}

/** A bug in redo-ts, not in the user's project: printed with a stack and the version. */
export class InternalError extends Error {
  override readonly name = 'InternalError';
}

/** True when `error` is a RedoError carrying `code` (or any RedoError if no code given). */
export function isRedoError(error: unknown, code?: ErrorCode): error is RedoError {
  return error instanceof RedoError && (code === undefined || error.code === code);
}
