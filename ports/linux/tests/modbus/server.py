"""A Modbus TCP server (pymodbus), the real peer of the device's Modbus master.

    server.py PORT    serve on 127.0.0.1:PORT (0: a free port), print "listening PORT"

Unit 1 (and any unit: single context) holds 200 of each table: holding register i is
1000 + i, input register i is 2000 + i, coil i is i % 2, discrete input i is i % 3 == 0.
Addresses 200 and above are not there: a read of them is an ILLEGAL DATA ADDRESS
exception. Runs until killed.
"""

import asyncio
import sys

from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus.server import ModbusTcpServer

SIZE = 200


def context():
    # pymodbus' blocks are addressed from 1 (the PDU address + 1).
    device = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, [1000 + i for i in range(SIZE)]),
        ir=ModbusSequentialDataBlock(1, [2000 + i for i in range(SIZE)]),
        co=ModbusSequentialDataBlock(1, [i % 2 for i in range(SIZE)]),
        di=ModbusSequentialDataBlock(1, [int(i % 3 == 0) for i in range(SIZE)]),
    )
    return ModbusServerContext(devices=device, single=True)


async def main(port):
    server = ModbusTcpServer(context(), address=("127.0.0.1", port))
    await server.listen()
    bound = server.transport.sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
