//! objects.md §6.8: the frames the client's configurator sent for its example
//! configuration (profiles user1 and bob, bundle 1 with an ACL, variables 5 and 6), and a
//! fixture of further bundles with every kind of anonymous right.
//! Shared by the tests and the `session` fuzz target.

/// Every frame, in order (bare Tap frames, hex).
pub const CONFIGURATOR_FRAMES: &[&str] = &[
    "03 04 00 ff ff 00 0a ff ff ff ff",
    "03 04 00 ff ff 00 09 44 65 6d 6f",
    "03 04 03 ff ff 00 01 03",
    "02 04 01 ff ff 00 02 61 64 6d 69 6e",
    "02 04 01 00 01 ff ff",
    "03 04 01 00 01 00 00 75 73 65 72 31",
    "02 04 01 00 01 00 02 70 77 64",
    "03 04 01 00 01 00 04 01 2c",
    "02 04 01 00 02 ff ff",
    "03 04 01 00 02 00 00 62 6f 62",
    "02 04 01 00 02 00 02 62",
    "03 04 01 00 02 00 05 00 01",
    "02 04 01 ff fe 00 02 73 75 70 65 72 76 69 73 6f 72",
    "03 04 01 ff fe 00 04 00 1e",
    "02 04 04 00 01 ff ff",
    "03 04 04 00 01 00 04 73 65 6e 73 6f 72 73",
    "03 04 04 00 01 00 02 00 00 00 0a",
    "03 04 04 00 01 00 00 41 00 01",
    "03 04 04 00 01 00 00 41 01 03",
    "03 04 04 00 01 00 00 61 ff 03",
    "02 04 00 ff ff 00 66 00 01",
    "02 04 05 00 05 ff ff 06",
    "03 04 05 00 05 00 02 01",
    "03 04 05 00 05 00 01 13",
    "03 04 05 00 05 00 06 00 01",
    "03 04 05 00 05 00 00 20 00 00 10",
    "03 04 05 00 05 00 08 74 65 6d 70 3a 43",
    "02 04 05 00 06 ff ff",
    "03 04 05 00 06 00 02 02",
    "03 04 05 00 06 00 01 e2",
    "03 04 05 00 06 00 06 00 01",
    "02 04 05 00 06 00 05 00 01 00 02",
    "03 04 00 ff ff 00 06 00 00",
    "03 04 00 ff ff 00 0a 01 02 00 03",
];

/// Admin frames after the configurator: bundle 2 (anonymous read+write), bundle 3
/// (user1 only), their variables, and variable 7 in no bundle.
pub const EXTRA_FRAMES: &[&str] = &[
    // Bundle 2 "public": anonymous read+write.
    "02 0404 0002 ffff",
    "03 0404 0002 0004 7075626c6963",
    "03 0404 0002 0000 41 00 03",
    "03 0404 0002 0000 61 ff 03",
    // Bundle 3 "private": user1 only.
    "02 0404 0003 ffff",
    "03 0404 0003 0004 70726976617465",
    "03 0404 0003 0000 41 01 03",
    "03 0404 0003 0000 61 ff 03",
    // 10: in-device (static) UINT32 of bundle 2.
    "02 0405 000a ffff",
    "03 0405 000a 0001 83",
    "03 0405 000a 0006 0002",
    "03 0405 000a 0004 11223344",
    // 11: in-device (volatile) UINT8[4] of bundle 2.
    "02 0405 000b ffff",
    "03 0405 000b 0001 e1",
    "03 0405 000b 0002 04",
    "03 0405 000b 0006 0002",
    "03 0405 000b 0004 01020304",
    // 12: target UINT16 of bundle 2 at 0x20000020.
    "02 0405 000c ffff",
    "03 0405 000c 0001 02",
    "03 0405 000c 0006 0002",
    "03 0405 000c 0000 20000020",
    // 20: in-device (static) UINT16 of bundle 3.
    "02 0405 0014 ffff",
    "03 0405 0014 0001 82",
    "03 0405 0014 0006 0003",
    "03 0405 0014 0004 abcd",
    // 21: target UINT32 of bundle 3 at 0x20000030.
    "02 0405 0015 ffff",
    "03 0405 0015 0001 03",
    "03 0405 0015 0006 0003",
    "03 0405 0015 0000 20000030",
    // 7: in-device UINT8 in no bundle.
    "02 0405 0007 ffff",
    "03 0405 0007 0001 a1",
    "03 0405 0007 0004 5a",
];
