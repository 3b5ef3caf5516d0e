#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from vectors.txt section A.

    python3 fuzz/gen_seeds.py [path/to/vectors.txt]

The default vectors path is ../shared/spec/vectors.txt next to the repository. The seeds
are committed under fuzz/seeds/<target>/; rerun this after the vectors change. The
libFuzzer working corpus (fuzz/corpus/) is git-ignored.
"""

import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_VECTORS = HERE.parent.parent / "shared" / "spec" / "vectors.txt"

LOGIN_ADMIN = "a2da000027020400ffff000061646d696e000000000000000000000061646d696e0000000000000000000000"
LOGIN_WRONG = "a2da000027020400ffff000061646d696e000000000000000000000077726f6e670000000000000000000000"
LOGIN_HASHED = "a2da000027020400ffff000061646d696e00000000000000000000000155affc023aff6882f56a4e0d9c5466"
LOGOUT = "a2da000007020400ffff0001"
GET_SERIAL = "a2ca000007010003ffff0002"
GET_GROUP = "a2ca000007010400ffff0007"
GET_OPTIONS = "a2ca000007010400ffff0006"
BUNDLE_TLV = "88010cc40141bc0000c402cafebabe"


def section_a(text):
    """(title, apdu bytes) for every TX apdu of section A, in transcript order."""
    start = text.index("# SECTION A")
    end = text.index("# SECTION B")
    title = "untitled"
    out = []
    for line in text[start:end].splitlines():
        if line.startswith("### "):
            title = line[4:]
        m = re.match(r"\s*TX apdu : ([0-9a-f]+)\s*$", line)
        if m:
            out.append((title, bytes.fromhex(m.group(1))))
    return out


def slug(title):
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:40]


def record(apdu, ctrl=0):
    """One record of the handle target's input (ctrl, length, bytes)."""
    if len(apdu) > 0xFF:
        return bytes([ctrl | 0x40]) + len(apdu).to_bytes(2, "big") + apdu
    return bytes([ctrl, len(apdu)]) + apdu


def handle_input(flags, steps):
    """flags byte then records; steps are (apdu hex or bytes, ctrl)."""
    out = bytes([flags])
    for apdu, ctrl in steps:
        if isinstance(apdu, str):
            apdu = bytes.fromhex(apdu)
        out += record(apdu, ctrl)
    return out


def main():
    vectors = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_VECTORS
    apdus = section_a(vectors.read_text())
    if not apdus:
        sys.exit(f"no TX apdu found in section A of {vectors}")

    parser = HERE / "seeds" / "request_parser"
    handle = HERE / "seeds" / "handle"
    for d in (parser, handle):
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("*.bin"):
            old.unlink()

    seen = set()
    for i, (title, apdu) in enumerate(apdus):
        if apdu in seen:
            continue
        seen.add(apdu)
        name = f"a{i:02}_{slug(title)}"
        (parser / f"{name}.bin").write_bytes(apdu)
        if apdu[:1] == b"\xa2" and len(apdu) > 5:
            frame = apdu[5:]
            (parser / f"{name}_frame.bin").write_bytes(frame)
            # The multi-request body is the payload of GET /1024//89.
            if frame[:7] == bytes.fromhex("010400ffff0059"):
                (parser / f"{name}_multi_body.bin").write_bytes(frame[7:])
    (parser / "bundle_tlv.bin").write_bytes(bytes.fromhex(BUNDLE_TLV))

    transcript = [(apdu, 0) for _, apdu in apdus]
    seeds = {
        # The whole transcript, anonymous then as admin, then with hashPassword on.
        "transcript_anonymous": handle_input(0, transcript),
        "transcript_admin": handle_input(1, transcript),
        "transcript_admin_hashed": handle_input(3, transcript + [(LOGOUT, 0), (LOGIN_HASHED, 0)]),
        # Three wrong passwords lock login out; 60 s later (ctrl step 4) it works again.
        "lockout": handle_input(
            0,
            [(LOGIN_WRONG, 0), (LOGIN_WRONG, 1), (LOGIN_WRONG, 1), (LOGIN_ADMIN, 2),
             (LOGIN_ADMIN, 4), (GET_GROUP, 0)],
        ),
        # Idle timeout: login, wait past the 60 s inactivity period, group is anonymous.
        "idle_timeout": handle_input(
            0, [(LOGIN_ADMIN, 0), (GET_GROUP, 3), (GET_GROUP, 0x10 | 5), (GET_GROUP, 0)]
        ),
        # Channel 2 is refused (A8) while channel 1 owns the session, then takes it.
        "two_channels": handle_input(
            0,
            [(GET_SERIAL, 0), (GET_SERIAL, 0x08), (LOGIN_ADMIN, 0), (GET_OPTIONS, 0x08),
             (LOGOUT, 0), (LOGIN_ADMIN, 0x08), (GET_GROUP, 0x08), (GET_GROUP, 0x20 | 0x08)],
        ),
        # Channel 2 as NFC: the ISO SELECT, then requests.
        "nfc": handle_input(
            4, [("00a4040007f0024c774d324d9000", 0x08), (GET_SERIAL, 0x08), (GET_SERIAL, 0)]
        ),
    }
    for name, data in seeds.items():
        (handle / f"{name}.bin").write_bytes(data)

    print(f"{len(list(parser.glob('*.bin')))} request_parser seeds, "
          f"{len(list(handle.glob('*.bin')))} handle seeds from {vectors}")


if __name__ == "__main__":
    main()
