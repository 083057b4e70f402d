/**
 * A REGISTER client (RFC 3261 §10.2): binds our Contact to user@proxy at a registrar,
 * refreshes at half the granted time, and removes the binding (Expires: 0) on stop.
 * @module
 */
import { MissiveError } from "../../core/errors.ts";
import { header, headerAll, type SipResponse } from "./_message.ts";
import { realScheduler, type Scheduler } from "./_transaction.ts";
import { sipToken, type SipUserAgent } from "./_ua.ts";
import { DEFAULT_SIP_PORT, parseNameAddr, type SipUri } from "./_uri.ts";

/** The Expires we ask for, in seconds. */
export const DEFAULT_REGISTER_EXPIRES = 3600;

type RegState = "idle" | "registered" | "stopped";

/** One registration of `user` at `proxy`, kept fresh until stop(). */
export class SipRegistration {
  #state: RegState = "idle";
  #cseq = 0;
  #timer: unknown;
  readonly #callId = sipToken();
  readonly #tag = sipToken();
  readonly #ua: SipUserAgent;
  readonly #proxy: SipUri;
  readonly #user: string;
  readonly #expires: number;
  readonly #clock: Scheduler;
  readonly #log: (line: string) => void;

  constructor(
    ua: SipUserAgent,
    proxy: SipUri,
    options: { user: string; expires?: number; clock?: Scheduler; log?: (l: string) => void },
  ) {
    this.#ua = ua;
    this.#proxy = proxy;
    this.#user = options.user;
    this.#expires = options.expires ?? DEFAULT_REGISTER_EXPIRES;
    this.#clock = options.clock ?? realScheduler;
    this.#log = options.log ?? (() => {});
  }

  /** The address-of-record registered: `sip:user@proxyhost[:port]`. */
  get aor(): string {
    const port = this.#proxy.port === undefined ? "" : `:${this.#proxy.port}`;
    return `sip:${this.#user}@${this.#proxy.host}${port}`;
  }

  /** Registers; resolves with the granted seconds. Throws `refused`, `network`, `timeout`. */
  async start(): Promise<number> {
    if (this.#state === "stopped") throw new MissiveError("network", "sip: registration stopped");
    const granted = await this.#register(this.#expires);
    this.#state = "registered";
    this.#schedule(granted);
    return granted;
  }

  /** Stops refreshing and unregisters (best effort: errors are logged, not thrown). */
  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    const was = this.#state;
    this.#state = "stopped";
    this.#clock.clear(this.#timer);
    if (was !== "registered") return;
    try {
      await this.#register(0);
    } catch (e) {
      this.#log(`sip: unregister from ${this.aor} failed: ${(e as Error).message}`);
    }
  }

  #schedule(granted: number): void {
    // Refresh at half the granted time (at least 1 s) so a lost request can be retried.
    const ms = Math.max(1, Math.floor(granted / 2)) * 1000;
    this.#timer = this.#clock.set(async () => {
      if (this.#state !== "registered") return;
      try {
        this.#schedule(await this.#register(this.#expires));
      } catch (e) {
        this.#log(
          `sip: refreshing the registration at ${this.aor} failed: ${(e as Error).message}`,
        );
        if (this.#state === "registered") this.#schedule(30);
      }
    }, ms);
  }

  async #register(expires: number): Promise<number> {
    const p = this.#proxy;
    const target = {
      host: p.host,
      port: p.port ?? DEFAULT_SIP_PORT,
      transport: p.transport,
      pinned: p.transportPinned,
    };
    const contact = this.#ua.contact(this.#user, p.transport);
    const port = p.port === undefined ? "" : `:${p.port}`;
    const response = await this.#ua.request(target, {
      method: "REGISTER",
      uri: `sip:${p.host}${port}` + (p.transport === "tcp" ? ";transport=tcp" : ""),
      headers: [
        ["From", `<${this.aor}>;tag=${this.#tag}`],
        ["To", `<${this.aor}>`],
        ["Call-ID", this.#callId],
        ["CSeq", `${++this.#cseq} REGISTER`],
        ["Contact", `<${contact}>`],
        ["Expires", String(expires)],
        ["User-Agent", "missive"],
      ],
      body: new Uint8Array(0),
    });
    return grantedExpiry(response, contact, expires, this.aor);
  }
}

/** §10.2.4: the expiry the registrar granted our contact, or a typed error. */
function grantedExpiry(r: SipResponse, contact: string, asked: number, aor: string): number {
  if (r.status === 401 || r.status === 407) {
    throw new MissiveError(
      "refused",
      `sip: the registrar for ${aor} demands authentication (${r.status} ${r.reason}); ` +
        "missive does not do SIP digest authentication",
    );
  }
  if (r.status < 200 || r.status >= 300) {
    throw new MissiveError("network", `sip: REGISTER ${aor} answered "${r.status} ${r.reason}"`);
  }
  if (asked === 0) return 0;
  for (const value of headerAll(r.headers, "Contact")) {
    for (const one of value.split(",")) {
      try {
        const c = parseNameAddr(one);
        if (c.uri === contact && /^[0-9]{1,10}$/.test(c.params.get("expires") ?? "")) {
          return Number(c.params.get("expires"));
        }
      } catch { /* a contact we cannot read is not ours */ }
    }
  }
  const e = header(r.headers, "Expires");
  return e && /^[0-9]{1,10}$/.test(e) ? Number(e) : asked;
}
