/* Generated from spec/asyncapi.yaml by scripts/gen-frames.mjs (json-schema-to-typescript). Do not edit: run `npm run gen`. */

/**
 * Any WebSocket frame (spec/asyncapi.yaml).
 */
export type Frame =
  | Subscribe
  | Unsubscribe
  | Ping
  | Publish
  | Auth
  | Rpc
  | Reply
  | Subscribed
  | Unsubscribed
  | Disconnect
  | Presence
  | Welcome
  | Event
  | Synced
  | Bookmark
  | ErrorFrame;
/**
 * Client-chosen correlation id, echoed in the reply.
 */
export type Ref = string;
/**
 * A REST path without the /v1/ prefix, e.g. `collections/orders/resources`.
 */
export type Topic = string;
/**
 * A label selector (`env=prod,tier!=db`), as on the REST list.
 */
export type Labels = string;
/**
 * A filter expression over `data.<path>`, `labels.<key>`, `id`,
 * `revision`, `createdAt`, `updatedAt` (docs/queries.md), the same
 * language as the REST list's `filter`, e.g.
 * `data.status == "paid" && data.qty > 2`. Resource topics only. A
 * filtered subscription gets `resource.created` when a resource starts
 * matching and `resource.deleted` when it stops; events, `synced`,
 * bookmarks and errors carry the subscription's filter in canonical
 * form (as the subscribe reply shows it), so a client tells its
 * subscriptions of one topic apart by `labels` and `filter`.
 *
 */
export type Filter = string;
/**
 * An opaque stream position, exactly as the server sent it: a topic's
 * cursor (events, `synced`, bookmarks, replies, the long-poll
 * `cursor`, the `id:` of a single-topic SSE stream), or the composite
 * `id:` of an SSE stream over several topics, which every parameter
 * taking a cursor for one of those topics also accepts. The server
 * never makes a cursor longer than maxLength.
 *
 */
export type Cursor = string;
/**
 * An opaque stream position, exactly as the server sent it: a topic's
 * cursor (events, `synced`, bookmarks, replies, the long-poll
 * `cursor`, the `id:` of a single-topic SSE stream), or the composite
 * `id:` of an SSE stream over several topics, which every parameter
 * taking a cursor for one of those topics also accepts. The server
 * never makes a cursor longer than maxLength.
 *
 */
export type Cursor1 = string;
/**
 * An opaque stream position, exactly as the server sent it: a topic's
 * cursor (events, `synced`, bookmarks, replies, the long-poll
 * `cursor`, the `id:` of a single-topic SSE stream), or the composite
 * `id:` of an SSE stream over several topics, which every parameter
 * taking a cursor for one of those topics also accepts. The server
 * never makes a cursor longer than maxLength.
 *
 */
export type Cursor2 = string;

export interface Subscribe {
  type: "subscribe";
  ref: Ref;
  topic: Topic;
  labels?: Labels;
  filter?: Filter;
  since?: Cursor;
  /**
   * Send the current state first (not with `since`); for channel messages, the retained history.
   */
  snapshot?: boolean;
  /**
   * Presence metadata of this connection, for channel message topics with presence enabled.
   */
  meta?: {
    [k: string]: unknown | undefined;
  };
}
export interface Unsubscribe {
  type: "unsubscribe";
  ref: Ref;
  topic: Topic;
  labels?: Labels;
  filter?: Filter;
}
export interface Ping {
  type: "ping";
  ref: Ref;
}
export interface Publish {
  type: "publish";
  ref: Ref;
  topic: Topic;
  /**
   * Any JSON value.
   */
  data: unknown;
}
export interface Auth {
  type: "auth";
  ref: Ref;
  /**
   * A JWT or an API key.
   */
  token: string;
}
export interface Rpc {
  type: "rpc";
  ref: Ref;
  /**
   * The method; its namespace is the part before the first `:`.
   */
  method: string;
  /**
   * Any JSON value (within the namespace's `max-message-bytes`).
   */
  data?: unknown;
}
export interface Reply {
  type: "reply";
  ref: Ref;
  ok: boolean;
  /**
   * On success; for subscribe a SubscribeResult, for publish the ChannelMessage, for auth an AuthResult, for rpc an RpcResult, otherwise an empty object.
   */
  body?: SubscribeResult | RpcResult | ChannelMessage | AuthResult | {};
  problem?: Problem;
}
export interface SubscribeResult {
  topic: Topic;
  labels?: Labels;
  filter?: Filter;
  cursor?: Cursor1;
  /**
   * `since`: replay started right after the given cursor; `snapshot`: the state at `cursor` follows; `live`: only events after `cursor`.
   */
  start: "live" | "since" | "snapshot";
}
export interface RpcResult {
  /**
   * The application's result (any JSON value).
   */
  data: unknown;
}
/**
 * The same object as the REST API's ChannelMessage.
 */
export interface ChannelMessage {
  channel: string;
  offset: number;
  cursor: Cursor;
  /**
   * Any JSON value.
   */
  data: unknown;
  publisher?: string;
  time: string;
}
export interface AuthResult {
  /**
   * The token's subject (the API key's name).
   */
  subject: string;
  /**
   * When the token expires; refresh before then or the connection closes with 4001. Absent for API keys.
   */
  expiresAt?: string;
}
/**
 * RFC 9457 problem details (the same as the REST API's).
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  operation?: number;
  errors?: {
    in: "body" | "query" | "path" | "header";
    name?: string;
    pointer?: string;
    detail: string;
    [k: string]: unknown | undefined;
  }[];
  /**
   * With a 422 from `PATCH /v1/collections/{collection}` (REST only), the stored resources the new schema refuses.
   */
  offenders?: {
    id: string;
    pointer: string;
    detail: string;
    [k: string]: unknown | undefined;
  }[];
  [k: string]: unknown | undefined;
}
export interface Subscribed {
  type: "subscribed";
  topic: Topic;
  labels?: Labels;
  filter?: Filter;
  cursor?: Cursor2;
  start: "live";
}
export interface Unsubscribed {
  type: "unsubscribed";
  topic: Topic;
  labels?: Labels;
  filter?: Filter;
}
export interface Disconnect {
  type: "disconnect";
  code: 4003;
  reason?: string;
  /**
   * False asks the client not to reconnect (the SDKs stop).
   */
  reconnect: boolean;
}
export interface Presence {
  type: "presence";
  topic: Topic;
  /**
   * `state` lists every member; `join`/`leave` list the members that
   * came or went (a member leaves when its last connection closes or
   * stops answering pings). The server batches a channel's diffs for
   * a short window (`tandem serve --presence-batch-window`, default
   * 50 ms; 0 sends one frame per diff at once) and then sends the net
   * change: first `leave` with every member gone at the window's end,
   * then `join` with every member that came (its connection of the
   * latest join). A member is in at most one of the two, so applying
   * `join` as add-or-replace and `leave` as remove-if-present ends with
   * the channel's presence, in either order. A `leave` may name a
   * member this client never saw join (it came and went within one
   * window). A large window is split into several frames of each
   * action (at most 500 members each), leaves still first.
   *
   */
  action: "state" | "join" | "leave";
  /**
   * Ordered by `id`; one or more for `join` and `leave`.
   */
  members: PresenceMember[];
}
export interface PresenceMember {
  id: string;
  connections: {
    connectionId: string;
    meta?: {
      [k: string]: unknown | undefined;
    };
  }[];
}
export interface Welcome {
  type: "welcome";
  connectionId: string;
  protocol: "tandem.v1";
  /**
   * Bookmarks and pings come at least this often.
   */
  heartbeatSeconds: number;
  /**
   * Larger client messages close the connection with 1009.
   */
  maxFrameBytes: number;
}
/**
 * A resource change (with `resource`), a channel message (with
 * `message`) or a change of a collection's definition (event
 * `collection.updated`, with `collection`: its schema, description
 * or indexes changed through `PATCH /v1/collections/{collection}`).
 * A `collection.updated` event goes to every subscription of the
 * collection's topic `collections/{c}/resources`, whatever its label
 * selector, in cursor order with the resource changes (live, on
 * resume and in long-poll answers), and never to single-resource
 * topics. Resources written after it are validated by the new
 * schema; those stored before may not satisfy it when the change
 * was made with `validate=new-writes-only`.
 *
 */
export interface Event {
  type: "event";
  topic: Topic;
  labels?: Labels;
  filter?: Filter;
  /**
   * `resource.deleted` carries the last state; `resource.snapshot` is part of an initial snapshot; `message` is a channel message; `collection.updated` carries the collection's new definition.
   */
  event:
    | "resource.created"
    | "resource.updated"
    | "resource.deleted"
    | "resource.snapshot"
    | "message"
    | "collection.updated";
  cursor: Cursor;
  resource?: Resource;
  collection?: Collection;
  message?: ChannelMessage;
  batch?: EventBatch;
}
/**
 * The same object as the REST API's Resource.
 */
export interface Resource {
  id: string;
  collection: string;
  data: {
    [k: string]: unknown | undefined;
  };
  labels: {
    [k: string]: string | undefined;
  };
  revision: number;
  createdAt: string;
  updatedAt: string;
}
/**
 * The same object as the REST API's Collection.
 */
export interface Collection {
  name: string;
  /**
   * The JSON Schema every resource's data must satisfy (absent when none).
   */
  schema?: {
    [k: string]: unknown | undefined;
  };
  description?: string;
  indexes?: {
    fields: string[];
  }[];
  revision: number;
  createdAt: string;
  updatedAt: string;
}
/**
 * On the events of changes written by an atomic batch (`POST /v1/batch`),
 * whose changes are contiguous in every stream: the batch's `id` and
 * `lastRevision`, and `end: true` on the last event of the batch that
 * this subscription receives (a subscription with a selector may receive
 * only some of the batch's changes, so the change at `lastRevision` may
 * never reach it). Apply the events of a batch together on `end` to
 * never show half a batch.
 *
 */
export interface EventBatch {
  id: string;
  lastRevision: number;
  end: boolean;
}
export interface Synced {
  type: "synced";
  topic: Topic;
  labels?: Labels;
  filter?: Filter;
  cursor: Cursor;
}
export interface Bookmark {
  type: "bookmark";
  topic: Topic;
  labels?: Labels;
  filter?: Filter;
  cursor: Cursor;
}
export interface ErrorFrame {
  type: "error";
  topic?: Topic;
  labels?: Labels;
  filter?: Filter;
  problem: Problem;
  /**
   * On a slow-consumer close, the last delivered cursor of each subscription.
   */
  cursors?: {
    topic: Topic;
    labels?: Labels;
    filter?: Filter;
    cursor: Cursor;
  }[];
}

/** Frames the client sends. */
export type ClientFrame = Auth | Ping | Publish | Rpc | Subscribe | Unsubscribe;

/** Frames the server sends. */
export type ServerFrame = Bookmark | Disconnect | ErrorFrame | Event | Presence | Reply | Subscribed | Synced | Unsubscribed | Welcome;
