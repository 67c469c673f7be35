"""A small app that needs what a real Python image must have: C extensions, OpenSSL,
SQLite, zlib, and a dynamic linker cache that ctypes can search."""
import ctypes
import ctypes.util
import json
import sqlite3
import ssl
import zlib


def main() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("create table t (v text)")
    db.execute("insert into t values (?)", (json.dumps({"tls": ssl.OPENSSL_VERSION_INFO[0]}),))
    assert zlib.decompress(zlib.compress(b"ok")) == b"ok"
    libz = ctypes.CDLL(ctypes.util.find_library("z"))
    assert libz.zlibVersion() != 0
    print("ok")


if __name__ == "__main__":
    main()
