// typage (npm age-encryption), the TypeScript age by age's author, as an interop peer for
// tests/age_interop_test.ts. Run with Node (or Bun):
//   node tests/age_typage.mjs keygen [pq]           → identity line, then recipient line
//   node tests/age_typage.mjs encrypt [--armor] [--passphrase P] [RECIPIENT...] < plain > file
//   node tests/age_typage.mjs decrypt [--passphrase P] [IDENTITY...] < file > plain
// Identities and recipients are their text (AGE-SECRET-KEY-…, age1…, age1pq1…).
import { readFileSync, writeSync } from "node:fs";
import {
  armor,
  Decrypter,
  Encrypter,
  generateHybridIdentity,
  generateX25519Identity,
  identityToRecipient,
} from "age-encryption";

const [command, ...args] = process.argv.slice(2);
const write = (bytes) => {
  for (let at = 0; at < bytes.length;) at += writeSync(1, bytes, at);
};
const flag = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const [value] = args.splice(i, name === "--armor" ? 1 : 2).slice(1);
  return value ?? true;
};

if (command === "keygen") {
  const identity = args[0] === "pq"
    ? await generateHybridIdentity()
    : await generateX25519Identity();
  write(new TextEncoder().encode(`${identity}\n${await identityToRecipient(identity)}\n`));
} else if (command === "encrypt") {
  const armored = flag("--armor");
  const passphrase = flag("--passphrase");
  const e = new Encrypter();
  if (passphrase !== undefined) {
    e.setScryptWorkFactor(10);
    e.setPassphrase(passphrase);
  }
  for (const r of args) e.addRecipient(r);
  const file = await e.encrypt(new Uint8Array(readFileSync(0)));
  write(armored ? new TextEncoder().encode(armor.encode(file)) : file);
} else if (command === "decrypt") {
  const passphrase = flag("--passphrase");
  const d = new Decrypter();
  if (passphrase !== undefined) d.addPassphrase(passphrase);
  for (const i of args) d.addIdentity(i);
  let input = new Uint8Array(readFileSync(0));
  const text = new TextDecoder().decode(input.subarray(0, 64)).trimStart();
  if (text.startsWith("-----BEGIN AGE ENCRYPTED FILE-----")) {
    input = armor.decode(new TextDecoder().decode(input));
  }
  write(await d.decrypt(input));
} else {
  process.stderr.write("usage: age_typage.mjs keygen|encrypt|decrypt ...\n");
  process.exit(2);
}
