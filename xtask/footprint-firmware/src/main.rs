//! The footprint firmware: `lwm2m-core` with every object of `lwm2m-objects` and a
//! configuration store, on a Cortex-M4 (QEMU `mps2-an386`), run through the requests
//! whose stack `cargo xtask footprint` reports.
//!
//! It paints the stack, builds the device, repaints, then runs a GET, a login, a
//! multi-request, configuration writes, a save and a factory reset, checking every
//! answer. It prints over semihosting one line per figure (`engine=N`, `boot-stack=N`,
//! `stack=N`, bytes) and exits through semihosting, with a failure status if an answer
//! was not the expected one. The emulated flash (`EMULATED_FLASH`) stands for the board's
//! flash: the report leaves it out of the RAM. Where the objects' declaration tables are,
//! and how many resources they declare, xtask reads from the ELF (`src/declarations.rs`).
#![no_std]
#![no_main]

use core::mem::{size_of, MaybeUninit};
use core::ptr::{addr_of, addr_of_mut};

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash,
};
use lwm2m_core::storage::{flash_size_needed, FlashStore};
use lwm2m_core::target::NoTarget;
use lwm2m_core::{Channel, ChannelKind, Config, Device, FrameLimits, Instant};
use lwm2m_objects::codec;
use lwm2m_objects::settings::{group_room, Group};
use lwm2m_objects::{standard_objects, DeviceInfo, NoHooks, StandardObjects};

#[cfg(feature = "declarations")]
mod declarations;

/// The frame sizes of this firmware.
const LIMITS: FrameLimits = FrameLimits {
    max_request: 256,
    max_response: 256,
};

const FLASH_LEN: usize = flash_size_needed::<RamFlash>() as usize;

/// The board's flash, emulated in RAM (not counted as RAM by the report); erased at boot.
#[no_mangle]
#[link_section = ".uninit.EMULATED_FLASH"]
static mut EMULATED_FLASH: MaybeUninit<[u8; FLASH_LEN]> = MaybeUninit::uninit();

/// A NOR flash over [`EMULATED_FLASH`]: 4 KiB sectors, word writes that only clear bits.
struct RamFlash;

impl ErrorType for RamFlash {
    type Error = NorFlashErrorKind;
}

fn flash() -> &'static mut [u8; FLASH_LEN] {
    // SAFETY: the firmware is single-threaded, only RamFlash touches the array, and
    // main erases (initialises) it before anything else.
    unsafe { (*addr_of_mut!(EMULATED_FLASH)).assume_init_mut() }
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        check_read(self, offset, bytes.len())?;
        let at = offset as usize;
        bytes.copy_from_slice(&flash()[at..at + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        FLASH_LEN
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        check_erase(self, from, to)?;
        flash()[from as usize..to as usize].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        check_write(self, offset, bytes.len())?;
        let at = offset as usize;
        for (cell, byte) in flash()[at..at + bytes.len()].iter_mut().zip(bytes) {
            *cell &= byte;
        }
        Ok(())
    }
}

type Engine = Device<StandardObjects<NoHooks>, NoTarget, FlashStore<RamFlash>>;

/// The frame buffers, in static RAM as on a board: one request APDU (the advertised
/// request and its 5-byte header) and one response.
static mut RX: [u8; LIMITS.max_request as usize + 5] = [0; LIMITS.max_request as usize + 5];
static mut TX: [u8; LIMITS.max_response as usize] = [0; LIMITS.max_response as usize];

/// The engine, in static RAM (`ENGINE` in the symbol table, for the report).
#[no_mangle]
#[link_section = ".uninit.ENGINE"]
static mut ENGINE: MaybeUninit<Engine> = MaybeUninit::uninit();

const PAINT: u32 = 0xA5A5_A5A5;

/// The room of each settings group, computed by the compiler: the declaration tables stay
/// out of the firmware, as in a board's.
const GROUP_ROOMS: [usize; Group::ALL.len()] = {
    let mut rooms = [0; Group::ALL.len()];
    let mut i = 0;
    while i < rooms.len() {
        rooms[i] = group_room(&lwm2m_objects::SETTINGS_TABLES, Group::ALL[i]);
        i += 1;
    }
    rooms
};

extern "C" {
    /// End of static RAM (start of the heap region cortex-m-rt leaves free).
    static mut __sheap: u32;
    /// Top of the stack.
    static _stack_start: u32;
}

/// Fills the free RAM below the current stack with [`PAINT`].
#[inline(never)]
fn paint() {
    let low = addr_of_mut!(__sheap) as usize;
    let here = cortex_m::register::msp::read() as usize - 256;
    let mut at = low;
    while at < here {
        // SAFETY: the words between the end of static RAM and below this function's
        // frame are free.
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// Bytes of stack used since the last [`paint`]: from its top down to the lowest word
/// no longer painted.
#[inline(never)]
fn used() -> usize {
    let low = addr_of_mut!(__sheap) as usize;
    let top = addr_of!(_stack_start) as usize;
    let mut at = low;
    // SAFETY: reads of RAM between the end of static data and the stack top.
    while at < top && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    top - at
}

/// Prints `text` over semihosting.
fn print(text: &[u8]) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(text);
    }
}

/// Prints the line `{key}{index}={value}` (the index only when given), in decimal, without
/// `core::fmt` (`codec::decimal`): the firmware measures the stack's flash, not the
/// formatting machinery's.
fn report(key: &str, index: Option<usize>, value: usize) {
    let mut digits = [0u8; 10];
    let mut number = |v: usize| {
        print(codec::decimal(
            u32::try_from(v).unwrap_or(u32::MAX),
            &mut digits,
        ));
    };
    print(key.as_bytes());
    if let Some(i) = index {
        number(i);
    }
    print(b"=");
    number(value);
    print(b"\n");
}

/// The requests measured, with the status they must answer.
const REQUESTS: &[(&[u8], u8)] = &[
    // GET /3//2
    (
        &[
            0xa2, 0xca, 0x00, 0x00, 0x07, 0x01, 0x00, 0x03, 0xff, 0xff, 0x00, 0x02,
        ],
        0x00,
    ),
    // POST /1024//0 admin/admin
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x27, 0x02, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00, 0x61, 0x64,
            0x6d, 0x69, 0x6e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x61, 0x64, 0x6d, 0x69, 0x6e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00,
        ],
        0x00,
    ),
    // Multi-request: GET /3//0, /3//2, /1024//7
    (
        &[
            0xa2, 0xca, 0x00, 0x00, 0x25, 0x01, 0x04, 0x00, 0xff, 0xff, 0x00, 0x59, 0x00, 0x07,
            0x01, 0x00, 0x03, 0xff, 0xff, 0x00, 0x00, 0xff, 0x00, 0x07, 0x01, 0x00, 0x03, 0xff,
            0xff, 0x00, 0x02, 0xff, 0x00, 0x07, 0x01, 0x04, 0x00, 0xff, 0xff, 0x00, 0x07, 0xff,
        ],
        0x00,
    ),
    // The configurator's first steps: configuring, app name, a profile, a bundle, a variable.
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x0b, 0x03, 0x04, 0x00, 0xff, 0xff, 0x00, 0x0a, 0xff, 0xff,
            0xff, 0xff,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x0b, 0x03, 0x04, 0x00, 0xff, 0xff, 0x00, 0x09, 0x44, 0x65,
            0x6d, 0x6f,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x07, 0x02, 0x04, 0x01, 0x00, 0x01, 0xff, 0xff,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x0c, 0x03, 0x04, 0x01, 0x00, 0x01, 0x00, 0x00, 0x75, 0x73,
            0x65, 0x72, 0x31,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x0a, 0x02, 0x04, 0x01, 0x00, 0x01, 0x00, 0x02, 0x70, 0x77,
            0x64,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x07, 0x02, 0x04, 0x04, 0x00, 0x01, 0xff, 0xff,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x0a, 0x03, 0x04, 0x04, 0x00, 0x01, 0x00, 0x00, 0x41, 0x01,
            0x03,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x07, 0x02, 0x04, 0x05, 0x00, 0x05, 0xff, 0xff,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x08, 0x03, 0x04, 0x05, 0x00, 0x05, 0x00, 0x01, 0xa1,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x09, 0x03, 0x04, 0x05, 0x00, 0x05, 0x00, 0x06, 0x00, 0x01,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x08, 0x03, 0x04, 0x05, 0x00, 0x05, 0x00, 0x04, 0x2a,
        ],
        0x00,
    ),
    (
        &[
            0xa2, 0xca, 0x00, 0x00, 0x07, 0x01, 0x04, 0x04, 0x00, 0x01, 0x00, 0x01,
        ],
        0x00,
    ),
    // Save: PUT /1024//10 1.2.3
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x0b, 0x03, 0x04, 0x00, 0xff, 0xff, 0x00, 0x0a, 0x01, 0x02,
            0x00, 0x03,
        ],
        0x00,
    ),
    // Factory reset: POST /3//5 (restores and saves the default)
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x07, 0x02, 0x00, 0x03, 0xff, 0xff, 0x00, 0x05,
        ],
        0x00,
    ),
    // A setting of a group this build leaves out (Wi-Fi SSID): declared, not provided.
    (
        &[
            0xa2, 0xca, 0x00, 0x00, 0x07, 0x01, 0x04, 0x00, 0xff, 0xff, 0x00, 0x19,
        ],
        0xA1,
    ),
    // Logout
    (
        &[
            0xa2, 0xda, 0x00, 0x00, 0x07, 0x02, 0x04, 0x00, 0xff, 0xff, 0x00, 0x01,
        ],
        0x00,
    ),
];

#[entry]
fn main() -> ! {
    // SAFETY: nothing uses the emulated flash yet; writing every byte initialises it.
    unsafe { (*addr_of_mut!(EMULATED_FLASH)).write([0xFF; FLASH_LEN]) };
    // Boot and serve in functions of their own, so that each one's stack is measured
    // alone (main's frame stays small).
    paint();
    let device = boot();
    let boot_stack = used();
    let (stack, worst) = serve(device);
    print(b"preset=");
    print(lwm2m_core::config::capacity::PRESET.as_bytes());
    print(b"\n");
    report("engine", None, size_of::<Engine>());
    report("config", None, size_of::<Config>());
    for (group, room) in Group::ALL.iter().zip(GROUP_ROOMS) {
        print(b"group-");
        report(group.name(), None, room);
    }
    report("boot-stack", None, boot_stack);
    report("worst-request", None, worst);
    report("stack", None, stack);
    debug::exit(debug::EXIT_SUCCESS);
    // Semihosting's exit stops QEMU: never reached.
    #[expect(clippy::empty_loop)]
    loop {}
}

/// Builds the engine as a board does: the configuration from flash, the factory one on
/// first boot.
#[inline(never)]
fn boot() -> &'static mut Engine {
    let info = DeviceInfo {
        manufacturer: "IoTize",
        flavor: "footprint",
        serial: heapless::String::try_from("FOOTPRINT0000001").unwrap_or_default(),
        firmware_version: lwm2m_objects::device::TAP_FIRMWARE_LEVEL,
    };
    let store = match FlashStore::new(RamFlash, 0..FLASH_LEN as u32) {
        Ok(store) => store,
        Err(_) => fail("flash region"),
    };
    // SAFETY: single-threaded; the engine is initialised once, here, and only used
    // through the reference this returns.
    let device = unsafe {
        (*addr_of_mut!(ENGINE)).write(
            Device::new(
                standard_objects(info, NoHooks),
                Config::default(),
                Config::reset,
                LIMITS,
            )
            .with_store(store),
        )
    };
    // The configuration from flash, in place (the factory one on first boot).
    if device.load_config().is_err() {
        fail("flash read");
    }
    device
}

/// Runs the measured requests, checking every answer; the most stack one of them took
/// and which one it was.
#[inline(never)]
fn serve(device: &mut Engine) -> (usize, usize) {
    let mut worst = (0, 0);
    let channel = Channel::new(1, ChannelKind::Serial);
    // SAFETY: single-threaded; only this function uses the frame buffers.
    let (request, response) = unsafe { (&mut *addr_of_mut!(RX), &mut *addr_of_mut!(TX)) };
    for (i, (apdu, status)) in REQUESTS.iter().enumerate() {
        let n = apdu.len();
        request[..n].copy_from_slice(apdu);
        paint();
        // As the device loop does: a tunnel request is opened first.
        let n = device.unseal(channel, &mut request[..n]);
        let outcome = device.handle(
            channel,
            &request[..n],
            Instant::from_millis(i as u64),
            response,
        );
        let stack = used();
        report("request-", Some(i), stack);
        if stack > worst.0 {
            worst = (stack, i);
        }
        if outcome.len < 3 || response[0] != *status {
            report(
                "unexpected answer, request ",
                Some(i),
                usize::from(response[0]),
            );
            fail("unexpected answer");
        }
    }
    worst
}

fn fail(what: &str) -> ! {
    print(b"footprint firmware: ");
    print(what.as_bytes());
    print(b"\n");
    debug::exit(debug::EXIT_FAILURE);
    #[expect(clippy::empty_loop)]
    loop {}
}

extern "C" {
    /// cortex-m-rt's handler of every exception and interrupt left unhandled.
    fn DefaultHandler();
}

/// The interrupt vectors of the board, as its device crate would give them: the 32
/// interrupts of the MPS2 AN386 (CMSDK: UARTs, timers, GPIO, Ethernet...), none used.
/// Without cortex-m-rt's `device` feature the table would have the 240 entries of any
/// ARMv7-M, 832 bytes of flash no board has.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail("panic")
}
