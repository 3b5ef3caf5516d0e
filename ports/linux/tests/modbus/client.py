"""A bare Modbus TCP client (pymodbus): what the Modbus tests check the server with,
and the baseline of the benchmark.

    client.py PORT read UNIT ADDRESS COUNT      print the holding registers, one per line
    client.py PORT write UNIT ADDRESS VALUE...  write holding registers
    client.py PORT bench UNIT ADDRESS N         read one holding register N times,
                                                print "mean_us X"

With `--rtu` first, the frames are Modbus RTU (unit, PDU, CRC-16) over the TCP socket
(pymodbus' RTU framer on its TCP client): a board's serial line that QEMU serves as a
socket.
"""

import sys
import time

from pymodbus import FramerType
from pymodbus.client import ModbusTcpClient


def main(argv):
    framer = FramerType.SOCKET
    if argv[1:2] == ["--rtu"]:
        framer = FramerType.RTU
        argv = argv[:1] + argv[2:]
    port, command, unit, address = int(argv[1]), argv[2], int(argv[3]), int(argv[4])
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=5, framer=framer)
    if not client.connect():
        sys.exit(f"cannot connect to 127.0.0.1:{port}")
    if command == "read":
        answer = client.read_holding_registers(address, count=int(argv[5]), device_id=unit)
        if answer.isError():
            sys.exit(f"error {answer}")
        for value in answer.registers:
            print(value)
    elif command == "write":
        values = [int(v, 0) for v in argv[5:]]
        answer = client.write_registers(address, values, device_id=unit)
        if answer.isError():
            sys.exit(f"error {answer}")
    elif command == "bench":
        n = int(argv[5])
        start = time.perf_counter()
        for _ in range(n):
            answer = client.read_holding_registers(address, count=1, device_id=unit)
            if answer.isError():
                sys.exit(f"error {answer}")
        print(f"mean_us {(time.perf_counter() - start) / n * 1e6:.1f}")
    else:
        sys.exit(f"unknown command {command}")
    client.close()


if __name__ == "__main__":
    main(sys.argv)
