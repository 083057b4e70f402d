"""EXAMPLE plugin-author code, not part of missive's library.

A tiny helper for writing missive executable plugins in Python 3 with the standard
library only: canonical CBOR for the subset the protocol uses (integers, byte strings,
text, arrays, maps, booleans, null), the length-prefixed framing, and a request loop.
The protocol itself is specified in docs/PLUGINS.md, "Executable plugins: the protocol".
Copy it next to your plugin (or into it) and adapt it freely.
"""

import struct
import sys

MAX_FRAME = 64 * 1024 * 1024 + 1024 * 1024
MAX_DEPTH = 16


class PluginError(Exception):
    """An error to report to missive: code is a missive error code ("malformed", ...)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


# --- canonical CBOR (RFC 8949 §4.2.1) -------------------------------------------------

def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | ai]) + n.to_bytes(size, "big")
    raise PluginError("plugin", "cbor: integer too large")


def encode(v):
    if v is None:
        return b"\xf6"
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, (bytes, bytearray)):
        return _head(2, len(v)) + bytes(v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return _head(3, len(b)) + b
    if isinstance(v, (list, tuple)):
        return _head(4, len(v)) + b"".join(encode(x) for x in v)
    if isinstance(v, dict):
        items = sorted((encode(k), encode(x)) for k, x in v.items())
        return _head(5, len(items)) + b"".join(k + x for k, x in items)
    raise PluginError("plugin", "cbor: cannot encode %s" % type(v).__name__)


def decode(data):
    """Strict: shortest forms only, sorted unique map keys, no floats/tags/indefinite."""
    value, pos = _item(memoryview(data), 0, 0)
    if pos != len(data):
        raise PluginError("malformed", "cbor: trailing bytes")
    return value


def _item(b, pos, depth):
    if depth > MAX_DEPTH:
        raise PluginError("malformed", "cbor: nesting too deep")
    if pos >= len(b):
        raise PluginError("malformed", "cbor: truncated")
    major, ai = b[pos] >> 5, b[pos] & 31
    pos += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if ai not in simple:
            raise PluginError("malformed", "cbor: floats and other simple values are not allowed")
        return simple[ai], pos
    if ai < 24:
        n = ai
    elif ai <= 27:
        size = 1 << (ai - 24)
        if pos + size > len(b):
            raise PluginError("malformed", "cbor: truncated")
        n = int.from_bytes(b[pos:pos + size], "big")
        pos += size
        if n < (24 if size == 1 else 1 << (4 * size)):
            raise PluginError("malformed", "cbor: not the shortest form")
    else:
        raise PluginError("malformed", "cbor: indefinite lengths and reserved values are not allowed")
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        if pos + n > len(b):
            raise PluginError("malformed", "cbor: truncated")
        raw = bytes(b[pos:pos + n])
        if major == 2:
            return raw, pos + n
        try:
            return raw.decode("utf-8"), pos + n
        except UnicodeDecodeError:
            raise PluginError("malformed", "cbor: text is not UTF-8")
    if major == 4:
        if n > len(b) - pos:
            raise PluginError("malformed", "cbor: truncated")
        out = []
        for _ in range(n):
            x, pos = _item(b, pos, depth + 1)
            out.append(x)
        return out, pos
    if major == 5:
        if n > len(b) - pos:
            raise PluginError("malformed", "cbor: truncated")
        out, last = {}, None
        for _ in range(n):
            start = pos
            k, pos = _item(b, pos, depth + 1)
            if not isinstance(k, (int, str)) or isinstance(k, bool):
                raise PluginError("malformed", "cbor: map keys must be integers or text")
            key_bytes = bytes(b[start:pos])
            if last is not None and key_bytes <= last:
                raise PluginError("malformed", "cbor: map keys not in canonical order")
            last = key_bytes
            out[k], pos = _item(b, pos, depth + 1)
        return out, pos
    raise PluginError("malformed", "cbor: tags are not allowed")


# --- framing and the request loop ------------------------------------------------------

def _read(n):
    buf = b""
    while len(buf) < n:
        chunk = sys.stdin.buffer.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def receive():
    """The next message from missive, or None at end of input (missive is done)."""
    prefix = _read(4)
    if prefix is None:
        return None
    (length,) = struct.unpack(">I", prefix)
    if length > MAX_FRAME:
        raise SystemExit("message too large")
    body = _read(length)
    if body is None:
        return None
    return decode(body)


def send(message):
    body = encode(message)
    sys.stdout.buffer.write(struct.pack(">I", len(body)) + body)
    sys.stdout.buffer.flush()


def host(call, **args):
    """A host call (seal and open only): missive does it and answers; errors raise."""
    send(dict(args, host=call))
    reply = receive()
    if reply is None:
        raise SystemExit(0)
    if "error" in reply:
        raise PluginError(reply["error"]["code"], reply["error"]["message"])
    return reply["ok"]


def serve(plugins, handlers):
    """Answers hello with `plugins`, then each request with handlers[op](request)."""
    while True:
        request = receive()
        if request is None:
            return
        op = request.get("op")
        try:
            if op == "hello":
                if request.get("protocol") != 1:
                    raise PluginError("plugin", "this plugin speaks protocol 1 only")
                result = {"protocol": 1, "plugins": plugins}
            elif op in handlers:
                result = handlers[op](request)
            else:
                raise PluginError("plugin", "unsupported request %r" % op)
            send({"ok": result})
        except PluginError as e:
            send({"error": {"code": e.code, "message": str(e)}})
        except Exception as e:  # a bug in the plugin: report it, keep serving
            send({"error": {"code": "plugin", "message": "%s: %s" % (type(e).__name__, e)}})
