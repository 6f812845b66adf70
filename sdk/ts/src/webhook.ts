/**
 * Verification of Tandem webhook deliveries (Standard Webhooks:
 * https://www.standardwebhooks.com/). Uses WebCrypto only, so it runs in
 * Node, Deno, Bun, browsers and edge workers.
 */

import { importOptional } from "./optional.js";

/** Why {@link verifyWebhook} refused a delivery. */
export type WebhookVerificationReason =
  /** webhook-id, webhook-timestamp or webhook-signature is missing. */
  | "headers"
  /** webhook-timestamp is not unix seconds, or is outside the tolerance (a replay or a skewed clock). */
  | "timestamp"
  /** No v1 signature matches the secret (forged or altered, or the wrong secret). */
  | "signature"
  /** The secret is not `whsec_` + padded base64 of 24 to 64 bytes (a configuration mistake). */
  | "secret";

/** A webhook delivery failed verification; `reason` says which check. */
export class WebhookVerificationError extends Error {
  readonly reason: WebhookVerificationReason;
  constructor(reason: WebhookVerificationReason, message: string) {
    super(message);
    this.name = "WebhookVerificationError";
    this.reason = reason;
  }
}

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /** How far webhook-timestamp may be from `now`, either way (default 300 s). */
  toleranceSeconds?: number;
  /** The receiver's clock (default: the current time). */
  now?: Date;
}

/** The default replay window of {@link verifyWebhook}, in seconds. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = "whsec_";
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Checks that a webhook delivery comes from Tandem, signed with `secret`
 * (the webhook's `whsec_…` secret; the prefix is optional), and was sent
 * within the tolerance of now. `headers` are the request's headers (a
 * fetch `Headers` or Node's `req.headers`); `body` is the raw body exactly
 * as received: verify before parsing the JSON, and pass the bytes (or
 * their exact UTF-8 text).
 *
 * During a secret rotation Tandem signs with the new and the previous
 * secret, so either verifies. `webhook-id` identifies the delivery: a
 * receiver may remember recent ones to ignore a retry it already handled.
 *
 * @throws {WebhookVerificationError} with reason "secret", "headers",
 *   "timestamp" or "signature" (checked in that order).
 */
export async function verifyWebhook(
  secret: string,
  headers: Headers | Record<string, string | string[] | undefined>,
  body: string | Uint8Array,
  opts: VerifyWebhookOptions = {},
): Promise<void> {
  const key = secretKey(secret);
  const id = header(headers, "webhook-id", false);
  const ts = header(headers, "webhook-timestamp", false);
  const sigs = header(headers, "webhook-signature", true);
  const missing = (
    [
      ["webhook-id", id],
      ["webhook-timestamp", ts],
      ["webhook-signature", sigs],
    ] as const
  )
    .filter(([, v]) => !v)
    .map(([n]) => n);
  if (missing.length > 0) throw new WebhookVerificationError("headers", `webhook headers missing: ${missing.join(", ")}`);

  if (!/^\d+$/.test(ts)) throw new WebhookVerificationError("timestamp", `webhook-timestamp ${JSON.stringify(ts)} is not unix seconds`);
  const tolerance = opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const age = now - Number(ts);
  if (age > tolerance) throw new WebhookVerificationError("timestamp", `webhook sent ${age} s ago (tolerance ${tolerance} s)`);
  if (-age > tolerance) throw new WebhookVerificationError("timestamp", `webhook sent ${-age} s in the future (tolerance ${tolerance} s)`);

  const enc = new TextEncoder();
  const prefix = enc.encode(`${id}.${ts}.`);
  const payload = typeof body === "string" ? enc.encode(body) : body;
  const signed = new Uint8Array(prefix.length + payload.length);
  signed.set(prefix, 0);
  signed.set(payload, prefix.length);
  const subtle = await getSubtle();
  const hmacKey = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const want = new Uint8Array(await subtle.sign("HMAC", hmacKey, signed));

  let seen = 0;
  for (const raw of sigs.split(/\s+/)) {
    // Several header lines arrive joined with ", " (fetch Headers).
    const entry = raw.replace(/,$/, "");
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue; // another scheme is not ours to check
    seen++;
    const got = decodeBase64(entry.slice(comma + 1));
    if (got && constantTimeEqual(got, want)) return;
  }
  throw new WebhookVerificationError(
    "signature",
    seen === 0 ? "webhook-signature has no v1 signature" : `webhook signature does not match (none of ${seen} v1 signatures is this secret's)`,
  );
}

/** The HMAC key of a secret. @throws {WebhookVerificationError} reason "secret". */
function secretKey(secret: string): Uint8Array<ArrayBuffer> {
  const key = decodeBase64(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret);
  if (!key) throw new WebhookVerificationError("secret", "malformed webhook secret: not whsec_ and standard base64");
  if (key.length < 24 || key.length > 64) throw new WebhookVerificationError("secret", `malformed webhook secret: ${key.length} bytes, want 24 to 64`);
  return key;
}

/** Strict, padded standard base64; undefined when `s` is not. */
function decodeBase64(s: string): Uint8Array<ArrayBuffer> | undefined {
  if (s === "" || !BASE64.test(s)) return undefined;
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Compares every byte (XOR accumulated), so the time does not depend on where they differ. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * A header by name, in any case: the first value, or all joined with a
 * space when `all` (a Node header may be an array).
 */
function header(headers: Headers | Record<string, string | string[] | undefined>, name: string, all: boolean): string {
  let v: string | string[] | undefined | null;
  if (typeof (headers as Headers).get === "function") {
    v = (headers as Headers).get(name);
  } else {
    const rec = headers as Record<string, string | string[] | undefined>;
    v = rec[name] ?? Object.entries(rec).find(([k]) => k.toLowerCase() === name)?.[1];
  }
  if (Array.isArray(v)) v = all ? v.join(" ") : v[0];
  return (v ?? "").trim();
}

/** WebCrypto's SubtleCrypto: the global one, or Node 18's node:crypto webcrypto. */
async function getSubtle(): Promise<SubtleCrypto> {
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (subtle) return subtle;
  const nodeCrypto = (await importOptional("node:crypto")) as { webcrypto: Crypto }; // kept from bundlers and the DOM-only build
  return nodeCrypto.webcrypto.subtle;
}
