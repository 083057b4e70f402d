/**
 * The table of paths: which implementation serves each primitive family in each runtime
 * (measured figures in docs/BENCHMARKS.md "Crypto paths"), and what `MISSIVE_CRYPTO`
 * forces. Kept apart from crypto/mod.ts so that the modules the providers use (SHA-3 for
 * X-Wing) can read it without a cycle.
 * @module
 */
import process from "node:process";
import { MissiveError } from "../core/errors.ts";

/**
 * Primitive families, each served by one path. Paths per family (DESIGN §4): hash, aes-gcm:
 * WebCrypto, node:crypto or noble; chacha: node:crypto (where the runtime has it) or noble;
 * ed25519, x25519: WebCrypto or noble; ml-kem (X-Wing's ML-KEM-768 and its X25519):
 * WebCrypto (Deno, Bun) or noble; sha3 (SHA3-256 and SHAKE256, for X-Wing): node:crypto
 * or noble (WebCrypto has no SHA-3). XChaCha20-Poly1305: noble only.
 */
export type Family = "hash" | "aes-gcm" | "chacha" | "ed25519" | "x25519" | "ml-kem" | "sha3";

/** A path: which implementation serves an operation. */
export type Path = "webcrypto" | "node" | "noble";

/** The paths of one runtime: per family, for small and for bulk inputs. */
interface RuntimeTable {
  /** Small and bulk one-shot hashes; incremental ones (CryptoProvider.hasher). */
  hash: { small: Path; bulk: Path; incremental: Path };
  "aes-gcm": { small: Path; bulk: Path };
  chacha: Path;
  ed25519: Path;
  x25519: Path;
  "ml-kem": Path;
  sha3: Path;
}

/**
 * What serves each operation, per runtime: the fastest path measured on this project's
 * machine (`deno run -A bench/crypto_paths.ts` and `bun bench/crypto_paths.ts`, figures in
 * docs/BENCHMARKS.md "Crypto paths"). A runtime not listed gets noble everywhere: slower,
 * but the same bytes and no assumption about what it implements.
 */
export const PATHS: Readonly<Record<"deno" | "bun" | "other", RuntimeTable>> = {
  // Deno 2.9: node:crypto's per-call cost is the lowest for small AEAD and hash inputs;
  // WebCrypto's AES-GCM is the fastest on bulk data (node:crypto's is ~3x slower there);
  // node:crypto has ChaCha20-Poly1305 at ~7x noble.
  deno: {
    hash: { small: "node", bulk: "webcrypto", incremental: "node" },
    "aes-gcm": { small: "node", bulk: "webcrypto" },
    chacha: "node",
    ed25519: "webcrypto",
    x25519: "webcrypto",
    "ml-kem": "webcrypto",
    sha3: "node",
  },
  // Bun 1.4: node:crypto (BoringSSL) wins AES-GCM at every size (5–10x WebCrypto on small
  // inputs, ~2x on bulk); it has no ChaCha20-Poly1305, so that stays noble.
  bun: {
    hash: { small: "node", bulk: "node", incremental: "node" },
    "aes-gcm": { small: "node", bulk: "node" },
    chacha: "noble",
    ed25519: "webcrypto",
    x25519: "webcrypto",
    "ml-kem": "webcrypto",
    sha3: "node",
  },
  other: {
    hash: { small: "noble", bulk: "noble", incremental: "noble" },
    "aes-gcm": { small: "noble", bulk: "noble" },
    chacha: "noble",
    ed25519: "noble",
    x25519: "noble",
    "ml-kem": "noble",
    sha3: "noble",
  },
};

/** This runtime's name in PATHS. */
export function runtimeName(): "deno" | "bun" | "other" {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  return "other";
}

/** What `MISSIVE_CRYPTO` forces: undefined for auto (or unset). */
export function forcedPath(): Path | undefined {
  const forced = process.env.MISSIVE_CRYPTO;
  if (forced === undefined || forced === "" || forced === "auto") return undefined;
  if (!["noble", "webcrypto", "node"].includes(forced)) {
    throw new MissiveError(
      "usage",
      `MISSIVE_CRYPTO must be auto, noble, webcrypto or node, not ${forced}`,
    );
  }
  return forced as Path;
}
