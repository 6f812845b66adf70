/** Reconnect schedule: attempt n waits a random time in [d/2, d], d = min(max, min·2ⁿ) ms. */
export interface Backoff {
  min: number;
  max: number;
}

export const defaultBackoff: Backoff = { min: 250, max: 30_000 };

export function backoffDelay(b: Backoff, attempt: number): number {
  const d = Math.min(b.max, b.min * 2 ** Math.min(attempt, 52));
  return d / 2 + Math.random() * (d / 2);
}

/**
 * When to refresh a token that expires at `expiresAt` (ms): after 3/4 of its
 * remaining life, but at least 500 ms before it expires, and not sooner than 50 ms.
 */
export function refreshDelay(now: number, expiresAt: number): number {
  const left = expiresAt - now;
  return Math.max(50, Math.min((left * 3) / 4, left - 500));
}
