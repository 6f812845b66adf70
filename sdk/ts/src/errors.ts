import type { Problem } from "./gen/frames.js";

export const PROBLEM_BASE = "https://tandem.dev/problems/";

/** An RFC 9457 problem returned by the server (REST, reply or error frame). */
export class TandemError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(`${problem.title} (${problem.status})${problem.detail ? ": " + problem.detail : ""}`);
    this.name = "TandemError";
    this.problem = problem;
  }
  /** The last segment of the problem type, e.g. "not-found". */
  get slug(): string {
    return this.problem.type.startsWith(PROBLEM_BASE) ? this.problem.type.slice(PROBLEM_BASE.length) : this.problem.type;
  }
  get status(): number {
    return this.problem.status;
  }
}

/**
 * The server can no longer resume from `cursor` (its history is gone or
 * belongs to another epoch). Nothing was skipped silently: reload the state
 * with a snapshot (`Connection.resync`, or `autoResync`) and go on from there.
 */
export class ResyncRequiredError extends TandemError {
  readonly topic: string;
  readonly labels: string | undefined;
  readonly cursor: string | undefined;
  constructor(problem: Problem, topic: string, labels?: string, cursor?: string) {
    super(problem);
    this.name = "ResyncRequiredError";
    this.topic = topic;
    this.labels = labels;
    this.cursor = cursor;
  }
}

/** The Connection or Subscription was closed by its owner. */
export class ClosedError extends Error {
  constructor() {
    super("closed");
    this.name = "ClosedError";
  }
}

/**
 * The connection broke before the server replied: the outcome is unknown
 * (an RPC may or may not have run; the SDK never sends it again). A
 * server-side subscription also ends with it when its connection drops.
 */
export class ConnectionLostError extends Error {
  constructor(reason: string, message = `connection lost before the reply (${reason})`) {
    super(message);
    this.name = "ConnectionLostError";
  }
}

/** The connection was closed by the server with a code that is not retried (e.g. 1008, 4010), or see DisconnectedError. */
export class CloseError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string) {
    super(`connection closed by the server: ${code}${reason ? " " + reason : ""}`);
    this.name = "CloseError";
    this.code = code;
    this.reason = reason;
  }
}

/**
 * The server disconnected this connection (a `disconnect` frame, then close
 * code 4003), e.g. after `DELETE /v1/connections/{id}`. With `reconnect`
 * false the Connection has ended for good (`closed` resolves with it, every
 * subscription ends with it); with `reconnect` true it is only the reason
 * of a `disconnected` status, and the Connection reconnects as usual.
 */
export class DisconnectedError extends CloseError {
  /** Whether the server allowed the client to reconnect. */
  readonly reconnect: boolean;
  constructor(reason: string, reconnect: boolean) {
    super(4003, reason);
    this.message = `disconnected by the server${reason ? ": " + reason : ""}${reconnect ? " (reconnecting)" : ""}`;
    this.name = "DisconnectedError";
    this.reconnect = reconnect;
  }
}

/** The server ended a subscription (an `unsubscribed` frame): no further event of it follows, and it is not made again. */
export class UnsubscribedError extends Error {
  readonly topic: string;
  readonly labels: string | undefined;
  constructor(topic: string, labels?: string) {
    super(`unsubscribed by the server: ${topic}${labels ? ` (labels ${labels})` : ""}`);
    this.name = "UnsubscribedError";
    this.topic = topic;
    this.labels = labels;
  }
}

/** No reply came within the request's `timeoutMs`; the outcome is unknown, and a late reply is ignored. */
export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no reply within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

export function problemError(p: Problem | undefined, topic = "", labels?: string, cursor?: string): TandemError {
  const problem = p ?? { type: "about:blank", title: "Request failed", status: 500 };
  if (problem.type === PROBLEM_BASE + "resync-required") return new ResyncRequiredError(problem, topic, labels, cursor);
  return new TandemError(problem);
}
