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
