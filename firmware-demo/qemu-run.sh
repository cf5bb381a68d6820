#!/bin/sh
# Runs a firmware ELF under QEMU (the cargo runner of .cargo/config.toml) on the machine
# SPACER_FIRMWARE_MACHINE names: mps2-an386 (default) or netduinoplus2 (STM32F405).
# The build reads the same variable to pick the memory map, so build and run agree.
# -icount shift=0: QEMU's virtual clock advances exactly 1 ns per executed instruction,
# which is how the firmware counts instructions (QEMU models no cycle counter).
machine="${SPACER_FIRMWARE_MACHINE:-mps2-an386}"
case "$machine" in
  mps2-an386|netduinoplus2) ;;
  *) echo "SPACER_FIRMWARE_MACHINE=$machine: use mps2-an386 or netduinoplus2" >&2; exit 2 ;;
esac
exec qemu-system-arm -cpu cortex-m4 -machine "$machine" -nographic -icount shift=0 \
  -semihosting-config enable=on,target=native -kernel "$@"
