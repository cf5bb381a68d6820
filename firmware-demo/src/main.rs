//! spacer on a Cortex-M4F: the policy from a weights blob in flash drives a small scene
//! and reports, over semihosting, the tokens chosen and the cost of every inference.
//!
//! Cost: QEMU models no cycle counter for this board, so the firmware counts executed
//! *instructions*: under `-icount shift=0` QEMU's virtual clock advances exactly 1 ns
//! per instruction, and SysTick, clocked from the 25 MHz CPU clock, ticks once per 40
//! of them. A calibration loop of known length checks that ratio at start-up.

#![no_std]
#![no_main]

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprint, hprintln};
use firmware_demo::{AGENTS, BLOB, BLOB_SOURCE, DECISIONS, drive};
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

#[entry]
fn main() -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        fail("peripherals taken")
    };
    let mut clock = TickClock::start(&mut cp.SYST);

    // Calibration: 2,000,000 instructions of known loop.
    const SPIN: u32 = 1_000_000;
    let t0 = clock.now();
    spin(SPIN);
    let ticks = clock.now() - t0;
    let per_tick = (2 * SPIN as u64) as f32 / ticks.max(1) as f32;
    // Round to the clock ratio (40 for a 25 MHz SysTick at 1 instruction per ns).
    let ratio = (per_tick + 0.5) as u64;

    let blob = match Blob::parse(&BLOB.0) {
        Ok(b) => b,
        Err(e) => fail(match e {
            spacer_core::weights::WeightsError::Truncated => "blob truncated",
            _ => "blob invalid",
        }),
    };
    let model = match blob.model() {
        Ok(m) => m,
        Err(_) => fail("blob parameters not usable in place"),
    };
    let dims = model.policy.dims();
    hprintln!(
        "spacer firmware-demo: policy from {}; K={} tokens, {} parameters read in place from flash at {:#010x} ({} byte blob)",
        BLOB_SOURCE,
        dims.actions,
        model.policy.params().len(),
        model.policy.params().as_ptr() as usize,
        BLOB.0.len()
    );
    hprintln!(
        "cost unit: instructions (QEMU -icount shift=0, SysTick on the CPU clock); calibration {} instructions = {} ticks -> {} instructions per tick",
        2 * SPIN,
        ticks,
        ratio
    );

    // The cost model: an observation with no occupied slot costs the fixed part of the
    // network; each occupied partner or road slot adds one encoder pass.
    let empty = [0.0f32; spacer_core::observation::OBS_DIM];
    let empty = &empty[..model.policy.observation_len()];
    let mut logits = [0.0f32; spacer_core::policy::MAX_ACTIONS];
    let logits = &mut logits[..model.policy.actions()];
    let t0 = clock.now();
    let _ = model.policy.forward(empty, logits);
    let base = (clock.now() - t0) * ratio;
    hprintln!("forward pass with no occupied slot: {} instructions", base);

    let (mut inf_sum, mut inf_min, mut inf_max, mut obs_sum, mut n) =
        (0u64, u64::MAX, 0u64, 0u64, 0u64);
    let mut slots_sum = 0usize;
    let result = drive(
        &model,
        DECISIONS,
        || clock.now() * ratio,
        |d| {
            hprint!("decision {:2} tokens", d.index);
            for t in d.tokens {
                hprint!(" {}", t);
            }
            hprint!(" | inference instructions");
            for c in d.inference_cost {
                hprint!(" {}", c);
            }
            hprint!(" | slots");
            for s in d.occupied_slots {
                hprint!(" {}", s);
            }
            hprintln!("");
            for i in 0..AGENTS {
                inf_sum += d.inference_cost[i];
                inf_min = inf_min.min(d.inference_cost[i]);
                inf_max = inf_max.max(d.inference_cost[i]);
                obs_sum += d.observation_cost[i];
                slots_sum += d.occupied_slots[i];
                n += 1;
            }
        },
    );
    let agents = match result {
        Ok(a) => a,
        Err(_) => fail("policy refused the observation"),
    };
    let mean = inf_sum / n.max(1);
    // Time at 168 MHz if the core retires one instruction per cycle (Cortex-M4F: most
    // ALU/FPU instructions are single-cycle; loads pipeline; see the README for the
    // estimate's limits).
    let us = mean as f32 / 168.0;
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
    hprintln!(
        "estimate at 168 MHz, 1 instruction per cycle: {:.0} us per inference ({:.0} us with no occupied slot)",
        us,
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
