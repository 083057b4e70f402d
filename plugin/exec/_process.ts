/**
 * One running executable plugin: a child process spoken to in lockstep over its
 * stdin/stdout (frame.ts). Started once, reused for every call, killed when missive
 * exits. States: `running` → `dead` (exit, closed output, protocol violation, timeout);
 * a dead plugin is never restarted: every later call fails naming the first cause.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import type { CborMap, CborValue } from "../../core/cbor.ts";
import { ERROR_CODES, type ErrorCode, MissiveError } from "../../core/errors.ts";
import { encodeFrame, FrameReader } from "./_frame.ts";

/** Answers one host call of the plugin (docs/PLUGINS.md, "Host calls"). */
export type HostCallHandler = (call: CborMap) => Promise<CborValue>;

/** Default wait for each message from a plugin; `MISSIVE_PLUGIN_TIMEOUT` overrides it. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Bytes of the plugin's stderr kept for error messages. */
const STDERR_TAIL = 4096;

type Unrefable = { ref?: () => void; unref?: () => void };

const live = new Set<PluginProcess>();
let exitHookInstalled = false;

/** Kills every running plugin (missive is exiting, or a test is done). */
export function stopAllPlugins(): void {
  for (const p of [...live]) p.stop();
}

/** Printable, one line, bounded: for text that came from a plugin. */
export function clean(text: string, max = 300): string {
  // deno-lint-ignore no-control-regex
  const one = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

export class PluginProcess {
  readonly label: string;
  readonly #child: ChildProcess;
  readonly #reader = new FrameReader();
  readonly #timeoutMs: number;
  #waiter?: { resolve: (m: CborMap) => void; reject: (e: MissiveError) => void };
  #dead?: string;
  #stderr = "";
  #exit = "";
  #queue: Promise<unknown> = Promise.resolve();

  /** Starts `path`; `label` names it in every error ("plugin missive-plugin-x"). */
  constructor(path: string, label: string, timeoutMs: number) {
    this.label = label;
    this.#timeoutMs = timeoutMs;
    // The key-file passphrase stays with missive (docs/PLUGINS.md §9.1).
    const env = { ...process.env };
    delete env.MISSIVE_PASSPHRASE;
    this.#child = spawn(path, [], { stdio: ["pipe", "pipe", "pipe"], env });
    const { stdin, stdout, stderr } = this.#child;
    this.#child.on("error", (e) => this.#die(`cannot run: ${e.message}`));
    this.#child.on("exit", (code, signal) => {
      this.#exit = signal ? `killed by ${signal}` : `exit code ${code}`;
    });
    this.#child.on("close", () => this.#die("exited"));
    // A closed pipe usually means the plugin exited: give "close" a moment to say how.
    const soon = (why: string) => () => setTimeout(() => this.#die(why), 200).unref?.();
    stdin!.on("error", soon("closed its input"));
    stdout!.on("data", (chunk: Uint8Array) => this.#receive(chunk));
    stdout!.on("end", soon("closed its output"));
    stderr!.on("data", (chunk: Uint8Array) => {
      this.#stderr = (this.#stderr + new TextDecoder().decode(chunk)).slice(-STDERR_TAIL);
    });
    live.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", stopAllPlugins);
    }
    this.#hold(false);
  }

  /** Kills the child (idempotent). */
  stop(): void {
    live.delete(this);
    if (!this.#dead) this.#die("stopped by missive", "SIGTERM");
  }

  /**
   * Sends one request and waits for its reply, answering the plugin's host calls in
   * between with `onHostCall` (absent: host calls are a protocol violation). Requests
   * are serialised. Returns the reply's `ok` value; an `error` reply is rethrown as a
   * MissiveError with the plugin's code.
   */
  request(op: string, message: CborMap, onHostCall?: HostCallHandler): Promise<CborValue> {
    const run = () => this.#exchange(op, message, onHostCall);
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  async #exchange(op: string, message: CborMap, onHostCall?: HostCallHandler) {
    this.#check();
    const request = encodeFrame(message); // a refusal here leaves the plugin in step
    this.#hold(true);
    try {
      this.#write(request);
      for (;;) {
        const reply = await this.#next(op);
        if (!reply.has("host")) return this.#result(op, reply);
        if (!onHostCall) this.#violation(`made a host call during "${op}"`);
        this.#write(await this.#answerHostCall(reply, onHostCall!));
      }
    } finally {
      this.#hold(false);
    }
  }

  /** The framed answer to a host call: its result, or an error the plugin can act on. */
  async #answerHostCall(call: CborMap, handler: HostCallHandler): Promise<Uint8Array> {
    const error = (code: string, text: string) =>
      encodeFrame(new Map([["error", new Map([["code", code], ["message", text]])]]));
    try {
      return encodeFrame(new Map([["ok", await handler(call)]]));
    } catch (e) {
      if (e instanceof MissiveError) return error(e.code, e.message);
      return error("internal", String((e as Error)?.message ?? e));
    }
  }

  #result(op: string, reply: CborMap): CborValue {
    const keys = [...reply.keys()];
    if (keys.length === 1 && keys[0] === "ok") return reply.get("ok")!;
    const error = reply.get("error");
    if (keys.length !== 1 || !(error instanceof Map)) {
      this.#violation(`answered "${op}" with neither "ok" nor "error"`);
    }
    const e = error as CborMap;
    const code = e.get("code");
    const text = e.get("message");
    if (typeof code !== "string" || typeof text !== "string") {
      this.#violation(`answered "${op}" with an error without a text code and message`);
    }
    // A plugin may report any documented code except "internal" (a bug in missive).
    const known = Object.hasOwn(ERROR_CODES, code as string) && code !== "internal";
    const prefix = known ? this.label : `${this.label} (error code ${clean(code as string, 40)})`;
    throw new MissiveError(
      known ? code as ErrorCode : "plugin",
      `${prefix}: ${clean(text as string)}`,
    );
  }

  #write(frame: Uint8Array): void {
    this.#check();
    this.#child.stdin!.write(frame);
  }

  #next(op: string): Promise<CborMap> {
    this.#check();
    return new Promise((resolve, reject) => {
      const timer = this.#timeoutMs > 0
        ? setTimeout(() => {
          this.#waiter = undefined;
          this.#die(`no answer to "${op}" within ${this.#timeoutMs / 1000} s`);
          reject(this.#error());
        }, this.#timeoutMs)
        : undefined;
      this.#waiter = {
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }

  #receive(chunk: Uint8Array): void {
    if (this.#dead) return;
    let messages: CborMap[];
    try {
      messages = this.#reader.push(new Uint8Array(chunk));
    } catch (e) {
      this.#die((e as Error).message);
      return;
    }
    for (const m of messages) {
      // Lockstep: a message is only ever expected while a call waits for one.
      const waiter = this.#waiter;
      this.#waiter = undefined;
      if (!waiter) return this.#die("sent a message nobody asked for");
      waiter.resolve(m);
    }
  }

  #violation(why: string): never {
    this.#die(why);
    throw this.#error();
  }

  #check(): void {
    if (this.#dead) throw this.#error();
  }

  #error(): MissiveError {
    const last = this.#stderr.trim().split("\n").pop() ?? "";
    const tail = last ? ` (its stderr: ${clean(last, 200)})` : "";
    const exit = this.#exit && this.#dead === "exited" ? ` with ${this.#exit}` : "";
    return new MissiveError("plugin", `${this.label}: ${this.#dead}${exit}${tail}`);
  }

  /** Marks the plugin dead (first cause wins), kills it, fails a waiting call. */
  #die(why: string, signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): void {
    if (this.#dead) return;
    this.#dead = why;
    live.delete(this);
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill(signal);
    }
    this.#child.stdin?.destroy();
    this.#hold(false);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(this.#error());
  }

  /** Keeps the event loop alive only while a call is in flight. */
  #hold(busy: boolean): void {
    const handles = [this.#child, this.#child.stdout, this.#child.stderr, this.#child.stdin];
    for (const h of handles as (Unrefable | null)[]) {
      if (busy && h !== this.#child.stdin) h?.ref?.();
      else h?.unref?.();
    }
  }
}
