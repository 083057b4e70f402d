"""Runs a command on a pseudo-terminal and answers its passphrase prompts.

Debian's age reads passphrases only from a terminal (/dev/tty), so the interop tests
(tests/age_interop_test.ts) run it through this: every time the command's terminal
output shows a prompt containing "passphrase", PASSPHRASE and a newline are typed.

    python3 tests/age_pty.py PASSPHRASE -- age -d -o out file.age

Exits with the command's exit code; what the command wrote on the terminal (prompts
included) goes to stderr. Gives up after 60 seconds.
"""
import os
import pty
import select
import sys
import time


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.stderr.write("usage: age_pty.py PASSPHRASE -- COMMAND [ARGS...]\n")
        return 2
    passphrase = sys.argv[1].encode()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[3], sys.argv[3:])
    seen = b""
    answered = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            sys.stderr.buffer.write(data)
            seen += data
            if seen.lower().count(b"passphrase") > answered:
                answered += 1
                os.write(fd, passphrase + b"\n")
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
    else:
        os.kill(pid, 9)
        return 124
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
