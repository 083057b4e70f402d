#!/usr/bin/env bash
# Makes tests/vectors/smime.json: CMS messages written by OpenSSL for fixed test
# identities, with the outcomes missive must give (SPEC §18). CMS sealing is randomized
# (content key, IV, OAEP seed, ephemeral ECDH key), so unlike generate.ts this corpus is
# not reproducible byte for byte: it was made once and is checked for outcomes only
# (tests/smime_vectors_test.ts). Certificates are valid for 100 years from creation.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)/smime.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
days=36500
ca() { # name subject
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days $days \
    -subj "/CN=$2" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign 2>/dev/null
}
leaf() { # name address keyspec issuer
  if [ "$3" = ec ]; then openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
  else openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key" 2>/dev/null; fi
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=email:%s\nkeyUsage=digitalSignature,keyEncipherment,keyAgreement\nextendedKeyUsage=emailProtection\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days $days \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
ca ca "missive vector CA"
ca otherca "another CA"
leaf alice alice@example.org rsa ca
leaf bob bob@example.org rsa ca
leaf carol carol@example.org ec ca
leaf dave dave@example.org ec ca
printf 'hello from the smime vectors\n' > msg.txt
sign() { openssl cms -sign -nodetach -binary -in msg.txt -outform DER -signer "$1.pem" -inkey "$1.key"; }
oaep=(-keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256)
sign alice | openssl cms -encrypt -binary -aes256 -outform DER -recip bob.pem "${oaep[@]}" > rsa-oaep-cbc.der
sign alice | openssl cms -encrypt -binary -aes-256-gcm -outform DER -recip bob.pem "${oaep[@]}" > rsa-oaep-gcm.der
sign dave | openssl cms -encrypt -binary -aes256 -outform DER -recip carol.pem > ec-kari-cbc.der
sign dave | openssl cms -encrypt -binary -aes-256-gcm -outform DER -recip carol.pem -keyopt ecdh_kdf_md:sha256 > ec-kari-gcm.der
python3 - "$out" <<'PY'
import base64, hashlib, json, sys
def r(p): return open(p, 'rb').read()
pem = lambda p: r(p).decode()
ids = {n: {"cert": pem(f"{n}.pem"), "key": pem(f"{n}.key")} for n in ["alice", "bob", "carol", "dave"]}
msg = r("msg.txt")
def m(p): return base64.b64encode(r(p)).decode()
doc = {
  "description": "smime (SPEC §18): CMS messages written by OpenSSL (" +
    __import__('subprocess').run(["openssl", "version"], capture_output=True, text=True).stdout.strip() +
    ") for fixed test identities, opened as bare DER. Each case opens `message` (after `flip`: XOR 0x01 at that byte offset, negative from the end) with the recipient's cert and key and the trusted CA, and expects success (plaintextSha256) or an error code. Made by make_smime.sh; not byte-reproducible (CMS sealing is randomized).",
  "trust": {"ca": pem("ca.pem"), "otherca": pem("otherca.pem")},
  "identities": ids,
  "plaintextSha256": hashlib.sha256(msg).hexdigest(),
  "messages": {n: m(f"{n}.der") for n in ["rsa-oaep-cbc", "rsa-oaep-gcm", "ec-kari-cbc", "ec-kari-gcm"]},
  "cases": [],
}
def case(name, message, recipient, expect, trust="ca", flip=None):
  c = {"name": name, "message": message, "recipient": recipient, "trust": trust, "expect": expect}
  if flip is not None: c["flip"] = flip
  doc["cases"].append(c)
for mname, rcpt in [("rsa-oaep-cbc", "bob"), ("rsa-oaep-gcm", "bob"), ("ec-kari-cbc", "carol"), ("ec-kari-gcm", "carol")]:
  case(f"{mname}/ok", mname, rcpt, "success")
  case(f"{mname}/untrusted-ca", mname, rcpt, "untrusted", trust="otherca")
  case(f"{mname}/wrong-recipient", mname, "carol" if rcpt == "bob" else "bob", "not-a-recipient")
  # The last byte ends the encrypted content: CBC padding or the GCM tag fails. A flip in
  # the middle garbles CBC plaintext (unauthenticated: it no longer parses) or fails GCM.
  case(f"{mname}/last-byte-flipped", mname, rcpt, "auth-failed", flip=-1)
  case(f"{mname}/middle-byte-flipped", mname, rcpt, "malformed" if mname.endswith("cbc") else "auth-failed",
       flip=len(r(f"{mname}.der")) // 2)
json.dump(doc, open(sys.argv[1], "w"), indent=1)
open(sys.argv[1], "a").write("\n")
PY
echo "wrote $out"
