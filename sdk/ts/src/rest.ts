import createFetchClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./gen/openapi.js";
import type { Problem } from "./gen/frames.js";
import { problemError } from "./errors.js";
import { type TokenSource, resolveToken } from "./token.js";

export type RestClient = Client<paths>;

/**
 * Fills {name} path parameters, escaping like Go's url.PathEscape: ':' and
 * '@' are legal in a path segment (RFC 3986 pchar) and channel names use ':'.
 */
function pathSerializer(pathname: string, params: Record<string, unknown>): string {
  return pathname.replace(/\{([^}]+)\}/g, (_, name: string) =>
    encodeURIComponent(String(params[name])).replace(/%3A/gi, ":").replace(/%40/g, "@"),
  );
}

/** The typed REST client (openapi-fetch) with the credentials attached to every request. */
export function createRestClient(opts: { baseUrl: string; token?: TokenSource; apiKey?: string; fetch?: typeof fetch }): RestClient {
  const client = createFetchClient<paths>({ baseUrl: opts.baseUrl.replace(/\/+$/, ""), fetch: opts.fetch, pathSerializer });
  client.use({
    async onRequest({ request }) {
      const tok = await resolveToken(opts.token);
      if (tok) request.headers.set("Authorization", `Bearer ${tok}`);
      if (opts.apiKey) request.headers.set("X-API-Key", opts.apiKey);
      return request;
    },
  });
  return client;
}

/**
 * Returns `data` of an openapi-fetch result, or throws a TandemError (a
 * ResyncRequiredError for 410 resync-required) carrying the problem.
 *
 *   const r = await unwrap(tandem.rest.GET("/v1/collections/{collection}", { params: { path: { collection: "orders" } } }));
 */
export async function unwrap<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const r = await p;
  if (r.response.ok) return r.data as T;
  const e = r.error as Partial<Problem> | undefined;
  if (e && typeof e === "object" && typeof e.status === "number" && typeof e.title === "string") throw problemError(e as Problem);
  throw problemError({ type: "about:blank", title: r.response.statusText || "HTTP error", status: r.response.status });
}

/** One page of a list: its items, the store revision it was read at, and `nextPageToken` when more follow. */
export type ResourceList = components["schemas"]["ResourceList"];

/** What {@link list} and {@link listPages} read. Without any, every resource of the collection by ID. */
export interface ListOptions {
  /** Label selector, e.g. "env=prod,tier!=db". */
  labels?: string;
  /** Filter expression (docs/queries.md), e.g. `data.status == "paid" && data.qty > 2`. */
  filter?: string;
  /** Up to 4 comma-separated fields, each optionally followed by `asc` or `desc`, e.g. "data.qty desc, id" (ties by ID; default: by ID). */
  orderBy?: string;
  /** Stop after this many resources in all (default: every one). */
  limit?: number;
  /**
   * Resources asked for per request, at most 1000 (default 1000, or 100 with
   * a filter; never more than `limit`). The server examines at most its scan
   * budget (`--max-scan`) per request, so a sparse filter fills small pages
   * where a large one would answer 422 needs-index.
   */
  pageSize?: number;
  /** Start after the page that returned this `nextPageToken` (of a list with the same labels, filter and orderBy). */
  pageToken?: string;
}

/**
 * Yields the pages of a list, following `nextPageToken`, until the last page
 * or until `limit` resources have been read (the last request asks for no
 * more than are left; its page's `nextPageToken` still continues the list).
 * Keyset pages: while writers run, no resource that did not change is
 * skipped or repeated.
 *
 *   for await (const page of listPages(tandem.rest, "orders", { filter: "data.qty > 2", orderBy: "data.qty desc" })) …
 *
 * @throws {TandemError} 400 naming the parameter (and for an expression its
 *   position: "query filter: position 11: …"), 422 `needs-index` when the
 *   query would examine more than the server's scan budget (the detail names
 *   the fields to index), 404 for a missing collection.
 */
export async function* listPages(rest: RestClient, collection: string, opts: ListOptions = {}): AsyncGenerator<ResourceList, void, undefined> {
  const max = 1000;
  const size = Math.min(max, opts.pageSize && opts.pageSize > 0 ? opts.pageSize : opts.filter ? 100 : max);
  let left = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
  let pageToken = opts.pageToken || undefined;
  for (;;) {
    const query = {
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.filter ? { filter: opts.filter } : {}),
      ...(opts.orderBy ? { orderBy: opts.orderBy } : {}),
      ...(pageToken ? { pageToken } : {}),
      limit: Math.min(size, left),
    };
    const page = await unwrap(rest.GET("/v1/collections/{collection}/resources", { params: { path: { collection }, query } }));
    left -= page.items.length;
    yield page;
    if (!page.nextPageToken || left <= 0) return;
    pageToken = page.nextPageToken;
  }
}

/**
 * Reads the resources of a collection that `opts` selects, in its order,
 * following every page (or up to `limit`); `revision` is the store revision
 * of the first page. To follow changes afterwards without a gap, prefer a
 * snapshot subscription (or `Mirror`), which hands over from the state to
 * live events atomically. Throws as {@link listPages}.
 *
 *   const { items } = await list(tandem.rest, "orders", { filter: "data.qty > 2", orderBy: "data.qty desc", limit: 10 });
 */
export async function list(rest: RestClient, collection: string, opts: ListOptions = {}): Promise<{ items: ResourceList["items"]; revision: number }> {
  const items: ResourceList["items"] = [];
  let revision: number | undefined;
  for await (const page of listPages(rest, collection, opts)) {
    revision ??= page.revision;
    items.push(...page.items);
  }
  return { items, revision: revision ?? 0 };
}

/** One operation of a batch (`create`, `put`, `patch` or `delete`; see `BatchOperation` in spec/openapi.yaml). */
export type BatchOperation = components["schemas"]["BatchOperation"];
/** A committed batch: its id, its last revision and each operation's status, revision and resource. */
export type BatchResult = components["schemas"]["BatchResult"];

/**
 * Applies operations atomically (`POST /v1/batch`): all of them, in order,
 * with contiguous revisions, or none. Throws a TandemError whose
 * `problem.operation` is the index of the operation that failed the batch
 * (409 create of an existing id, 412 precondition, 404, 422, 403…). With
 * `idempotencyKey`, a retry of the same operations replays the first reply.
 *
 *   await batch(tandem.rest, [
 *     { op: "create", collection: "orders", data: { item: "tea" } },
 *     { op: "patch", collection: "stock", id: "tea", data: { left: 9 }, ifMatch: 41 },
 *   ]);
 */
export function batch(rest: RestClient, operations: BatchOperation[], opts: { idempotencyKey?: string } = {}): Promise<BatchResult> {
  const header = opts.idempotencyKey ? { "Idempotency-Key": opts.idempotencyKey } : undefined;
  return unwrap(rest.POST("/v1/batch", { params: { header }, body: { operations } }));
}
