import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { WebhookVerificationError, type WebhookVerificationReason, verifyWebhook } from "../src/index.js";

/** A whsec_ secret of `n` bytes all `b`, and its key. */
function testSecret(b: number, n: number): [string, Buffer] {
  const key = Buffer.alloc(n, b);
  return ["whsec_" + key.toString("base64"), key];
}

/** A webhook-signature entry computed independently, with node:crypto. */
function sign(key: Buffer, id: string, ts: string, body: string | Uint8Array): string {
  return "v1," + createHmac("sha256", key).update(`${id}.${ts}.`).update(body).digest("base64");
}

const now = new Date(1_760_000_000_000);
const ts = String(now.getTime() / 1000);
const at = (s: number) => String(now.getTime() / 1000 + s);
const [secret, key] = testSecret(0x42, 32);
const [oldSecret, oldKey] = testSecret(0x17, 24);
const body = '{"type":"resource.created","cursor":"c1"}';
const good = sign(key, "evt_1", ts, body);

/** The three headers as Node's req.headers has them, with overrides (undefined drops one). */
function headers(over: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { "webhook-id": "evt_1", "webhook-timestamp": ts, "webhook-signature": good, ...over };
}

async function reasonOf(p: Promise<void>): Promise<WebhookVerificationReason | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    assert.ok(err instanceof WebhookVerificationError, `not a WebhookVerificationError: ${err}`);
    return err.reason;
  }
}

describe("verifyWebhook", () => {
  const rotated = `${sign(key, "evt_1", ts, body)} ${sign(oldKey, "evt_1", ts, body)}`;
  const cases: Array<[string, string, Headers | Record<string, string | string[] | undefined>, string | Uint8Array, WebhookVerificationReason | undefined]> = [
    ["good", secret, headers(), body, undefined],
    ["good, bytes body", secret, headers(), new TextEncoder().encode(body), undefined],
    ["good, secret without whsec_", secret.slice("whsec_".length), headers(), body, undefined],
    ["good, fetch Headers", secret, new Headers(headers() as Record<string, string>), body, undefined],
    ["good, mixed-case record", secret, { "Webhook-Id": "evt_1", "WEBHOOK-TIMESTAMP": ts, "webhook-signature": [good] }, body, undefined],
    ["tampered body", secret, headers(), body.replace("created", "deleted"), "signature"],
    ["tampered id", secret, headers({ "webhook-id": "evt_2" }), body, "signature"],
    ["tampered timestamp", secret, headers({ "webhook-timestamp": at(1) }), body, "signature"],
    ["wrong secret", oldSecret, headers(), body, "signature"],
    ["old timestamp", secret, headers({ "webhook-timestamp": at(-360), "webhook-signature": sign(key, "evt_1", at(-360), body) }), body, "timestamp"],
    ["future timestamp", secret, headers({ "webhook-timestamp": at(360), "webhook-signature": sign(key, "evt_1", at(360), body) }), body, "timestamp"],
    ["edge of the window", secret, headers({ "webhook-timestamp": at(-300), "webhook-signature": sign(key, "evt_1", at(-300), body) }), body, undefined],
    ["timestamp not a number", secret, headers({ "webhook-timestamp": "yesterday" }), body, "timestamp"],
    ["rotation, new secret", secret, headers({ "webhook-signature": rotated }), body, undefined],
    ["rotation, old secret", oldSecret, headers({ "webhook-signature": rotated }), body, undefined],
    ["rotation, joined header lines", oldSecret, new Headers([["webhook-id", "evt_1"], ["webhook-timestamp", ts], ["webhook-signature", sign(key, "evt_1", ts, body)], ["webhook-signature", sign(oldKey, "evt_1", ts, body)]]), body, undefined],
    ["missing id", secret, headers({ "webhook-id": undefined }), body, "headers"],
    ["missing timestamp", secret, headers({ "webhook-timestamp": undefined }), body, "headers"],
    ["missing signature", secret, headers({ "webhook-signature": undefined }), body, "headers"],
    ["non-v1 entries ignored", secret, headers({ "webhook-signature": `v2,${good.slice(3)} v1a,abc ${good}` }), body, undefined],
    ["only non-v1 entries", secret, headers({ "webhook-signature": `v2,${good.slice(3)}` }), body, "signature"],
    ["bad base64 entry skipped", secret, headers({ "webhook-signature": `v1,@@@ ${good}` }), body, undefined],
    ["truncated signature", secret, headers({ "webhook-signature": good.slice(0, 20) }), body, "signature"],
    ["malformed secret", "whsec_not base64!", headers(), body, "secret"],
    ["short secret", "whsec_" + Buffer.from("short").toString("base64"), headers(), body, "secret"],
  ];
  for (const [name, sec, hdrs, b, want] of cases) {
    it(name, async () => {
      assert.equal(await reasonOf(verifyWebhook(sec, hdrs, b, { now })), want);
    });
  }

  it("uses the current time and a custom tolerance", async () => {
    const sent = String(Math.floor(Date.now() / 1000) - 120);
    const h = { "webhook-id": "e", "webhook-timestamp": sent, "webhook-signature": sign(key, "e", sent, "{}") };
    await verifyWebhook(secret, h, "{}");
    assert.equal(await reasonOf(verifyWebhook(secret, h, "{}", { toleranceSeconds: 60 })), "timestamp");
  });

  it("verifies a cross-check vector from node:crypto createHmac", async () => {
    // Independent of the fixtures above: the Standard Webhooks test vector.
    const fixedSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const fixedKey = Buffer.from(fixedSecret.slice(6), "base64");
    const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const t = "1614265330";
    const payload = '{"test": 2432232314}';
    const sig = "v1," + createHmac("sha256", fixedKey).update(`${id}.${t}.${payload}`).digest("base64");
    // The Standard Webhooks specification's published vector.
    assert.equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    await verifyWebhook(fixedSecret, { "webhook-id": id, "webhook-timestamp": t, "webhook-signature": sig }, payload, { now: new Date(1614265330_000) });
  });

  it("falls back to node:crypto without a global crypto (Node 18)", async (t) => {
    const desc = Object.getOwnPropertyDescriptor(globalThis, "crypto");
    if (!desc?.configurable) return t.skip("globalThis.crypto cannot be removed here");
    Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true, writable: true });
    try {
      assert.equal((globalThis as { crypto?: unknown }).crypto, undefined);
      await verifyWebhook(secret, headers(), body, { now });
    } finally {
      Object.defineProperty(globalThis, "crypto", desc);
    }
  });
});
