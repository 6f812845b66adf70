// Client-side state folded from a subscription's events: a gap-free
// mirror of a collection and the members of a presence topic.
import type { Collection, PresenceMember, Resource } from "./gen/frames.js";
import { type Connection, type RealtimeEvent, type Subscription, collectionTopic } from "./realtime.js";

/**
 * A local copy of a collection (or of the resources matching a selector and
 * a filter) that follows every change without a gap, across reconnects and server
 * restarts; on resync-required it reloads a snapshot and swaps it in when
 * complete. The events of an atomic batch (`POST /v1/batch`) are held back
 * until the batch's last event for this mirror (`batch.end`) and then
 * applied together, so a reader never sees half a batch; `onEvent` sees
 * only that last event.
 */
export class Mirror {
  readonly items = new Map<string, Resource>();
  revision = 0;
  cursor: string | undefined;
  /**
   * The collection's definition as of the newest `collection.updated` event
   * (undefined before any). Such an event leaves the mirrored resources as
   * they are; resources stored before it may not satisfy a new schema.
   */
  collection: Collection | undefined;
  /** Resolves when the initial snapshot has been applied. */
  readonly synced: Promise<void>;
  subscription!: Subscription;
  private next: Map<string, Resource> | undefined = new Map();
  /** The events of a batch whose last event has not come yet. */
  private held: RealtimeEvent[] = [];
  private resolveSynced!: () => void;
  private readonly onEvent?: (m: Mirror, ev: RealtimeEvent) => void;

  private constructor(onEvent?: (m: Mirror, ev: RealtimeEvent) => void) {
    this.onEvent = onEvent;
    this.synced = new Promise((r) => (this.resolveSynced = r));
  }

  /**
   * Starts mirroring a collection; resolves once the server accepted the
   * subscription (`synced` resolves after the initial snapshot). With
   * `filter` (as in `subscribe`, e.g. `data.qty > 2`) the mirror holds only
   * matching resources: one enters when a change makes it match and leaves
   * when a change makes it stop matching. Rejects as `subscribe` (a
   * TandemError naming the position of a bad filter).
   */
  static async open(
    conn: Connection,
    collection: string,
    options: { labels?: string; filter?: string; onEvent?: (m: Mirror, ev: RealtimeEvent) => void } = {},
  ): Promise<Mirror> {
    const m = new Mirror(options.onEvent);
    m.subscription = await conn.subscribe(collectionTopic(collection), {
      labels: options.labels,
      filter: options.filter,
      snapshot: true,
      autoResync: true,
      onEvent: (ev) => m.apply(ev),
    });
    return m;
  }

  /** The mirror's filter in canonical form (undefined for none). */
  get filter(): string | undefined {
    return this.subscription.filter;
  }

  /** How many events of an atomic batch are held back until its last one arrives. */
  get pending(): number {
    return this.held.length;
  }

  private apply(ev: RealtimeEvent): void {
    if (ev.type === "event" && ev.batch && ev.event !== "resource.snapshot") {
      // A batch arrives whole; another one beginning is never expected.
      if (this.held.length > 0 && this.held[0]!.type === "event" && this.held[0]!.batch?.id !== ev.batch.id) this.flush();
      this.held.push(ev);
      if (!ev.batch.end && this.held.length < MAX_HELD) return;
      this.flush();
    } else {
      if (ev.type === "reset") this.held = []; // a fresh snapshot follows
      this.flush(); // an unfinished batch: never expected
      this.applyOne(ev);
    }
    this.onEvent?.(this, ev);
  }

  private flush(): void {
    const held = this.held;
    this.held = [];
    for (const ev of held) this.applyOne(ev);
  }

  private applyOne(ev: RealtimeEvent): void {
    if (ev.type === "reset") {
      this.next = new Map();
    } else if (ev.type === "synced") {
      if (this.next) {
        this.items.clear();
        for (const [k, v] of this.next) this.items.set(k, v);
        this.next = undefined;
      }
      this.cursor = ev.cursor;
      this.resolveSynced();
    } else if (ev.type === "event" && ev.resource) {
      const r = ev.resource;
      if (ev.event === "resource.snapshot") (this.next ??= new Map()).set(r.id, r);
      else if (ev.event === "resource.deleted") this.items.delete(r.id);
      else this.items.set(r.id, r);
      this.revision = Math.max(this.revision, r.revision);
      if (ev.event !== "resource.snapshot") this.cursor = ev.cursor;
    } else if (ev.type === "event" && ev.collection) {
      this.collection = ev.collection;
      this.cursor = ev.cursor;
    }
  }

  close(): Promise<void> {
    return this.subscription.close();
  }
}

/** The most events of one batch a mirror holds back (the server takes at most 1000 operations per batch). */
const MAX_HELD = 1000;

/** Folds presence events into the current members: state replaces, join adds, leave removes. */
export class PresenceState {
  private readonly m = new Map<string, PresenceMember>();

  /** Applies one event; reports whether the member list changed. */
  apply(ev: RealtimeEvent): boolean {
    if (ev.type !== "presence") return false;
    if (ev.action === "state") {
      this.m.clear();
      for (const x of ev.members) this.m.set(x.id, x);
      return true;
    }
    let changed = false;
    for (const x of ev.members) {
      if (ev.action === "join") {
        this.m.set(x.id, x);
        changed = true;
      } else if (this.m.delete(x.id)) changed = true;
    }
    return changed;
  }

  members(): PresenceMember[] {
    return [...this.m.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
