import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { refreshDelay } from "../src/backoff.js";

describe("refreshDelay", () => {
  it("refreshes after 3/4 of the remaining life, at least 500 ms before expiry", () => {
    const now = 1_000_000;
    const cases: Array<[number, number]> = [
      [3_600_000, 2_700_000],
      [2_000, 1_500],
      [1_000, 500], // never at the expiry itself
      [300, 50],
      [-1_000, 50],
    ];
    for (const [left, want] of cases) assert.equal(refreshDelay(now, now + left), want, `left ${left}`);
  });
});
