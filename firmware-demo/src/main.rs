//! spacer on a Cortex-M4F: the policy from a weights blob in flash (f32 or int8) drives
//! a small scene and reports, over semihosting, the tokens chosen, the cost of every
//! inference, and the flash and RAM the program uses.
//!
//! Cost: QEMU models no cycle counter for these boards, so the firmware counts executed
//! *instructions*: under `-icount shift=0` QEMU's virtual clock advances exactly 1 ns per
//! instruction, and SysTick, clocked from the CPU clock (25 MHz on mps2-an386, 168 MHz
//! on netduinoplus2), ticks once per 40 (or 5.95) of them. A calibration loop of known
//! length measures that ratio at start-up.
//!
//! Memory: flash used is everything the linker placed in flash (vectors, code,
//! read-only data with the blob, and the initial values of `.data`); static RAM is
//! `.data` + `.bss`; the stack's high-water mark comes from painting the free RAM
//! below the stack with a pattern at start-up and finding the deepest overwritten word
//! at the end.

#![no_std]
#![no_main]

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprint, hprintln};
use firmware_demo::{BLOB, BLOB_SOURCE, DECISIONS, MACHINE, drive};
use spacer_core::weights::Blob;

/// A free-running 24-bit SysTick extended to 64 bits in software.
struct TickClock {
    last: u32,
    total: u64,
}

impl TickClock {
    fn start(syst: &mut SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        Self {
            last: SYST::get_current(),
            total: 0,
        }
    }

    /// Ticks since start (call at least every 2^24 ticks).
    fn now(&mut self) -> u64 {
        let cur = SYST::get_current();
        // SysTick counts down.
        self.total += (self.last.wrapping_sub(cur) & 0x00FF_FFFF) as u64;
        self.last = cur;
        self.total
    }
}

/// Executes exactly `2 * n` instructions (`subs` + `bne` per iteration).
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: a register-only countdown loop; no memory, no stack.
    unsafe {
        core::arch::asm!("1:", "subs {0}, {0}, #1", "bne 1b", inout(reg) n => _, options(nomem, nostack));
    }
}

fn fail(msg: &str) -> ! {
    hprintln!("error: {}", msg);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

unsafe extern "C" {
    static _flash_start: u8;
    static __sidata: u8;
    static __sdata: u8;
    static __edata: u8;
    static __sheap: u8;
    static _ram_start: u8;
    static _stack_start: u8;
}

/// The word painted over free RAM.
const PAINT: u32 = 0x5AC3_5AC3;

/// Paints the free RAM between the end of `.bss` and 256 bytes below the current
/// stack pointer.
#[inline(never)]
fn paint_stack() {
    let bottom = core::ptr::addr_of!(__sheap) as usize;
    let sp = cortex_m::register::msp::read() as usize - 256;
    let mut p = (bottom + 3) & !3;
    while p < sp {
        // SAFETY: the words between the end of `.bss` and below the live stack frame
        // belong to nothing (no heap, no interrupts enabled); writing them is the
        // measurement.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack used so far: from the top of RAM down to the deepest word that no
/// longer holds the paint.
fn stack_high_water() -> usize {
    let bottom = (core::ptr::addr_of!(__sheap) as usize + 3) & !3;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut p = bottom;
    // SAFETY: reading RAM words between the end of `.bss` and the top of the stack.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

/// The bits of f32 parameters as words.
fn bytemuck_words(p: &[f32]) -> &[u32] {
    // SAFETY: f32 and u32 have the same size and alignment, and every bit pattern is a
    // valid u32.
    unsafe { core::slice::from_raw_parts(p.as_ptr() as *const u32, p.len()) }
}

#[entry]
fn main() -> ! {
    paint_stack();
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        fail("peripherals taken")
    };
    let mut clock = TickClock::start(&mut cp.SYST);

    // Calibration: 2,000,000 instructions of known loop.
    const SPIN: u32 = 1_000_000;
    let t0 = clock.now();
    spin(SPIN);
    let ticks = (clock.now() - t0).max(1);
    let calib = 2 * SPIN as u64;
    // Instructions from ticks, exactly in integers: ticks * calib / calibration ticks.
    let instructions = |t: u64| t * calib / ticks;

    let blob = match Blob::parse(&BLOB.0) {
        Ok(b) => b,
        Err(e) => fail(match e {
            spacer_core::weights::WeightsError::Truncated => "blob truncated",
            spacer_core::weights::WeightsError::BadChecksum => "blob checksum mismatch",
            _ => "blob invalid",
        }),
    };
    let model = match blob.model() {
        Ok(m) => m,
        Err(_) => fail("blob parameters not usable in place"),
    };
    let dims = model.policy.dims();
    let params_at = match model.policy.params().first() {
        Some(p) => p as *const f32 as usize,
        None => model.policy.int8_words().as_ptr() as usize,
    };
    hprintln!(
        "spacer firmware-demo on {}: policy from {}; K={} tokens, {} weights ({} bytes) read in place from flash at {:#010x} ({} byte blob, format v{})",
        MACHINE,
        BLOB_SOURCE,
        dims.actions,
        model.policy.format().name(),
        model.policy.param_bytes(),
        params_at,
        BLOB.0.len(),
        model.header.version
    );
    hprintln!(
        "cost unit: instructions (QEMU -icount shift=0, SysTick on the CPU clock); calibration {} instructions = {} ticks -> {}.{:03} instructions per tick",
        calib,
        ticks,
        calib / ticks,
        (calib % ticks) * 1000 / ticks
    );
    // Any 32-bit words serve as int8 weights for the check: the blob's own.
    let head_words: &[u32] = match model.policy.params() {
        [] => model.policy.int8_words(),
        p => bytemuck_words(p),
    };
    match spacer_core::quant::check_kernels(7, 12, head_words) {
        Ok(n) => hprintln!(
            "integer kernels agree with the portable definitions: {} outputs compared",
            n
        ),
        Err(_) => fail("integer kernels differ from the portable definitions"),
    }

    // The cost model: an observation with no occupied slot costs the fixed part of the
    // network; each occupied partner or road slot adds one encoder pass.
    let empty = [0.0f32; spacer_core::observation::OBS_DIM];
    let empty = &empty[..model.policy.observation_len()];
    let mut logits = [0.0f32; spacer_core::policy::MAX_ACTIONS];
    let logits = &mut logits[..model.policy.actions()];
    let t0 = clock.now();
    let _ = model.policy.forward(empty, logits);
    let base = instructions(clock.now() - t0);
    hprintln!("forward pass with no occupied slot: {} instructions", base);

    let (mut inf_sum, mut inf_min, mut inf_max, mut obs_sum, mut n) =
        (0u64, u64::MAX, 0u64, 0u64, 0u64);
    let mut slots_sum = 0usize;
    let result = drive(
        &model,
        DECISIONS,
        || clock.now(),
        |d| {
            let cost = d.inference_cost.map(instructions);
            hprint!("decision {:2} tokens", d.index);
            for t in d.tokens {
                hprint!(" {}", t);
            }
            hprint!(" | inference instructions");
            for c in cost {
                hprint!(" {}", c);
            }
            hprint!(" | slots");
            for s in d.occupied_slots {
                hprint!(" {}", s);
            }
            hprintln!("");
            for ((&c, &o), &s) in cost.iter().zip(&d.observation_cost).zip(&d.occupied_slots) {
                inf_sum += c;
                inf_min = inf_min.min(c);
                inf_max = inf_max.max(c);
                obs_sum += instructions(o);
                slots_sum += s;
                n += 1;
            }
        },
    );
    let agents = match result {
        Ok(a) => a,
        Err(_) => fail("policy refused the observation"),
    };
    let mean = inf_sum / n.max(1);
    hprintln!(
        "summary: {} inferences, {:.1} occupied slots on average; inference instructions mean {} min {} max {}; observation build mean {}",
        n,
        slots_sum as f32 / n.max(1) as f32,
        mean,
        inf_min,
        inf_max,
        obs_sum / n.max(1)
    );
    let per_slot =
        (mean.saturating_sub(base)) as f32 / (slots_sum as f32 / n.max(1) as f32).max(1.0);
    hprintln!(
        "cost model: {} + {:.0} per occupied slot instructions",
        base,
        per_slot
    );
    // Time at 168 MHz if the core retires one instruction per cycle (see the README
    // for how a real Cortex-M4 with flash wait states differs).
    hprintln!(
        "estimate at 168 MHz, 1 instruction per cycle: {:.0} us per inference ({:.0} us with no occupied slot)",
        mean as f32 / 168.0,
        base as f32 / 168.0
    );
    for (i, a) in agents.iter().enumerate() {
        let p = a.state.pose;
        hprintln!(
            "state {} {:08x} {:08x} {:08x}",
            i,
            p.x.to_bits(),
            p.y.to_bits(),
            p.yaw.to_bits()
        );
    }
    let at = |s: &u8| s as *const u8 as usize;
    // SAFETY: only the addresses of linker symbols are taken.
    let (flash0, sidata, sdata, edata, sheap, ram0, top) = unsafe {
        (
            at(&_flash_start),
            at(&__sidata),
            at(&__sdata),
            at(&__edata),
            at(&__sheap),
            at(&_ram_start),
            at(&_stack_start),
        )
    };
    let flash = sidata - flash0 + (edata - sdata);
    let statics = sheap - ram0;
    let stack = stack_high_water();
    hprintln!(
        "memory: flash {} bytes (blob {}); RAM {} bytes static + {} bytes stack high-water mark = {} of {} bytes",
        flash,
        BLOB.0.len(),
        statics,
        stack,
        statics + stack,
        top - ram0
    );
    hprintln!("done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}
