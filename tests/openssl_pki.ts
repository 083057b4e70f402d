/**
 * OpenSSL as the S/MIME tests' peer (smime_test.ts, smime_mail_test.ts, smime_ec_test.ts):
 * running it, installing it with apt-get when missing, and the RSA test PKI they share.
 * @module
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";

/** Runs openssl; returns stdout, or throws with its stderr. */
export function openssl(args: string[], input?: Uint8Array | string): Uint8Array {
  const r = spawnSync("openssl", args, { input, maxBuffer: 1 << 24 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

/** OpenSSL's version line, installing it with apt-get first when it is missing. */
export function ensureOpenssl(): string {
  const probe = () => spawnSync("openssl", ["version"], { encoding: "utf8" });
  let r = probe();
  if (r.status !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "ignore" });
    spawnSync("apt-get", ["install", "-y", "openssl"], { stdio: "ignore" });
    r = probe();
  }
  if (r.status !== 0) throw new Error("openssl is missing and could not be installed");
  return r.stdout.trim();
}

/**
 * A CA, and alice and bob certified by it (RSA 2048, e-mail subjectAltName); eve is
 * self-signed. Files: ca.pem/.key, alice.pem/.key, bob.pem/.key, eve.pem/.key, at `at(name)`.
 */
export function makeRsaPki(at: (name: string) => string): void {
  openssl([
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("ca.key")],
    ...["-out", at("ca.pem"), "-subj", "/CN=Test CA", "-days", "30"],
    ...["-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
  for (const who of ["alice", "bob"]) {
    openssl([
      ...["req", "-newkey", "rsa:2048", "-nodes", "-keyout", at(`${who}.key`)],
      ...["-out", at(`${who}.csr`), "-subj", `/CN=${who}`],
    ]);
    writeFileSync(
      at(`${who}.ext`),
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
        `subjectAltName=email:${who}@example.org\n`,
    );
    openssl([
      ...["x509", "-req", "-in", at(`${who}.csr`), "-CA", at("ca.pem"), "-CAkey", at("ca.key")],
      ...["-CAcreateserial", "-out", at(`${who}.pem`), "-days", "30"],
      ...["-extfile", at(`${who}.ext`)],
    ]);
  }
  openssl([
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("eve.key")],
    ...["-out", at("eve.pem"), "-subj", "/CN=eve", "-days", "30"],
  ]);
}
