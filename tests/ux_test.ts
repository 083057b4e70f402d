/**
 * What a new user meets (issue 21): errors in missive's words that say what to do next,
 * binary input, one duration syntax, help with examples and exit codes, the contacts
 * book. Through the CLI; error texts asserted.
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, tempDir } from "./helpers.ts";

const { dir, cleanup } = tempDir("missive-ux-");
const at = (name: string) => join(dir, name);
const home = at("home");
const env = { HOME: home };

before(async () => {
  mkdirSync(home);
  for (const name of ["alice", "bob", "carol"]) {
    const r = await runCli(["keygen", "--name", `${name}@example.org`, "-o", at(`${name}.key`)]);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(at(`${name}.card`), r.stdout);
  }
});
after(cleanup);

describe("errors say what was wrong and what to do", () => {
  it("unknown flags, in missive's words, with the closest flag", async () => {
    for (
      const [args, want] of [
        [
          ["seal", "--form", "x"],
          /^missive: seal: unknown option --form \(did you mean --from\?\)\n$/,
        ],
        [["open", "--jsno"], /^missive: open: unknown option --jsno \(did you mean --json\?\)\n$/],
        [["seal", "--armour"], /did you mean --armor\?/],
        [["seal", "--to"], /^missive: seal: --to needs a value \(see --help\)\n$/],
        [["open", "--zzz"], /^missive: open: unknown option --zzz \(see --help\)\n$/],
      ] as const
    ) {
      const r = await runCli([...args]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, want);
      assert.equal(r.text, "");
    }
  });

  it("a card given as a key, and cards or keys given to open, are named", async () => {
    const asKey = await runCli(["seal", "--from", at("alice.card"), "--to", at("bob.card")], {
      stdin: "x",
    });
    assert.equal(asKey.code, 9);
    assert.match(asKey.stderr, /alice\.card is a public card, not a secret key/);
    for (
      const [file, what] of [
        ["alice.card", /it looks like a missive card \(a public key\): give it with --trust/],
        ["alice.key", /it looks like a missive secret key: give it with --key/],
      ] as const
    ) {
      for (const command of ["open", "inspect"]) {
        const r = await runCli([command, at(file)]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, new RegExp(`^missive: not a missive message \\(${what.source}`));
        assert.equal(r.text, "");
      }
    }
    const text = await runCli(["open"], { stdin: "just some text\nand more\n" });
    assert.match(text.stderr, /not a missive message \(it looks like text\)/);
  });

  it("missing files in words, the same for keys and cards; the simple STP's hint", async () => {
    const key = await runCli(["seal", "--from", at("nope.key"), "--to", at("bob.card")]);
    assert.match(
      key.stderr,
      /^missive: cannot read key file .*nope\.key: no such file or folder\n$/,
    );
    const card = await runCli(["seal", "--from", at("alice.key"), "--to", at("nope.card")]);
    assert.match(card.stderr, /^missive: cannot read card .*nope\.card: no such file or folder\n$/);
    const none = await runCli(["seal", "--from", at("alice.key")], { stdin: "x" });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /simple: a recipient is required \(--to CARD\)/);
  });
});

describe("binary input", () => {
  it("is sealed as a file automatically and opens to the same bytes", async () => {
    const bytes = new Uint8Array(5000).map((_, i) => (i * 7919) & 0xff);
    bytes[0] = 0xff; // never UTF-8
    writeFileSync(at("photo.raw"), bytes);
    const sealed = await runCli([
      "seal",
      "--from",
      at("alice.key"),
      "--to",
      at("bob.card"),
      at("photo.raw"),
    ]);
    assert.equal(sealed.code, 0, sealed.stderr);
    assert.match(
      sealed.stderr,
      /not UTF-8 text: sealed as a file \(AMP file\/1, name photo\.raw\)/,
    );
    const opened = await runCli(["open", "--key", at("bob.key"), "--trust", at("alice.card")], {
      stdin: sealed.stdout,
    });
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.stdout, bytes);
    assert.match(opened.stderr, /file "photo\.raw"/);
    // On a terminal, binary is refused rather than thrown at it.
    const tty = await runCli(["open", "--key", at("bob.key")], { stdin: sealed.stdout, tty: true });
    assert.equal(tty.code, 2);
    assert.match(tty.stderr, /the message is binary; write it with -o FILE/);
  });
});

describe("habits", () => {
  it("one duration syntax; a bare number keeps the old unit with a warning", async () => {
    const sealed = await runCli(
      ["seal", "--stp", "psk/2", "--option", "psk=cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="],
      { stdin: "x" },
    );
    const open = (ttl: string) =>
      runCli(
        ["open", "--ttl", ttl, "--option", "psk=cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="],
        {
          stdin: sealed.stdout,
        },
      );
    const unit = await open("1h");
    assert.equal(unit.code, 0, unit.stderr);
    assert.doesNotMatch(unit.stderr, /warning: --ttl/);
    const bare = await open("3600");
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(
      bare.stderr,
      /warning: --ttl 3600 has no unit and is read as seconds; write 3600s/,
    );
    const bad = await open("soon");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--ttl expects a duration like 500ms, 10s or 2m/);
    // The relay's and the server's durations take the same syntax (refused before any I/O).
    for (
      const args of [
        ["serve", "tcp://127.0.0.1:1", "--key", "x.key", "--stats-interval", "soon"],
        ["serve", "tcp://127.0.0.1:1", "--key", "x.key", "--idle-timeout", "forever"],
        ["serve", "tcp://127.0.0.1:1", "--key", "x.key", "--handshake-timeout", "1d"],
        [
          "relay",
          "list",
          "--relay",
          "tcp://127.0.0.1:1",
          "--relay-card",
          "r.card",
          "--key",
          "x.key",
          "--timeout",
          "soon",
        ],
      ]
    ) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /expects a duration like 500ms, 10s or 2m/, args.join(" "));
    }
  });

  it("a message that carries no time says so instead of printing 1970", async () => {
    const { plainV1, sealMessage, textV1 } = await import("../mod.ts");
    const sealed = await sealMessage({ stp: plainV1, amp: textV1, message: { text: "x" }, now: 0 });
    const r = await runCli(["open"], { stdin: sealed });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no sender; sending time unknown/);
    assert.doesNotMatch(r.stderr, /1970/);
  });

  it("the version is package.json's", async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname!, "..", "package.json"), "utf8"));
    assert.equal((await runCli(["--version"])).text, `missive ${pkg.version}\n`);
  });

  it("-V and --version; every subcommand's help has examples and an Exit codes line", async () => {
    for (const flag of ["-V", "--version"]) {
      const r = await runCli([flag]);
      assert.equal(r.code, 0);
      assert.match(r.text, /^missive \d+\.\d+\.\d+\n$/);
    }
    const names = [
      "keygen",
      "card",
      "contacts",
      "seal",
      "open",
      "inspect",
      "plugins",
      "send",
      "listen",
      "session",
    ];
    for (const name of names) {
      const r = await runCli([name, "--help"]);
      assert.equal(r.code, 0, name);
      assert.match(r.text, /\nExamples?:\n/, `${name} --help has examples`);
      assert.match(r.text, /\nExit codes: 0 /, `${name} --help has its exit codes`);
    }
  });
});

describe("contacts", () => {
  const book = join(home, ".config", "missive", "contacts.json");

  it("add from files (verified), resolve --to and --trust by address, remove", async () => {
    const add = await runCli(["contacts", "add", at("bob.card"), at("alice.card")], { env });
    assert.equal(add.code, 0, add.stderr);
    assert.equal(statSync(book).mode & 0o777, 0o600);
    const list = await runCli(["contacts", "list", "--json"], { env });
    const rows = list.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((r) => [r.address, r.verified, r.source]), [
      ["alice@example.org", true, "file"],
      ["bob@example.org", true, "file"],
    ]);
    const sealed = await runCli(["seal", "--from", at("alice.key"), "--to", "bob@example.org"], {
      env,
      stdin: "by address",
    });
    assert.equal(sealed.code, 0, sealed.stderr);
    const opened = await runCli(
      ["open", "--key", at("bob.key"), "--trust", "alice@example.org", "--require-trust"],
      { env, stdin: sealed.stdout },
    );
    assert.equal(opened.code, 0, opened.stderr);
    assert.equal(opened.text, "by address");
    const unknown = await runCli(["seal", "--from", at("alice.key"), "--to", "dave@example.org"], {
      env,
      stdin: "x",
    });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /dave@example\.org is neither a card file nor a contact/);
  });

  it("an unverified contact (as from a relay) is refused for --trust until verified", async () => {
    // A book holding carol unverified, as `contacts add --from-relay` leaves it.
    const doc = JSON.parse(readFileSync(book, "utf8"));
    const carolCard = readFileSync(at("carol.card"), "utf8").trim();
    doc.contacts.push({
      card: carolCard,
      verified: false,
      source: "relay",
      added: "2026-12-06T00:00:00Z",
    });
    writeFileSync(book, JSON.stringify(doc), { mode: 0o600 });
    const sealed = await runCli(["seal", "--from", at("carol.key"), "--to", at("bob.card")], {
      stdin: "from carol",
    });
    const trust = ["open", "--key", at("bob.key"), "--trust", "carol@example.org"];
    const refused = await runCli(trust, { env, stdin: sealed.stdout });
    assert.equal(refused.code, 7);
    assert.match(refused.stderr, /carol@example\.org is in your contacts but not verified/);
    const to = await runCli(["seal", "--from", at("alice.key"), "--to", "carol@example.org"], {
      env,
      stdin: "x",
    });
    assert.equal(to.code, 0);
    assert.match(to.stderr, /warning: carol@example\.org is not verified/);
    const wrong = await runCli(
      ["contacts", "verify", "carol@example.org", "--fingerprint", "00000 00000"],
      { env },
    );
    assert.equal(wrong.code, 7);
    assert.match(wrong.stderr, /does not match/);
    const fp = /fingerprint ([\d ]+)/.exec(wrong.stderr)![1].trim();
    const ok = await runCli(["contacts", "verify", "carol@example.org", "--fingerprint", fp], {
      env,
    });
    assert.equal(ok.code, 0, ok.stderr);
    const accepted = await runCli(trust, { env, stdin: sealed.stdout });
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(accepted.text, "from carol");
  });

  it("a contacts file others could have written is refused", async () => {
    chmodSync(book, 0o666);
    const r = await runCli(["contacts", "list"], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /contacts .* is writable by group or others .*chmod go-w/);
    chmodSync(book, 0o600);
    const gone = await runCli(["contacts", "remove", "carol@example.org"], { env });
    assert.equal(gone.code, 0, gone.stderr);
  });
});

describe("completions and the manual page, from the help text", () => {
  it("bash completes commands and each command's flags", async () => {
    const script = await runCli(["completions", "bash"]);
    assert.equal(script.code, 0, script.stderr);
    writeFileSync(at("c.bash"), script.stdout);
    const complete = (words: string[]) =>
      spawnSync("bash", [
        "-c",
        `source ${at("c.bash")}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); ` +
        `COMP_CWORD=${words.length - 1}; _missive; echo "\${COMPREPLY[@]}"`,
      ], { encoding: "utf8" }).stdout.trim();
    assert.equal(complete(["missive", "se"]), "seal serve send session selftest");
    assert.equal(complete(["missive", "seal", "--fr"]), "--from");
    assert.match(complete(["missive", "contacts", ""]), /^add list remove verify /);
  });

  it("zsh and fish scripts load; the man page renders without roff warnings", async () => {
    for (const shell of ["zsh", "fish"]) {
      const r = await runCli(["completions", shell]);
      assert.equal(r.code, 0);
      assert.match(r.text, /missive/);
      assert.match(r.text, shell === "zsh" ? /^#compdef missive/ : /complete -c missive/);
    }
    const man = await runCli(["man"]);
    assert.equal(man.code, 0);
    assert.match(man.text, /^\.TH MISSIVE 1/);
    for (const name of ["keygen", "seal", "open", "contacts", "completions"]) {
      assert.match(man.text, new RegExp(`^\\.SS ${name}$`, "m"));
    }
    const groff = spawnSync("groff", ["-man", "-Tutf8", "-ww"], { input: man.stdout });
    if (groff.error) return; // groff is not installed here: the page is still checked above
    assert.equal(groff.stderr.toString(), "", "groff warnings");
    assert.match(groff.stdout.toString(), /User Commands/);
    const bad = await runCli(["completions", "tcsh"]);
    assert.equal(bad.code, 2);
  });
});

describe("missive selftest", () => {
  it("every crypto path of this runtime agrees with noble", async () => {
    const r = await runCli(["selftest", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.text);
    assert.ok(report.results.length >= 12);
    assert.ok(report.results.every((x: { ok: boolean }) => x.ok));
  });
});
