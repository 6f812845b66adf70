/**
 * The webhook management API (`/v1/webhooks`, the `admin` grant on
 * `webhooks` plus `read` on the delivered topic): typed helpers over the
 * REST client. Receivers check deliveries with {@link verifyWebhook}.
 */
import type { components } from "./gen/openapi.js";
import { type RestClient, unwrap } from "./rest.js";

type Schemas = components["schemas"];

/** A webhook and its delivery status (`state`, `cursor`, `lag`, `lastError`, …). */
export type Webhook = Schemas["Webhook"];
/**
 * The body of {@link Webhooks.create}. `enabled` (default true) and
 * `maxBatch` (default 1) may be left out: the server fills in their
 * defaults (the generated type marks them required because they have one).
 */
export type WebhookCreate = Omit<Schemas["WebhookCreate"], "enabled" | "maxBatch"> & Partial<Pick<Schemas["WebhookCreate"], "enabled" | "maxBatch">>;
/** A JSON Merge Patch of a webhook (only the members given change). */
export type WebhookUpdate = Schemas["WebhookUpdate"];
/** The reply of {@link Webhooks.list}. */
export type WebhookList = Schemas["WebhookList"];
/** How the receiver answered {@link Webhooks.test}'s ping. */
export type WebhookTestResult = Schemas["WebhookTestResult"];
/** The body of {@link Webhooks.resume}. */
export type WebhookResume = Schemas["WebhookResume"];
/** The state of a webhook: `active`, `retrying`, `paused` or `resync-required`. */
export type WebhookState = Schemas["WebhookState"];

/** Options of {@link Webhooks.create}. */
export interface WebhookCreateOptions {
  /** Sent as Idempotency-Key: a retry with the same key replays the first reply (with the same secret) for 24 hours. */
  idempotencyKey?: string;
}

/**
 * The webhook API (`tandem.webhooks`, or `new Webhooks(createRestClient(…))`).
 * Every method throws a {@link TandemError} carrying the server's problem
 * (`status`, `slug`, `problem.errors` naming the fields) when the request
 * is refused, and rejects with fetch's error when the server cannot be
 * reached.
 *
 *   const wh = await tandem.webhooks.create({ topic: collectionTopic("orders"), url: "https://app.example/hooks/orders" });
 *   // keep wh.secret: it is never returned again
 */
export class Webhooks {
  readonly rest: RestClient;

  constructor(rest: RestClient) {
    this.rest = rest;
  }

  /**
   * Creates a webhook delivering `topic` (after `since`, else from its
   * current position) to `url`. The reply is the only one that carries
   * `secret` (the one given, or a generated one): keep it to verify
   * deliveries.
   *
   * @throws {TandemError} 422 (or 400) naming the field (`/url`: not
   *   http(s), or a private or loopback target without
   *   `--webhook-allow-private`; `/topic`; `/secret`), 404 when the topic's
   *   collection does not exist, 409 beyond the server's `--max-webhooks`,
   *   410 (a ResyncRequiredError) for a `since` out of the history,
   *   401/403 without the grants.
   */
  create(webhook: WebhookCreate, opts: WebhookCreateOptions = {}): Promise<Webhook> {
    return unwrap(
      this.rest.POST("/v1/webhooks", {
        // The server applies the defaults of enabled and maxBatch.
        body: webhook as Schemas["WebhookCreate"],
        params: { header: opts.idempotencyKey === undefined ? {} : { "Idempotency-Key": opts.idempotencyKey } },
      }),
    );
  }

  /**
   * Lists every webhook with its status, ordered by ID (without secrets).
   *
   * @throws {TandemError} 401/403 without the grant, 503 when the store is unavailable.
   */
  async list(): Promise<Webhook[]> {
    return (await unwrap(this.rest.GET("/v1/webhooks"))).items;
  }

  /**
   * Reads one webhook and its delivery status (`state`, `cursor`, `lag`,
   * `attempts`, `lastError`, `lastSuccessAt`, `failingSince`), without its
   * secret.
   *
   * @throws {TandemError} 404 (slug "not-found") for an unknown ID, 401/403 without the grant.
   */
  get(id: string): Promise<Webhook> {
    return unwrap(this.rest.GET("/v1/webhooks/{webhook}", { params: { path: { webhook: id } } }));
  }

  /**
   * Changes the given members (JSON Merge Patch). `{ enabled: false }`
   * pauses, `{ enabled: true }` restarts from the cursor; a new `topic` or
   * `labels` restarts at the new topic's current position;
   * `{ rotateSecret: true }` (or a new `secret`) returns the new secret in
   * this reply only, and the old one keeps signing too for the server's
   * `--webhook-secret-grace`.
   *
   * @throws {TandemError} 404 for an unknown ID, 422 (or 400) naming the
   *   refused field, 401/403 without the grants.
   */
  update(id: string, patch: WebhookUpdate): Promise<Webhook> {
    return unwrap(
      this.rest.PATCH("/v1/webhooks/{webhook}", {
        params: { path: { webhook: id } },
        body: patch,
        headers: { "Content-Type": "application/merge-patch+json" },
      }),
    );
  }

  /**
   * Deletes a webhook. Delivery stops; a request already in flight may still arrive.
   *
   * @throws {TandemError} 404 for an unknown ID, 401/403 without the grant.
   */
  async delete(id: string): Promise<void> {
    await unwrap(this.rest.DELETE("/v1/webhooks/{webhook}", { params: { path: { webhook: id } } }));
  }

  /**
   * Sends a signed `webhook.ping` to the receiver and reports how it
   * answered (`ok` for a 2xx). A receiver that fails is not an error here:
   * see `ok`, `status` and `error`. The cursor and status do not change.
   *
   * @throws {TandemError} 404 for an unknown ID, 401/403 without the grant.
   */
  test(id: string): Promise<WebhookTestResult> {
    return unwrap(this.rest.POST("/v1/webhooks/{webhook}/test", { params: { path: { webhook: id } } }));
  }

  /**
   * Enables a paused or resync-required webhook and restarts delivery:
   * after `since` when given (a cursor of the webhook's topic), else after
   * its acknowledged cursor, or for a resync-required webhook at the
   * topic's current position.
   *
   * @throws {TandemError} 404 for an unknown ID, 410 (a ResyncRequiredError)
   *   for a `since` out of the history, 400/422 for a malformed cursor,
   *   401/403 without the grant.
   */
  resume(id: string, since?: string): Promise<Webhook> {
    return unwrap(
      this.rest.POST("/v1/webhooks/{webhook}/resume", {
        params: { path: { webhook: id } },
        body: since === undefined ? {} : { since },
      }),
    );
  }
}
