/**
 * @tandem/sdk — TypeScript client of the Tandem realtime API server.
 *
 *   import { Tandem } from "@tandem/sdk"; // or: const { Tandem } = require("@tandem/sdk");
 *
 *   // Browsers and Node 22+ use the global WebSocket; Node 18 and 20 load the
 *   // `ws` package (npm install ws) on first connect, or take { WebSocket }.
 *   const tandem = new Tandem({ baseUrl: "http://127.0.0.1:8080" });
 *   const { data } = await tandem.rest.GET("/v1/collections");
 *   const conn = await tandem.connect();
 *   const { items } = await tandem.list("orders", { filter: "data.qty > 2", orderBy: "data.qty desc" });
 *   const sub = await conn.subscribe("collections/orders/resources", { snapshot: true, filter: "data.qty > 2" });
 *   for await (const ev of sub) console.log(ev);
 *   const result = await conn.rpc("game:move", { from: "e2", to: "e4" });
 *   await tandem.batch([{ op: "put", collection: "orders", id: "o-1", data: { item: "tea" } }, { op: "delete", collection: "carts", id: "c-9" }]);
 *   conn.onServerSubscription((s) => void (async () => { for await (const ev of s) console.log(ev); })());
 *   const wh = await tandem.webhooks.create({ topic: "collections/orders/resources", url: "https://app.example/hooks" });
 */
import { Connection, type RealtimeOptions } from "./realtime.js";
import {
  type BatchOperation,
  type BatchResult,
  type ListOptions,
  type ResourceList,
  type RestClient,
  batch,
  createRestClient,
  list,
  listPages,
} from "./rest.js";
import type { TokenSource } from "./token.js";
import { Webhooks } from "./webhooks.js";

export * from "./errors.js";
export * from "./realtime.js";
export * from "./state.js";
export { backoffDelay, type Backoff } from "./backoff.js";
export {
  batch,
  createRestClient,
  list,
  listPages,
  unwrap,
  type BatchOperation,
  type BatchResult,
  type ListOptions,
  type ResourceList,
  type RestClient,
} from "./rest.js";
export { updateCollection, type CollectionPatch, type UpdateCollectionOptions } from "./collections.js";
export { resolveToken, type TokenSource } from "./token.js";
export * from "./webhook.js";
export * from "./webhooks.js";
export type { paths, components, operations } from "./gen/openapi.js";
export type * from "./gen/frames.js";

export interface TandemOptions extends RealtimeOptions {
  /** fetch for REST (default: the global fetch). */
  fetch?: typeof fetch;
}

/**
 * A Tandem client: typed REST (`rest`, openapi-fetch), the webhook API
 * (`webhooks`) and realtime connections (`connect`).
 */
export class Tandem {
  readonly rest: RestClient;
  /** Create, list, get, update, delete, test and resume webhooks; each method throws a TandemError on a problem. */
  readonly webhooks: Webhooks;
  readonly options: TandemOptions;

  constructor(options: TandemOptions) {
    this.options = options;
    this.rest = createRestClient({ baseUrl: options.baseUrl, token: options.token as TokenSource | undefined, apiKey: options.apiKey, fetch: options.fetch });
    this.webhooks = new Webhooks(this.rest);
  }

  /** Applies operations atomically (`POST /v1/batch`); see `batch`. */
  batch(operations: BatchOperation[], opts: { idempotencyKey?: string } = {}): Promise<BatchResult> {
    return batch(this.rest, operations, opts);
  }

  /** Reads the resources of a collection that `opts` selects (filter, orderBy, labels), following pages; see `list`. */
  list(collection: string, opts: ListOptions = {}): Promise<{ items: ResourceList["items"]; revision: number }> {
    return list(this.rest, collection, opts);
  }

  /** Yields the pages of a list, following `nextPageToken`; see `listPages`. */
  listPages(collection: string, opts: ListOptions = {}): AsyncGenerator<ResourceList, void, undefined> {
    return listPages(this.rest, collection, opts);
  }

  /** Opens a realtime connection that reconnects and resumes by itself. */
  connect(): Promise<Connection> {
    return Connection.open(this.options);
  }
}
