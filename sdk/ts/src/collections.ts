/**
 * Changing a collection (`PATCH /v1/collections/{collection}`, the `admin`
 * grant): a typed helper over the REST client.
 */
import type { components } from "./gen/openapi.js";
import { type RestClient, unwrap } from "./rest.js";

/** A JSON Merge Patch of a collection's `{schema, indexes, description}`; `null` removes a member. */
export interface CollectionPatch {
  schema?: Record<string, unknown> | null;
  indexes?: components["schemas"]["CollectionIndexes"] | null;
  description?: string | null;
}

/** Options of {@link updateCollection}. */
export interface UpdateCollectionOptions {
  /** Apply the change only to this revision of the collection (its ETag); a TandemError with status 412 otherwise. */
  ifMatch?: number;
  /** Do not check a new schema against the stored resources: only later writes are validated by it. */
  newWritesOnly?: boolean;
}

/**
 * Changes a collection's schema, indexes or description and returns its
 * new definition. Subscribers of the collection's topic get a
 * `collection.updated` event. Throws a TandemError carrying the problem:
 * 404, 409 (the collection kept changing: retry), 412 (`ifMatch`), 422
 * (an invalid schema or index, or stored resources the new schema refuses,
 * listed in `problem.offenders`).
 *
 *   await updateCollection(tandem.rest, "orders", { schema: { required: ["item"] } });
 */
export function updateCollection(
  rest: RestClient,
  name: string,
  patch: CollectionPatch,
  opts: UpdateCollectionOptions = {},
): Promise<components["schemas"]["Collection"]> {
  return unwrap(
    rest.PATCH("/v1/collections/{collection}", {
      params: {
        path: { collection: name },
        query: opts.newWritesOnly ? { validate: "new-writes-only" } : undefined,
        header: opts.ifMatch ? { "If-Match": `"${opts.ifMatch}"` } : undefined,
      },
      body: patch as components["schemas"]["CollectionPatch"],
      headers: { "Content-Type": "application/merge-patch+json" },
    }),
  );
}
