/**
 * The NATS side of the JetStream store (docs/SCALE.md): the connection, the streams and
 * key-value buckets it needs (created if missing, their limits brought to this node's
 * flags), and how a NATS failure becomes a relay status.
 * @module
 */
import { readFileSync } from "node:fs";
import {
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import {
  DiscardPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StoredMsg,
  type StreamConfig,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { utf8 } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import { StoreRefusal } from "../storage.ts";

/** Names in NATS (one account may hold one missive deployment). */
export const NAMES = {
  queue: "MISSIVE_QUEUE",
  queueSubject: "missive.q",
  notify: "missive.notify",
  oneTime: "MISSIVE_PREKEYS",
  oneTimeSubject: "missive.otk",
  directory: "missive-directory",
  online: "missive-online",
  signedPrekeys: "missive-prekeys",
} as const;

/** How a relay node reaches NATS (`missive serve --store`, docs/SCALE.md). */
export interface NatsOptions {
  /** nats://HOST:PORT or tls://HOST:PORT, one per cluster node (any subset will do). */
  servers: string[];
  /** User and password (from $MISSIVE_NATS_USER / $MISSIVE_NATS_PASSWORD). */
  user?: string;
  pass?: string;
  /** A token (from $MISSIVE_NATS_TOKEN). */
  token?: string;
  /** A .creds file (JWT + NKey seed, the NATS operator mode). */
  credsFile?: string;
  /** A file holding an NKey seed (SU…). */
  nkeyFile?: string;
  /** TLS: the CA that signed the servers' certificates; a client certificate and key. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Connection name shown by the servers (the relay node's name). */
  name?: string;
  /** Time for one NATS request (default 2000 ms). */
  timeoutMs?: number;
  /**
   * How long a request that met no leader (a cluster electing one after a node died) is
   * tried again before the relay answers `unavailable` (default 8000 ms).
   */
  retryMs?: number;
}

/** Limits the streams carry, cluster-wide (SPEC §23.12). */
export interface StreamLimits {
  /** Messages one sender may queue for one recipient: the per-subject limit. */
  quota: number;
  /** Envelope bytes in the whole queue (the stream's max_bytes, discard new). */
  storeBytes: number;
  /** Largest envelope. */
  maxMessage: number;
  /** Replicas of every stream and bucket (1, 3 or 5; at most the cluster's size). */
  replicas: number;
  /** How long presence claims live without a refresh. */
  presenceTtlMs: number;
  /** Publishes with the same message ID within this window are stored once. */
  duplicateWindowMs: number;
}

/** Everything the store's parts use. */
export interface Nats {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  directory: KV;
  online: KV;
  signedPrekeys: KV;
  timeoutMs: number;
  retryMs: number;
}

const ns = (ms: number) => ms * 1_000_000;

/** Connects, waits for JetStream (a fresh cluster elects its leaders), sets up the data. */
export async function openNats(o: NatsOptions, limits: StreamLimits): Promise<Nats> {
  const timeoutMs = o.timeoutMs ?? 2000;
  const options: NodeConnectionOptions = {
    servers: o.servers,
    name: o.name,
    timeout: timeoutMs,
    // A relay node keeps trying: while NATS is away it answers `unavailable`.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: false,
  };
  if (o.user !== undefined) Object.assign(options, { user: o.user, pass: o.pass });
  if (o.token !== undefined) options.token = o.token;
  if (o.credsFile) options.authenticator = credsAuthenticator(readFileSync(o.credsFile));
  if (o.nkeyFile) {
    options.authenticator = nkeyAuthenticator(
      utf8(readFileSync(o.nkeyFile, "utf8").trim()),
    );
  }
  if (o.tlsCa || o.tlsCert || o.servers.some((s) => s.startsWith("tls://"))) {
    options.tls = {
      ...(o.tlsCa ? { caFile: o.tlsCa } : {}),
      ...(o.tlsCert ? { certFile: o.tlsCert, keyFile: o.tlsKey } : {}),
    };
  }
  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (e) {
    throw new MissiveError(
      "network",
      `store ${o.servers.join(",")}: cannot connect to NATS (${(e as Error).message})`,
    );
  }
  try {
    const jsm = await waitForJetStream(nc, timeoutMs);
    await ensureStreams(jsm, limits);
    const kvm = new Kvm(nc);
    const bucket = (name: string, ttl = 0) =>
      kvm.create(name, { history: 1, replicas: limits.replicas, ttl, storage: StorageType.File });
    return {
      nc,
      js: jetstream(nc, { timeout: timeoutMs }),
      jsm,
      directory: await bucket(NAMES.directory),
      online: await bucket(NAMES.online, limits.presenceTtlMs),
      signedPrekeys: await bucket(NAMES.signedPrekeys),
      timeoutMs,
      retryMs: o.retryMs ?? 8000,
    };
  } catch (e) {
    await nc.close().catch(() => {});
    if (e instanceof MissiveError) throw e;
    throw new MissiveError("network", `store: JetStream set-up failed (${(e as Error).message})`);
  }
}

/** JetStream answers once its meta leader is elected: retried for up to 30 s. */
async function waitForJetStream(nc: NatsConnection, timeoutMs: number): Promise<JetStreamManager> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await jetstreamManager(nc, { timeout: timeoutMs });
    } catch (e) {
      if (Date.now() > deadline) {
        throw new MissiveError(
          "network",
          `store: JetStream is not available (${(e as Error).message}); is it enabled and ` +
            "does the cluster have a quorum?",
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * The queue stream and the one-time prekey stream. The limits are cluster-wide, so the
 * node started last brings them to its flags (an operator changing a quota restarts
 * the nodes with the new value).
 */
async function ensureStreams(jsm: JetStreamManager, l: StreamLimits): Promise<void> {
  const queue: Partial<StreamConfig> & { name: string } = {
    name: NAMES.queue,
    subjects: [`${NAMES.queueSubject}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: l.replicas,
    // The per-(recipient, sender) quota is the per-subject limit; over it, or over the
    // store's size, a publish is refused rather than an older message dropped.
    max_msgs_per_subject: l.quota,
    discard: DiscardPolicy.New,
    discard_new_per_subject: true,
    max_bytes: l.storeBytes,
    max_msg_size: l.maxMessage + 1024,
    duplicate_window: ns(l.duplicateWindowMs),
  };
  const oneTime: Partial<StreamConfig> & { name: string } = {
    name: NAMES.oneTime,
    subjects: [`${NAMES.oneTimeSubject}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: l.replicas,
    // One message per (owner, prekey ID): publishing an ID held is refused.
    max_msgs_per_subject: 1,
    discard: DiscardPolicy.New,
    discard_new_per_subject: true,
    max_msg_size: 1024,
  };
  for (const config of [queue, oneTime]) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const info = await jsm.streams.info(config.name!).catch(() => undefined);
        if (!info) await jsm.streams.add(config);
        else if (differs(info.config as unknown as Record<string, unknown>, config)) {
          await jsm.streams.update(config.name!, config);
        }
        break;
      } catch (e) {
        // A cluster still electing its leaders answers "insufficient resources" a while.
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}

function differs(have: Record<string, unknown>, want: Partial<StreamConfig>): boolean {
  return Object.entries(want).some(([k, v]) =>
    k !== "name" && JSON.stringify(have[k]) !== JSON.stringify(v)
  );
}

/** getMessage with `next_by_subj` (server 2.9+: the next message on a filter). */
export function nextMessage(
  n: Nats,
  stream: string,
  fromSeq: number,
  filter: string,
): Promise<StoredMsg | null> {
  return n.jsm.streams.getMessage(
    stream,
    { seq: fromSeq, next_by_subj: filter } as unknown as { seq: number },
  );
}

/**
 * Whether `e` is worth trying again: no answer in time, no responders, not connected, or
 * JetStream saying it is temporarily unavailable — what a cluster electing a new leader
 * answers for a few seconds after a node died.
 */
export function isTransient(e: unknown): boolean {
  const text = `${(e as Error)?.name ?? ""} ${String((e as Error)?.message ?? e)}`;
  return apiCode(e) === 10008 ||
    /timeout|no responders|503|closed|disconnect|reconnect|temporarily unavailable/i.test(text);
}

/**
 * Runs `f`, trying again on transient failures (`isTransient`) until `n.retryMs` has
 * passed. Only for idempotent requests: reads, deletes by sequence, and publishes that
 * carry a message ID (JetStream stores a retried one once).
 */
export async function retrying<T>(n: Nats, f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + n.retryMs;
  for (let delay = 100;; delay = Math.min(delay * 2, 1000)) {
    try {
      return await f();
    } catch (e) {
      if (!isTransient(e) || Date.now() + delay > deadline) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** The JetStream API error code of `e`, if it is one. */
export function apiCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown })?.code;
  const api = (e as { api_error?: { err_code?: number } })?.api_error?.err_code;
  return typeof api === "number" ? api : typeof code === "number" ? code : undefined;
}

/** JSStreamMsgDeleteFailed / no message found: the sequence is not there (any more). */
export function isNotFound(e: unknown): boolean {
  const code = apiCode(e);
  return code === 10043 || code === 10037 || /not found|no message/i.test(String(e));
}

/**
 * A failed store request as a relay answer: a refusal the store decided, or
 * `unavailable` with what NATS said (no quorum: the write was not confirmed).
 */
export function storeError(what: string, e: unknown): MissiveError {
  if (e instanceof MissiveError) return e;
  const text = String((e as Error)?.message ?? e);
  const name = (e as Error)?.name ?? "";
  if (/timeout/i.test(name + text) || /no responders|503/i.test(name + text)) {
    return new StoreRefusal(
      "unavailable",
      `${what}: JetStream did not confirm in time (${text}): the cluster has no quorum or ` +
        "cannot be reached; nothing was stored, try again later",
    );
  }
  if (/closed|disconnect|reconnect/i.test(name + text)) {
    return new StoreRefusal("unavailable", `${what}: not connected to NATS (${text})`);
  }
  return new StoreRefusal("unavailable", `${what}: JetStream failed (${text})`);
}
