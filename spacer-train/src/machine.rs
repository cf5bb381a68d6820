//! What the benchmarks report about the machine they ran on: the process's CPU time
//! and the load average (Linux `/proc`; `None` elsewhere).
//!
//! On a shared machine the wall-clock rate of a benchmark depends on the other jobs;
//! the rate per CPU-second does not (much), so both are reported.

/// CPU time (user + system, all threads) of this process so far, from
/// `/proc/self/stat`; `None` where that file does not exist or cannot be read.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_seconds(&stat)
}

/// `utime + stime` of a `/proc/PID/stat` line in seconds: fields 14 and 15 (1-based)
/// of the line, counted after the parenthesised command name (which may hold
/// spaces), in clock ticks of 1/100 s (Linux's `USER_HZ`).
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The 1, 5 and 15 minute load averages, from `/proc/loadavg`, as `"a b c"`.
pub fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let v: Vec<&str> = s.split_whitespace().take(3).collect();
    (v.len() == 3).then(|| v.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_are_read_after_the_command_name() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let line = "1234 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_seconds(line), Some(3.0));
        assert_eq!(parse_cpu_seconds("1234 (x) S 1 2"), None);
        assert_eq!(parse_cpu_seconds("no parenthesis"), None);
    }

    #[test]
    fn on_linux_this_process_has_cpu_time_and_a_load_average() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            println!("skipped: no /proc on this system");
            return;
        }
        let before = process_cpu_seconds().unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed().as_millis() < 50 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        assert!(process_cpu_seconds().unwrap() >= before);
        let load = load_average().unwrap();
        assert_eq!(load.split(' ').count(), 3, "{load}");
    }
}
